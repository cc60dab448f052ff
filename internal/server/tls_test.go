package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server"
)

// selfSigned writes a certificate and key for 127.0.0.1 and returns their paths.
func selfSigned(t *testing.T) (string, string) {
	t.Helper()
	return selfSignedFor(t, "berth-test", "localhost")
}

// selfSignedFor writes a certificate with the given common name and DNS names.
func selfSignedFor(t *testing.T, cn string, dnsNames ...string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	cert, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cert, keyPath
}

// TestTLSPerHostname serves a different certificate per requested host name
// (SNI): exact names, a wildcard, and the default for anything else.
func TestTLSPerHostname(t *testing.T) {
	defCert, defKey := selfSignedFor(t, "default", "localhost")
	regCert, regKey := selfSignedFor(t, "registry", "registry.example.com")
	appsCert, appsKey := selfSignedFor(t, "apps", "*.apps.example.com")
	cfg := &config.Config{TLS: config.TLS{CertFile: defCert, KeyFile: defKey, Certificates: []config.NamedCertificate{
		{Hostnames: []string{"registry.example.com"}, CertFile: regCert, KeyFile: regKey},
		{Hostnames: []string{"*.apps.example.com"}, CertFile: appsCert, KeyFile: appsKey},
	}}}
	cfg.Storage.EmptyDir = &struct{}{}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, ln)
	for sni, want := range map[string]string{
		"registry.example.com":    "registry",
		"REGISTRY.example.com":    "registry",
		"mirror.apps.example.com": "apps",
		"a.b.apps.example.com":    "default", // a wildcard covers one label
		"other.example.org":       "default",
	} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("%s: %v", sni, err)
		}
		got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
		conn.Close()
		if got != want {
			t.Errorf("SNI %s: served %q, want %q", sni, got, want)
		}
	}
}
