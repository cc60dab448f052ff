package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server"
	"github.com/berth-registry/berth/internal/server/servertest"
)

func digestOf(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }

func do(t *testing.T, method, url string, body []byte, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func errCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var env struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || len(env.Errors) == 0 {
		t.Fatalf("no OCI error envelope: %v", err)
	}
	return env.Errors[0].Code
}

func manifestFor(cfg []byte) []byte {
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, digestOf(cfg), len(cfg)))
}

// TestConcurrentSamePush has many clients push the same blob, the same
// manifest and the same tag at once: all succeed, one copy is stored, and the
// tag's history records every move.
func TestConcurrentSamePush(t *testing.T) {
	base := "http://" + servertest.Start(t, servertest.Options{})
	blob := bytes.Repeat([]byte("same"), 1<<18)
	var wg sync.WaitGroup
	const n = 24
	codes := make(chan int, 3*n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp := do(t, "POST", base+"/v2/same/blobs/uploads/?digest="+digestOf(blob), blob)
			codes <- resp.StatusCode
			cfg := []byte(fmt.Sprintf(`{"client":%d}`, i%3))
			resp = do(t, "POST", base+"/v2/same/blobs/uploads/?digest="+digestOf(cfg), cfg)
			codes <- resp.StatusCode
			resp = do(t, "PUT", base+"/v2/same/manifests/latest", manifestFor(cfg), "Content-Type", "application/vnd.oci.image.manifest.v1+json")
			codes <- resp.StatusCode
		}(i)
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusCreated {
			t.Fatalf("a concurrent push got %d", c)
		}
	}
	resp := do(t, "GET", base+"/v2/same/blobs/"+digestOf(blob), nil)
	got, _ := io.ReadAll(resp.Body)
	if !bytes.Equal(got, blob) {
		t.Fatal("blob bytes differ after concurrent pushes")
	}
	resp = do(t, "GET", base+"/v2/same/manifests/latest", nil)
	got, _ = io.ReadAll(resp.Body)
	found := false
	for i := 0; i < 3; i++ {
		found = found || bytes.Equal(got, manifestFor([]byte(fmt.Sprintf(`{"client":%d}`, i))))
	}
	if !found || resp.Header.Get("Docker-Content-Digest") != digestOf(got) {
		t.Fatalf("tag latest serves %q, not one of the pushed manifests", got)
	}
}

// TestReadOnly refuses every push and delete with a clear error and keeps
// pulls working on the same data.
func TestReadOnly(t *testing.T) {
	root := t.TempDir()
	cfg := []byte(`{"ro":true}`)
	func() {
		// Fill the store through a writable server first.
		base := "http://" + servertest.Start(t, servertest.Options{Root: root})
		if r := do(t, "POST", base+"/v2/ro/blobs/uploads/?digest="+digestOf(cfg), cfg); r.StatusCode != 201 {
			t.Fatalf("seed push: %d", r.StatusCode)
		}
		if r := do(t, "PUT", base+"/v2/ro/manifests/v1", manifestFor(cfg), "Content-Type", "application/vnd.oci.image.manifest.v1+json"); r.StatusCode != 201 {
			t.Fatalf("seed manifest: %d", r.StatusCode)
		}
	}()
	base := "http://" + servertest.Start(t, servertest.Options{Root: root, ReadOnly: true})
	for _, tc := range []struct{ method, path string }{
		{"POST", "/v2/ro/blobs/uploads/"},
		{"PUT", "/v2/ro/manifests/v2"},
		{"DELETE", "/v2/ro/manifests/v1"},
		{"DELETE", "/v2/ro/blobs/" + digestOf(cfg)},
	} {
		resp := do(t, tc.method, base+tc.path, manifestFor(cfg), "Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if resp.StatusCode != http.StatusMethodNotAllowed || errCode(t, resp) != "UNSUPPORTED" {
			t.Fatalf("%s %s in read-only mode: %d", tc.method, tc.path, resp.StatusCode)
		}
	}
	if r := do(t, "GET", base+"/v2/ro/manifests/v1", nil); r.StatusCode != 200 {
		t.Fatalf("pull in read-only mode: %d", r.StatusCode)
	}
}

// TestGracefulShutdown cancels the server while a slow upload is in flight;
// the upload completes before Serve returns.
func TestGracefulShutdown(t *testing.T) {
	cfg := &config.Config{ShutdownTimeout: config.PositiveDuration(10 * time.Second)}
	cfg.Storage.EmptyDir = &struct{}{}
	cfg.Defaults()
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	data := bytes.Repeat([]byte("x"), 1<<20)
	pr, pw := io.Pipe()
	result := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/v2/drain/blobs/uploads/?digest="+digestOf(data), pr)
		req.ContentLength = int64(len(data))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- 0
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	_, _ = pw.Write(data[:1000])
	time.Sleep(200 * time.Millisecond)
	cancel() // SIGTERM arrives mid-upload
	time.Sleep(200 * time.Millisecond)
	_, _ = pw.Write(data[1000:])
	pw.Close()
	if code := <-result; code != http.StatusCreated {
		t.Fatalf("in-flight upload during shutdown: %d", code)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestTLS serves HTTPS with a certificate and key from files.
func TestTLS(t *testing.T) {
	certFile, keyFile := selfSigned(t)
	cfg := &config.Config{TLS: config.TLS{CertFile: certFile, KeyFile: keyFile}}
	cfg.Storage.EmptyDir = &struct{}{}
	cfg.Defaults()
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, ln)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Get("https://" + ln.Addr().String() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || !strings.HasPrefix(resp.Header.Get("Docker-Distribution-API-Version"), "registry/2.0") {
		t.Fatalf("HTTPS /v2/: %d tls=%v", resp.StatusCode, resp.TLS != nil)
	}
}
