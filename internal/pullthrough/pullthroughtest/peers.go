package pullthroughtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/testpeer"
)

// CA is a private certificate authority generated for one test.
type CA struct {
	// File is the CA certificate in PEM, for caFile settings.
	File string
	Pool *x509.CertPool
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

// NewCA generates a CA under a temporary directory.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	ca := &CA{File: filepath.Join(dir, "ca.pem"), Pool: x509.NewCertPool(), cert: cert, key: key, dir: dir}
	ca.Pool.AddCert(cert)
	writePEM(t, ca.File, "CERTIFICATE", der)
	return ca
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Issue makes a server certificate for 127.0.0.1 and localhost and returns
// its PEM files and a tls.Config serving it.
func (ca *CA) Issue(t testing.TB, name string) (certFile, keyFile string, cfg *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(ca.dir, name+".crt"), filepath.Join(ca.dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

// Distribution is a running CNCF Distribution registry with htpasswd
// authentication and TLS from a test CA.
type Distribution struct {
	URL        string // https://127.0.0.1:port
	Host       string
	User, Pass string
	CA         *CA
	cmd        *exec.Cmd
	log        string
}

// DistributionOptions tweak StartDistribution.
type DistributionOptions struct {
	// ProxyRemote, with ProxyUser and ProxyPass, runs it as a pull-through
	// proxy of that URL (its `proxy: remoteurl:` mode) instead, without
	// authentication of its own.
	ProxyRemote, ProxyUser, ProxyPass string
}

// StartDistribution runs the `registry` peer on loopback until the test
// ends, failing the test when it is not installed.
func StartDistribution(t testing.TB, ca *CA, opts DistributionOptions) *Distribution {
	t.Helper()
	bin := testpeer.Need(t, "registry")
	dir := t.TempDir()
	addr := testpeer.FreeAddr(t)
	crt, key, _ := ca.Issue(t, "distribution-"+filepath.Base(dir))
	d := &Distribution{URL: "https://" + addr, Host: addr, User: "puller", Pass: "s3cret-pull", CA: ca, log: filepath.Join(dir, "registry.log")}
	authBlock := ""
	if opts.ProxyRemote == "" {
		line, err := auth.HashPassword(d.User, d.Pass)
		if err != nil {
			t.Fatal(err)
		}
		htp := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htp, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		authBlock = fmt.Sprintf("auth:\n  htpasswd:\n    realm: upstream\n    path: %s\n", htp)
	} else {
		d.User = ""
		authBlock = fmt.Sprintf("proxy:\n  remoteurl: %s\n  username: %s\n  password: %s\n", opts.ProxyRemote, opts.ProxyUser, opts.ProxyPass)
	}
	cfg := testpeer.DistributionConfig(filepath.Join(dir, "data"), addr) +
		fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n%s", crt, key, authBlock)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin, "serve", cfgPath)
	// SSL_CERT_FILE: a proxying Distribution must trust the test CA.
	d.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "SSL_CERT_FILE="+ca.File)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start distribution: %v", err)
	}
	t.Cleanup(func() {
		d.Stop()
		logf.Close()
	})
	hc := d.HTTPClient()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(d.URL + "/v2/")
		if err == nil {
			resp.Body.Close()
			return d
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(d.log)
			t.Fatalf("distribution did not answer: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the registry (idempotent): the upstream is gone.
func (d *Distribution) Stop() {
	if d.cmd.Process != nil && d.cmd.ProcessState == nil {
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
	}
}

// HTTPClient trusts the test CA.
func (d *Distribution) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: d.CA.Pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}
}

// Client pushes to the registry with its credentials.
func (d *Distribution) Client() *Client {
	return &Client{Base: d.URL, User: d.User, Pass: d.Pass, HTTP: d.HTTPClient()}
}

// AuthFile writes an auths JSON file (a pull secret) with the registry's
// credentials for host (host:port as the cache reaches it).
func (d *Distribution) AuthFile(t testing.TB, host string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pull-secret.json")
	cred := base64.StdEncoding.EncodeToString([]byte(d.User + ":" + d.Pass))
	if err := os.WriteFile(p, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, cred)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
