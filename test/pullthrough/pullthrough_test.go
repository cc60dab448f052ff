// Package pullthrough_test proves berth serve's pull-through cache against
// real peers: CNCF Distribution as the upstream (htpasswd authentication,
// TLS from a private CA, behind a counting proxy), and skopeo and podman
// pulling through the cache with a registries.conf mirror.
package pullthrough_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/pullthrough/pullthroughtest"
	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/berth-registry/berth/internal/testpeer"
	"github.com/opencontainers/go-digest"
)

const prefix = "upstream.test"

// world is Distribution, a TLS counting proxy in front of it (the address
// the cache and the nodes know the upstream by), and the cache.
type world struct {
	dist    *pullthroughtest.Distribution
	up      *pullthroughtest.Client
	proxy   *pullthroughtest.Proxy
	cache   string // host:port of berth serve, plain HTTP
	root    string // its storage
	timeout time.Duration
}

func newWorld(t *testing.T, tagTTL time.Duration) *world {
	t.Helper()
	return newWorldSized(t, tagTTL, 0)
}

func newWorldSized(t *testing.T, tagTTL time.Duration, maxSize int64) *world {
	t.Helper()
	ca := pullthroughtest.NewCA(t)
	dist := pullthroughtest.StartDistribution(t, ca, pullthroughtest.DistributionOptions{})
	_, _, proxyTLS := ca.Issue(t, "proxy")
	proxy := pullthroughtest.StartTLSProxy(t, dist.URL, ca.Pool, proxyTLS)
	w := &world{dist: dist, up: dist.Client(), proxy: proxy, timeout: 2 * time.Second, root: t.TempDir()}
	w.cache = servertest.Start(t, servertest.Options{Root: w.root, PullThrough: &config.PullThrough{MaxSize: config.ByteSize(maxSize), Upstreams: []config.Upstream{{
		Prefix: prefix, URL: proxy.URL, AuthFile: dist.AuthFile(t, proxy.Host), CAFile: ca.File,
		TagTTL: config.Duration(tagTTL), Timeout: config.Duration(w.timeout),
	}}}})
	return w
}

