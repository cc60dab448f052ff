package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server"
	"github.com/opencontainers/go-digest"
)

// writeHtpasswd writes user:password pairs as bcrypt entries.
func writeHtpasswd(t *testing.T, path string, pairs ...string) {
	t.Helper()
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		line, err := auth.HashPassword(pairs[i], pairs[i+1])
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(line + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// parseConfig parses YAML as berth serve's file and fills storage.
func parseConfig(t *testing.T, root, doc string) *config.Config {
	t.Helper()
	c, err := config.Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, doc)
	}
	c.Storage.Filesystem = &config.Filesystem{RootDirectory: root}
	return c
}

// startServer runs a server on a loopback port until the test ends.
func startServer(t *testing.T, cfg *config.Config, log io.Writer, opts server.Options) (*server.Server, string) {
	t.Helper()
	var lv slog.Leveler = slog.LevelInfo
	if opts.Level != nil {
		lv = opts.Level
	}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: lv})), opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return srv, ln.Addr().String()
}

// ociClient speaks the OCI distribution API over plain HTTP with Basic
// credentials (or none).
type ociClient struct {
	t    *testing.T
	base string
}

type reply struct {
	status int
	code   string // the first OCI error code, if any
	header http.Header
	body   []byte
}

func (c ociClient) req(method, path, user, pass string, body io.Reader, size int64, hdr ...string) *http.Request {
	c.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = c.base + path
	}
	r, err := http.NewRequest(method, u, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		r.ContentLength = size
		r.Header.Set("Content-Type", "application/octet-stream")
	}
	if user != "" {
		r.SetBasicAuth(user, pass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return r
}

func (c ociClient) do(r *http.Request) reply {
	c.t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		c.t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	rep := reply{status: resp.StatusCode, header: resp.Header, body: b}
	var env struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if json.Unmarshal(b, &env) == nil && len(env.Errors) > 0 {
		rep.code = env.Errors[0].Code
	}
	return rep
}

func (c ociClient) call(method, path, user, pass string) reply {
	c.t.Helper()
	return c.do(c.req(method, path, user, pass, nil, 0))
}

// expect checks a reply's status and OCI code.
func expect(t *testing.T, what string, got reply, status int, code string) {
	t.Helper()
	if got.status != status || got.code != code {
		t.Fatalf("%s: %d %s, want %d %s (%s)", what, got.status, got.code, status, code, got.body)
	}
}

// pushBlob uploads data monolithically to repo.
func (c ociClient) pushBlob(repo, user, pass string, data []byte) digest.Digest {
	c.t.Helper()
	d := digest.FromBytes(data)
	start := c.call(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", user, pass)
	expect(c.t, "start upload", start, http.StatusAccepted, "")
	loc := c.location(start) + "&digest=" + d.String()
	expect(c.t, "put blob", c.do(c.req(http.MethodPut, loc, user, pass, bytes.NewReader(data), int64(len(data)))), http.StatusCreated, "")
	return d
}

func (c ociClient) location(r reply) string {
	loc := r.header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = c.base + loc
	}
	if !strings.Contains(loc, "?") {
		loc += "?"
	}
	return loc
}

// randomBytes is n deterministic bytes.
func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// TestReloadKeepsInFlightWork changes the rules under a running server
// while a blob GET is streaming and a chunk of an upload is in flight: both
// finish under the rules they started with (the GET by a user the reload
// takes access from, with the right digest; the PATCH into a server the
// reload makes read-only), new requests get the new rules with the exact
// OCI codes, the upload session outlives two reloads and completes, new
// request limits apply, and a broken config is refused with the running
// rules kept.
func TestReloadKeepsInFlightWork(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	users1, users2 := filepath.Join(dir, "users1"), filepath.Join(dir, "users2")
	writeHtpasswd(t, users1, "alice", "a1", "bob", "b1")
	writeHtpasswd(t, users2, "alice", "a1", "bob", "b2", "carol", "c1")
	const secret = "0123456789abcdef0123456789abcdef"
	before := fmt.Sprintf(`
auth:
  htpasswd: %s
  tokenSecret: %s
  roleBindings:
  - {role: registry-editor, namespace: "*", users: [alice]}
  - {role: registry-viewer, namespace: "*", users: [bob]}
`, users1, secret)
	// readOnly on; bob's password changed and his binding gone; carol
	// pulls through a group; anonymous may pull public/; debug logging;
	// and a gc change that needs a restart.
	after := func(readOnly bool, extra string) string {
		return fmt.Sprintf(`
readOnly: %t
logLevel: Debug
gc: {interval: 6h}
auth:
  htpasswd: %s
  tokenSecret: %s
  groups: {devs: [carol]}
  roleBindings:
  - {role: registry-editor, namespace: "*", users: [alice]}
  - {role: registry-viewer, namespace: "*", groups: [devs]}
  anonymous: {role: registry-viewer, namespaces: [public]}
%s`, readOnly, users2, secret, extra)
	}
	var logs syncBuffer
	level := new(slog.LevelVar)
	srv, addr := startServer(t, parseConfig(t, root, before), &logs, server.Options{Level: level})
	c := ociClient{t: t, base: "http://" + addr}

	big := randomBytes(48<<20, 1)
	bigDigest := c.pushBlob("app", "alice", "a1", big)
	expect(t, "anonymous, before", c.call(http.MethodHead, "/v2/public/x/blobs/"+bigDigest.String(), "", ""), http.StatusUnauthorized, "")

	// A GET by bob, read 1 MiB and paused: the server blocks writing the rest.
	get, err := http.DefaultClient.Do(c.req(http.MethodGet, "/v2/app/blobs/"+bigDigest.String(), "bob", "b1", nil, 0))
	if err != nil || get.StatusCode != http.StatusOK {
		t.Fatalf("GET: %v %v", err, get)
	}
	defer get.Body.Close()
	streamed := sha256.New()
	if _, err := io.CopyN(streamed, get.Body, 1<<20); err != nil {
		t.Fatal(err)
	}

	// An upload: a first chunk whole, a second one partly sent. 16 MiB of
	// it sent means the handler is reading the body, past every check: the
	// socket buffers between client and server hold far less.
	chunk1, chunk2, chunk3 := randomBytes(3<<20, 2), randomBytes(24<<20, 3), randomBytes(1<<20, 4)
	start := c.call(http.MethodPost, "/v2/app/blobs/uploads/", "alice", "a1")
	expect(t, "start upload", start, http.StatusAccepted, "")
	p1 := c.do(c.req(http.MethodPatch, c.location(start), "alice", "a1", bytes.NewReader(chunk1), int64(len(chunk1)), "Content-Range", fmt.Sprintf("0-%d", len(chunk1)-1)))
	expect(t, "patch 1", p1, http.StatusAccepted, "")
	pr, pw := io.Pipe()
	patch2 := make(chan reply, 1)
	go func() {
		patch2 <- c.do(c.req(http.MethodPatch, c.location(p1), "alice", "a1", pr, int64(len(chunk2)), "Content-Range", fmt.Sprintf("%d-%d", len(chunk1), len(chunk1)+len(chunk2)-1)))
	}()
	if _, err := pw.Write(chunk2[:16<<20]); err != nil {
		t.Fatal(err)
	}

	if err := srv.Reload(parseConfig(t, root, after(true, ""))); err != nil {
		t.Fatal(err)
	}

	// The half-sent chunk finishes into the now read-only registry.
	if _, err := pw.Write(chunk2[16<<20:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	p2 := <-patch2
	expect(t, "in-flight patch across the reload", p2, http.StatusAccepted, "")
	// bob's GET, started before he lost access, streams to the end.
	if _, err := io.Copy(streamed, get.Body); err != nil {
		t.Fatalf("in-flight GET: %v", err)
	}
	if got := digest.NewDigest(digest.SHA256, streamed); got != bigDigest {
		t.Fatalf("in-flight GET digest %s, want %s", got, bigDigest)
	}

	// New requests see the new rules.
	expect(t, "push while read-only", c.do(c.req(http.MethodPatch, c.location(p2), "alice", "a1", bytes.NewReader(chunk3), int64(len(chunk3)))), http.StatusMethodNotAllowed, "UNSUPPORTED")
	expect(t, "new upload while read-only", c.call(http.MethodPost, "/v2/app/blobs/uploads/", "alice", "a1"), http.StatusMethodNotAllowed, "UNSUPPORTED")
	expect(t, "bob's old password", c.call(http.MethodGet, "/v2/app/blobs/"+bigDigest.String(), "bob", "b1"), http.StatusUnauthorized, "UNAUTHORIZED")
	expect(t, "bob without a binding", c.call(http.MethodGet, "/v2/app/blobs/"+bigDigest.String(), "bob", "b2"), http.StatusForbidden, "DENIED")
	expect(t, "carol through her group", c.call(http.MethodHead, "/v2/app/blobs/"+bigDigest.String(), "carol", "c1"), http.StatusOK, "")
	expect(t, "anonymous on public/", c.call(http.MethodHead, "/v2/public/x/blobs/"+bigDigest.String(), "", ""), http.StatusNotFound, "")
	if level.Level() != slog.LevelDebug {
		t.Fatalf("log level %v after reload, want DEBUG", level.Level())
	}
	if l := logs.String(); !strings.Contains(l, `"needsRestart":["gc"]`) {
		t.Fatalf("the gc change is not reported as needing a restart:\n%s", l)
	}

	// Broken configs are refused whole; the running rules stay.
	for name, breakIt := range map[string]func(*config.Config){
		"unknown role":     func(c *config.Config) { c.Auth.RoleBindings[1].Role = "registry-god" },
		"missing htpasswd": func(c *config.Config) { c.Auth.Htpasswd = filepath.Join(dir, "nope") },
	} {
		cfg := parseConfig(t, root, after(false, ""))
		breakIt(cfg)
		if err := srv.Reload(cfg); err == nil {
			t.Fatalf("%s: the reload was accepted", name)
		}
		expect(t, name+": still read-only", c.call(http.MethodPost, "/v2/app/blobs/uploads/", "alice", "a1"), http.StatusMethodNotAllowed, "UNSUPPORTED")
		expect(t, name+": bob still denied", c.call(http.MethodGet, "/v2/app/blobs/"+bigDigest.String(), "bob", "b2"), http.StatusForbidden, "DENIED")
		expect(t, name+": carol still pulls", c.call(http.MethodHead, "/v2/app/blobs/"+bigDigest.String(), "carol", "c1"), http.StatusOK, "")
	}
	if l := logs.String(); !strings.Contains(l, "config reload refused") || !strings.Contains(l, "registry-god") || !strings.Contains(l, "nope: no such file") {
		t.Fatalf("the refusal and its reason are not logged:\n%s", l)
	}

	// Writable again, with one read at a time: the session opened before
	// both reloads completes.
	if err := srv.Reload(parseConfig(t, root, after(false, "requests:\n  read: {maxRunning: 1, maxInQueue: 0}\n"))); err != nil {
		t.Fatal(err)
	}
	whole := append(append(append([]byte{}, chunk1...), chunk2...), chunk3...)
	wd := digest.FromBytes(whole)
	expect(t, "final chunk and commit", c.do(c.req(http.MethodPut, c.location(p2)+"&digest="+wd.String(), "alice", "a1", bytes.NewReader(chunk3), int64(len(chunk3)))), http.StatusCreated, "")
	hold, err := http.DefaultClient.Do(c.req(http.MethodGet, "/v2/app/blobs/"+wd.String(), "carol", "c1", nil, 0))
	if err != nil || hold.StatusCode != http.StatusOK {
		t.Fatalf("GET the uploaded blob: %v %v", err, hold)
	}
	defer hold.Body.Close()
	expect(t, "a second read beyond maxRunning 1", c.call(http.MethodGet, "/v2/app/blobs/"+wd.String(), "carol", "c1"), http.StatusTooManyRequests, "TOOMANYREQUESTS")
	got, err := io.ReadAll(hold.Body)
	hold.Body.Close()
	if err != nil || digest.FromBytes(got) != wd {
		t.Fatalf("the upload across reloads reads back as %s (%v), want %s", digest.FromBytes(got), err, wd)
	}
}

// certCN connects with TLS and returns the common name of the server's
// certificate.
func certCN(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestTLSRotation replaces the certificate files on disk and sees the new
// certificate served to a new connection without a reload, then moves to
// other files by a reload, and refuses a reload naming files that do not
// load.
func TestTLSRotation(t *testing.T) {
	certFile, keyFile := selfSignedFor(t, "first", "localhost")
	cfg := &config.Config{ShutdownTimeout: config.PositiveDuration(5 * time.Second), TLS: config.TLS{CertFile: certFile, KeyFile: keyFile}}
	cfg.Storage.Filesystem = &config.Filesystem{RootDirectory: t.TempDir()}
	cfg.Defaults()
	var logs syncBuffer
	srv, addr := startServer(t, cfg, &logs, server.Options{CertPoll: 20 * time.Millisecond})
	if cn := certCN(t, addr); cn != "first" {
		t.Fatalf("served %q, want first", cn)
	}
	kept, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()

	// A renewal on disk: key first, then certificate, as a renewer might.
	c2, k2 := selfSignedFor(t, "second", "localhost")
	for _, f := range [][2]string{{k2, keyFile}, {c2, certFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for certCN(t, addr) != "second" {
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate is not served:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cn := kept.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "first" {
		t.Fatalf("the open connection's certificate changed to %q", cn)
	}

	c3, k3 := selfSignedFor(t, "third", "localhost")
	next := *cfg
	next.TLS = config.TLS{CertFile: c3, KeyFile: k3}
	if err := srv.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if cn := certCN(t, addr); cn != "third" {
		t.Fatalf("after a reload served %q, want third", cn)
	}
	broken := next
	broken.TLS = config.TLS{CertFile: c3, KeyFile: keyFile} // a key of another certificate
	if err := srv.Reload(&broken); err == nil {
		t.Fatal("a certificate with the wrong key was accepted")
	}
	if cn := certCN(t, addr); cn != "third" {
		t.Fatalf("after a refused reload served %q, want third", cn)
	}
}
