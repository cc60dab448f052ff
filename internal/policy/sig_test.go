package policy

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

func TestPolicyValidatePolicyScope(t *testing.T) {
	for _, c := range []struct {
		s     string
		valid bool
	}{
		{"quay.io", true}, {"quay.io:443/ns/repo", true}, {"*.example.com", true}, {"localhost", true},
		{"localhost:5000/dev", true}, {"quay.io/ns/app:v1", true}, {"quay.io/ns/app@sha256:0123456789abcdef0123456789abcdef", true},
		{"quay", false}, {"quay:5000/x", false}, {"", false}, {"*.example.com/foo", false}, {"*example.com", false},
		{"a.*.example.com", false}, {"quay.io/NS", false}, {"quay.io/ns@sha256:abc", false}, {"quay.io/ns app", false},
		{"quay.io/" + strings.Repeat("a", 510), false},
	} {
		if got := ValidatePolicyScope(c.s) == ""; got != c.valid {
			t.Errorf("ValidatePolicyScope(%q) valid = %v, want %v (%s)", c.s, got, c.valid, ValidatePolicyScope(c.s))
		}
	}
}

func TestPolicyRegistriesDLookup(t *testing.T) {
	n := &Node{}
	err := n.LoadSignatureFiles([]NamedFile{
		{"b.yaml", []byte("docker:\n  quay.io/acme:\n    use-sigstore-attachments: true\n  quay.io/acme/app:\n    lookaside: https://sigs.example.com\n")},
		{"a.yaml", []byte("default-docker:\n  use-sigstore-attachments: false\ndocker:\n  \"*.example.com\":\n    use-sigstore-attachments: true\n")},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]bool{
		"quay.io/acme/app:v1":                            true, // the nearer entry has no such field: the next one decides
		"quay.io/other:v1":                               false,
		"a.b.example.com/x:v1":                           true,
		"a.example.com:5000/x:v1":                        true, // "*.domain" namespaces ignore the port
		"example.com/x:v1":                               false,
		"quay.io/acme@sha256:" + strings.Repeat("0", 64): true,
	} {
		r, err := reference.ParseNamed(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := n.RegistriesD.useSigstoreAttachments(r); got != want {
			t.Errorf("%s: use-sigstore-attachments %v, want %v", ref, got, want)
		}
	}
	err = (&Node{}).LoadSignatureFiles([]NamedFile{{"a.yaml", []byte("docker: {quay.io: {}}")}, {"b.yaml", []byte("docker: {quay.io: {}}")}}, nil)
	if err == nil || !strings.Contains(err.Error(), `"quay.io" is also defined in a.yaml`) {
		t.Errorf("a namespace in two files: %v", err)
	}
	if err := (&Node{}).LoadSignatureFiles(nil, []NamedFile{{"etc/crio/policies/.json", []byte(`{"default":[{"type":"reject"}]}`)}}); err == nil {
		t.Error("a namespace policy without a namespace name loaded")
	}
}

func TestPolicyLoadNodeRootNeedsBothFiles(t *testing.T) {
	base := StockBase()
	if _, err := LoadNodeRoot(map[string][]byte{PolicyJSONPath: base.PolicyJSON}); err == nil || !strings.Contains(err.Error(), RegistriesConfPath) {
		t.Errorf("missing registries.conf: %v", err)
	}
	n, err := LoadNodeRoot(map[string][]byte{PolicyJSONPath: base.PolicyJSON, RegistriesConfPath: base.RegistriesConf,
		CRIOPolicyPath("team"): []byte(`{"default":[{"type":"reject"}]}`), "etc/crio/policies/README": []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Namespaces) != 1 || n.Namespaces["team"] == nil {
		t.Errorf("namespaces %v", n.Namespaces)
	}
	e, err := n.ExplainWith("quay.io/x:1", ExplainOptions{Namespace: "team"})
	if err != nil || e.Namespace.File != CRIOPolicyPath("team") || e.Namespace.Policy.Allowed {
		t.Errorf("namespace verdict %+v, %v", e.Namespace, err)
	}
	e, _ = n.ExplainWith("quay.io/x:1", ExplainOptions{Namespace: "other"})
	if e.Namespace.File != "" || !e.Namespace.Policy.Allowed || !strings.Contains(strings.Join(e.Notes, "\n"), "has no etc/crio/policies/other.json") {
		t.Errorf("a namespace without a policy: %+v %v", e.Namespace, e.Notes)
	}
}

func TestPolicyDescribeKeys(t *testing.T) {
	rk := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 2047), E: 65537}
	rk.N.Add(rk.N, big.NewInt(1))
	der, err := x509.MarshalPKIXPublicKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(rk)})
	spki := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	a, b := describePEM("key", pkcs1, ""), describePEM("key", spki, "")
	if len(a) != 1 || a[0] != b[0] || !strings.HasPrefix(a[0], "RSA-2048 key sha256:") {
		t.Errorf("RSA keys in PKCS#1 and SPKI form describe as %v and %v", a, b)
	}
	edDER, _ := x509.MarshalPKIXPublicKey(ed25519.NewKeyFromSeed(make([]byte, 32)).Public())
	if d := describePEM("key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edDER}), ""); !strings.HasPrefix(d[0], "Ed25519 key sha256:") {
		t.Errorf("Ed25519: %v", d)
	}
	// An algorithm Go does not know (here a made-up OID) is accepted when the structure is sound.
	unknown := []byte{0x30, 0x0e, 0x30, 0x07, 0x06, 0x05, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x03, 0x03, 0x00, 0x01, 0x02}
	if err := checkPublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: unknown})); err != nil {
		t.Errorf("sound SubjectPublicKeyInfo of an unknown algorithm refused: %v", err)
	}
	if err := checkPublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}})); err == nil {
		t.Error("garbage DER accepted as a public key")
	}
	if err := checkPublicKeyPEM(append(append([]byte(nil), spki...), spki...)); err == nil {
		t.Error("two keys in one keyData accepted")
	}
}

func TestPolicyRemapIdentityExpects(t *testing.T) {
	id := identityJSON{Type: "remapIdentity", Prefix: "mirror.example.com/vendor", SignedPrefix: "registry.vendor.com"}
	for ref, want := range map[string]string{
		"mirror.example.com/vendor/app:v1":            "a signature for exactly registry.vendor.com/app:v1",
		"mirror.example.com/vendor:v1":                "nothing: the remapped reference does not parse", // registry.vendor.com:v1 names no repository, for the runtime either
		"mirror.example.com/vendorx/app:v1":           "a signature for exactly mirror.example.com/vendorx/app:v1 (the prefix does not match; no remapping)",
		"mirror.example.com/vendor/app@" + testDigest: "a signature for repository registry.vendor.com/app with some tag or digest (the reference is by digest; a name-only identity, which cosign writes by default, is refused: use MatchRepository for those)",
	} {
		r, _ := ParseImageRef(ref)
		if _, got := describeIdentity(id, r); got != want {
			t.Errorf("%s: %q, want %q", ref, got, want)
		}
	}
}