// registriesConf points pulls of the upstream at the cache, as a node's
// registries.conf (rendered from an IDMS/ITMS) does.
func (w *world) registriesConf(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "registries.conf")
	conf := fmt.Sprintf(`[[registry]]
location = %q

[[registry.mirror]]
location = "%s/%s"
insecure = true
`, w.proxy.Host, w.cache, prefix)
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runPeer(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	bin := testpeer.Need(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func layoutDigest(t *testing.T, dir string) digest.Digest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []struct {
			Digest digest.Digest `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("layout index %s: %v", raw, err)
	}
	return idx.Manifests[0].Digest
}

// TestSkopeoAndPodmanPullThroughTheCache: the nodes' clients, configured
// only with a registries.conf mirror (no credentials for the upstream,
// no trust in its CA), get the upstream's images with identical digests.
func TestSkopeoAndPodmanPullThroughTheCache(t *testing.T) {
	w := newWorld(t, time.Minute)
	img := w.up.PushImage(t, "team/app", "v1", pullthroughtest.TarLayer("big", 2<<20), pullthroughtest.TarLayer("small", 100<<10))
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := w.registriesConf(t)
	if err := os.WriteFile(filepath.Join(dir, "auth.json"), []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + dir, "REGISTRY_AUTH_FILE=" + filepath.Join(dir, "auth.json")}
	skopeo := func(args ...string) string {
		return runPeer(t, env, "skopeo", append([]string{"--policy", policy, "--registries-conf", conf}, args...)...)
	}
	src := "docker://" + w.proxy.Host + "/team/app"
	for _, ref := range []string{":v1", "@" + string(img.Digest)} {
		out := filepath.Join(t.TempDir(), "layout")
		skopeo("copy", "--preserve-digests", src+ref, "oci:"+out+":x")
		if got := layoutDigest(t, out); got != img.Digest {
			t.Errorf("skopeo copy %s through the cache: digest %s, want %s", ref, got, img.Digest)
		}
	}
	if raw := skopeo("inspect", "--raw", src+":v1"); digest.FromString(raw) != img.Digest {
		t.Errorf("skopeo inspect --raw through the cache: digest %s, want %s", digest.FromString(raw), img.Digest)
	}
	// The console's image page says where the cached image came from.
	resp, err := http.Get("http://" + w.cache + "/r/" + prefix + "/team/app@" + string(img.Digest))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte(`id="provenance"`)) || !bytes.Contains(page, []byte("<code>"+w.proxy.URL+"</code>")) {
		t.Errorf("the console's image page (%s) does not name the upstream %s:\n%s", resp.Status, w.proxy.URL, page)
	}
	for _, d := range append([]digest.Digest{img.Config}, img.Layers...) {
		if n := w.proxy.BlobGets(d); n != 1 {
			t.Errorf("the upstream served blob %s %d times, want 1", d, n)
		}
	}

	t.Run("podman", func(t *testing.T) {
		// podman wants a short runroot.
		store, err := os.MkdirTemp("", "bpt")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(store) })
		penv := append(env, "CONTAINERS_REGISTRIES_CONF="+conf)
		podman := func(args ...string) string {
			return runPeer(t, penv, "podman", append([]string{"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"), "--storage-driver", "vfs"}, args...)...)
		}
		podman("pull", "--signature-policy", policy, w.proxy.Host+"/team/app@"+string(img.Digest))
		podman("pull", "--signature-policy", policy, w.proxy.Host+"/team/app:v1")
		got := strings.TrimSpace(podman("image", "inspect", "--format", "{{.Digest}}", w.proxy.Host+"/team/app:v1"))
		if got != string(img.Digest) {
			t.Errorf("podman pulled digest %s, want %s", got, img.Digest)
		}
	})
}

// TestConcurrentColdPullsHitTheUpstreamOnce: 32 clients pull one uncached
// 200 MiB image at once; the upstream serves each blob exactly once.
func TestConcurrentColdPullsHitTheUpstreamOnce(t *testing.T) {
	w := newWorld(t, time.Minute)
	var layers [][]byte
	for _, n := range []int{96 << 20, 64 << 20, 40 << 20} {
		layers = append(layers, pullthroughtest.RandomBytes(n))
	}
	img := w.up.PushImage(t, "team/big", "v1", layers...)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- pullAll(w.cache, prefix+"/team/big", []string{"v1", string(img.Digest)}[i%2], img)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, d := range append([]digest.Digest{img.Config}, img.Layers...) {
		if n := w.proxy.BlobGets(d); n != 1 {
			t.Errorf("the upstream served blob %s %d times to 32 clients, want 1", d, n)
		}
	}
	if got, want := w.proxy.BlobBytes(), img.Size-int64(len(img.Manifest)); got != want {
		t.Errorf("upstream blob bytes = %d, want %d (the image once)", got, want)
	}
}

// pullAll pulls an image through the cache like a client and checks every
// digest, hashing blobs as they stream.
func pullAll(cache, repo, ref string, img pullthroughtest.Image) error {
	blob := func(d digest.Digest) (digest.Digest, int, error) {
		resp, err := http.Get("http://" + cache + "/v2/" + repo + "/blobs/" + string(d))
		if err != nil {
			return "", 0, err
		}
		defer resp.Body.Close()
		got, err := digest.FromReader(resp.Body)
		return got, resp.StatusCode, err
	}
	get := func(path string) ([]byte, http.Header, int, error) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+cache+"/v2/"+repo+"/"+path, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil, 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return b, resp.Header, resp.StatusCode, err
	}
	m, hdr, status, err := get("manifests/" + ref)
	if err != nil || status != http.StatusOK || digest.FromBytes(m) != img.Digest {
		return fmt.Errorf("manifest %s:%s: %d %v (%s)", repo, ref, status, err, m)
	}
	if hdr.Get("Docker-Content-Digest") != string(img.Digest) {
		return fmt.Errorf("manifest %s:%s: digest header %s", repo, ref, hdr.Get("Docker-Content-Digest"))
	}
	for _, d := range append([]digest.Digest{img.Config}, img.Layers...) {
		got, status, err := blob(d)
		if err != nil || status != http.StatusOK || got != d {
			return fmt.Errorf("blob %s: %d %v (read %s)", d, status, err, got)
		}
	}
	return nil
}

type oci struct {
	Errors []struct{ Code, Message string }
}

// TestUpstreamFailures: with the upstream stopped, throttling, or refusing
// our credentials, cached images still pull by tag and by digest (the tag
// with a Warning), and an uncached one fails at once with a 503 naming the
// upstream.
func TestUpstreamFailures(t *testing.T) {
	for _, c := range []struct {
		name    string
		breakIt func(w *world)
	}{
		{"stopped", func(w *world) { w.proxy.Close() }},
		{"429", func(w *world) {
			w.proxy.SetFault(func(*http.Request) pullthroughtest.Fault { return http.StatusTooManyRequests })
		}},
		{"401", func(w *world) {
			w.proxy.SetFault(func(*http.Request) pullthroughtest.Fault { return http.StatusUnauthorized })
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, time.Millisecond)
			img := w.up.PushImage(t, "team/app", "v1", pullthroughtest.RandomBytes(1<<20))
			other := w.up.PushImage(t, "team/other", "v1", []byte("never pulled"))
			if err := pullAll(w.cache, prefix+"/team/app", "v1", img); err != nil {
				t.Fatal(err)
			}
			c.breakIt(w)
			for _, ref := range []string{"v1", string(img.Digest)} {
				start := time.Now()
				if err := pullAll(w.cache, prefix+"/team/app", ref, img); err != nil {
					t.Errorf("cached image by %s with the upstream %s: %v", ref, c.name, err)
				}
				t.Logf("cached pull by %s with the upstream %s took %s (timeout %s)", ref, c.name, time.Since(start), w.timeout)
			}
			resp, err := http.Get("http://" + w.cache + "/v2/" + prefix + "/team/app/manifests/v1")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if warn := resp.Header.Get("Warning"); !strings.Contains(warn, prefix) {
				t.Errorf("stale tag answer without a Warning naming the upstream: %q", warn)
			}
			for _, ref := range []string{"v1", string(other.Digest)} {
				start := time.Now()
				resp, err := http.Get("http://" + w.cache + "/v2/" + prefix + "/team/other/manifests/" + ref)
				if err != nil {
					t.Fatal(err)
				}
				var e oci
				_ = json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable || len(e.Errors) == 0 || e.Errors[0].Code != "UNAVAILABLE" || !strings.Contains(e.Errors[0].Message, prefix) {
					t.Errorf("uncached %s with the upstream %s: %d %+v, want 503 UNAVAILABLE naming %s", ref, c.name, resp.StatusCode, e, prefix)
				}
				t.Logf("uncached %s with the upstream %s failed in %s", ref, c.name, time.Since(start))
			}
		})
	}
}

// TestEvictionWhileAPullStreams fills the cache past maxSize while a pull
// streams: that pull completes and validates, the least recently pulled
// image is gone, and the store ends under the limit.
func TestEvictionWhileAPullStreams(t *testing.T) {
	const maxSize = 40 << 20
	w := newWorldSized(t, time.Hour, maxSize)
	old := w.up.PushImage(t, "team/old", "v1", pullthroughtest.RandomBytes(16<<20))
	mid := w.up.PushImage(t, "team/mid", "v1", pullthroughtest.RandomBytes(16<<20))
	streaming := w.up.PushImage(t, "team/streaming", "v1", pullthroughtest.RandomBytes(16<<20))
	for _, img := range []pullthroughtest.Image{old, mid} {
		if err := pullAll(w.cache, prefix+"/"+img.Repo, "v1", img); err != nil {
			t.Fatal(err)
		}
	}
	// Hold the streaming image's layer half way through while its fill
	// and a fourth image push the cache past maxSize.
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	w.proxy.SetBody(func(r *http.Request, off int64, b []byte) {
		if strings.HasSuffix(r.URL.Path, string(streaming.Layers[0])) && off+int64(len(b)) > 8<<20 {
			<-release
		}
	})
	done := make(chan error, 1)
	go func() { done <- pullAll(w.cache, prefix+"/team/streaming", "v1", streaming) }()
	last := w.up.PushImage(t, "team/last", "v1", pullthroughtest.RandomBytes(16<<20))
	if err := pullAll(w.cache, prefix+"/team/last", "v1", last); err != nil {
		t.Fatal(err)
	}
	gone := func(repo string) bool {
		resp, err := http.Get("http://" + w.cache + "/v2/" + prefix + "/" + repo + "/tags/list")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return !strings.Contains(string(b), `"v1"`)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !gone("team/old") {
		if time.Now().After(deadline) {
			t.Fatal("the least recently pulled image was not evicted past maxSize")
		}
		time.Sleep(50 * time.Millisecond)
	}
	free()
	if err := <-done; err != nil {
		t.Fatalf("the pull streaming through the eviction: %v", err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for size := storeSize(t, w.root); size > maxSize; size = storeSize(t, w.root) {
		if time.Now().After(deadline) {
			t.Fatalf("store holds %d bytes, over maxSize %d", size, maxSize)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if gone("team/streaming") || gone("team/last") {
		t.Error("eviction took the most recently pulled images")
	}
	if n := w.proxy.BlobGets(streaming.Layers[0]); n != 1 {
		t.Errorf("the streaming layer was fetched %d times, want 1", n)
	}
}

func storeSize(t *testing.T, root string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(root, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
