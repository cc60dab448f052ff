package policy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"regexp"
	"sync"
	"testing"
	"time"
)

// Test key material is derived from names, so golden files stay stable:
// ECDSA P-256 signing keys from a fixed scalar, CAs with Ed25519 keys
// (whose signatures are deterministic) and fixed serials and validity.

var testKeys sync.Map // name → *ecdsa.PrivateKey

func testSigningKey(t testing.TB, name string) *ecdsa.PrivateKey {
	if k, ok := testKeys.Load(name); ok {
		return k.(*ecdsa.PrivateKey)
	}
	seed := sha256.Sum256([]byte("berth policy test key " + name))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), seed[:])
	if err != nil {
		t.Fatalf("key %s: %v", name, err)
	}
	testKeys.Store(name, k)
	return k
}

func pemPublicKey(t testing.TB, pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func testCAKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("berth policy test CA " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

var testEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// testCert issues a certificate for name: a self-signed root when parent
// is "", else signed by the CA parent. A leaf gets an ECDSA key (the
// signing key of the same name), an email and a DNS SAN.
func testCert(t testing.TB, name, parent string, ca bool) (*x509.Certificate, []byte) {
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes([]byte(name)),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Berth test"}},
		NotBefore:             testEpoch,
		NotAfter:              testEpoch.AddDate(50, 0, 0),
		BasicConstraintsValid: true,
		IsCA:                  ca,
	}
	var pub crypto.PublicKey
	if ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		pub = testCAKey(name).Public()
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
		tmpl.EmailAddresses = []string{name + "@example.com"}
		tmpl.DNSNames = []string{name + ".example.com"}
		pub = testSigningKey(t, name).Public()
	}
	signerName, parentCert := name, tmpl
	if parent != "" {
		signerName = parent
		parentCert, _ = testCert(t, parent, "", true)
		if p := testCAParents[parent]; p != "" {
			parentCert, _ = testCert(t, parent, p, true)
		}
	}
	der, err := x509.CreateCertificate(nil, tmpl, parentCert, pub, testCAKey(signerName))
	if err != nil {
		t.Fatalf("certificate %s: %v", name, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// testCAParents names the root of each intermediate CA the vectors use.
var testCAParents = map[string]string{"acme-intermediate": "acme-root"}

var placeholderRE = regexp.MustCompile(`\{\{(key|ca|int|leaf|b64):([^}]*)\}\}`)

// expandKeys replaces the vectors' placeholders with base64 of PEM data:
// {{key:N}} the public key N, {{ca:N}} the root CA N, {{int:N}} the
// intermediate CA N (signed by its testCAParents root), {{leaf:N}} a leaf
// certificate (not a CA) and {{b64:TEXT}} any text.
func expandKeys(t testing.TB, data []byte) []byte {
	return placeholderRE.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := placeholderRE.FindSubmatch(m)
		kind, name := string(sub[1]), string(sub[2])
		var b []byte
		switch kind {
		case "key":
			b = pemPublicKey(t, testSigningKey(t, name).Public())
		case "ca":
			_, b = testCert(t, name, "", true)
		case "int":
			_, b = testCert(t, name, testCAParents[name], true)
		case "leaf":
			_, b = testCert(t, name, "acme-root", false)
		case "b64":
			b = []byte(name)
		default:
			panic(fmt.Sprint("unknown placeholder ", kind))
		}
		return []byte(base64.StdEncoding.EncodeToString(b))
	})
}

func TestPolicyTestKeysAreStable(t *testing.T) {
	a := expandKeys(t, []byte("{{key:k}} {{ca:acme-root}} {{int:acme-intermediate}}"))
	testKeys = sync.Map{}
	b := expandKeys(t, []byte("{{key:k}} {{ca:acme-root}} {{int:acme-intermediate}}"))
	if string(a) != string(b) {
		t.Fatal("test key material is not deterministic; golden files would change on every run")
	}
}
