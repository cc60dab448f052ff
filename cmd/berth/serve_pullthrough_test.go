package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/pullthrough/pullthroughtest"
	"github.com/opencontainers/go-digest"
)

// TestPullThroughKill9MidFill kills berth serve while it fills a blob from
// the upstream (CNCF Distribution with htpasswd and a private CA), then
// restarts it: nothing half-written is served, and the next pull refills
// and validates.
func TestPullThroughKill9MidFill(t *testing.T) {
	ca := pullthroughtest.NewCA(t)
	dist := pullthroughtest.StartDistribution(t, ca, pullthroughtest.DistributionOptions{})
	_, _, proxyTLS := ca.Issue(t, "proxy")
	proxy := pullthroughtest.StartTLSProxy(t, dist.URL, ca.Pool, proxyTLS)
	layer := pullthroughtest.RandomBytes(8 << 20)
	img := dist.Client().PushImage(t, "team/app", "v1", layer)
	d := img.Layers[0]

	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "berth.yaml")
	cfg := fmt.Sprintf(`pullThrough:
  upstreams:
  - prefix: upstream.test
    url: %s
    authFile: %s
    caFile: %s
    tagTTL: 1m
    timeout: 2s
`, proxy.URL, dist.AuthFile(t, proxy.Host), ca.File)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	// Hold the layer's body in the proxy after its first 2 MiB.
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	proxy.SetBody(func(r *http.Request, off int64, b []byte) {
		if strings.HasSuffix(r.URL.Path, string(d)) && off+int64(len(b)) > 2<<20 {
			<-release
		}
	})

	p := startServe(t, root, "--config", cfgPath)
	base := "http://" + p.addr + "/v2/upstream.test/team/app"
	resp, err := http.Get(base + "/manifests/v1")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("manifest through the cache: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/blobs/" + string(d))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("blob through the cache: %v %v", resp, err)
	}
	first := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, first); err != nil || !bytes.Equal(first, layer[:len(first)]) {
		t.Fatalf("first MiB while the fill is in progress: %v", err)
	}
	p.kill() // SIGKILL, mid-fill
	resp.Body.Close()

	blobFile := filepath.Join(root, "blobs", "sha256", d.Encoded()[:2], d.Encoded())
	if _, err := os.Stat(blobFile); err == nil {
		t.Fatal("a blob killed mid-fill is in the store as committed")
	}

	// Restarted, with the upstream unreachable: the half-filled blob is
	// not served.
	proxy.SetBody(nil)
	free()
	proxy.SetFault(func(*http.Request) pullthroughtest.Fault { return pullthroughtest.Drop })
	p = startServe(t, root, "--config", cfgPath)
	base = "http://" + p.addr + "/v2/upstream.test/team/app"
	resp, err = http.Get(base + "/blobs/" + string(d))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("half-filled blob after a crash, upstream down: %d (%d bytes), want 503", resp.StatusCode, len(body))
	}

	// Upstream back: the next pull refills and validates.
	proxy.SetFault(nil)
	time.Sleep(2100 * time.Millisecond) // the failed upstream's pause (its timeout)
	resp, err = http.Get(base + "/blobs/" + string(d))
	if err != nil {
		t.Fatal(err)
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || digest.FromBytes(body) != d {
		t.Fatalf("refill after the crash: %d, %d bytes, %v", resp.StatusCode, len(body), err)
	}
	if n := proxy.BlobGets(d); n != 2 {
		t.Errorf("upstream GETs of the layer = %d, want 2 (the killed fill and the refill)", n)
	}
}
