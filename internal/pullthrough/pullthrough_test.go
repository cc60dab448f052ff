package pullthrough_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/pullthrough/pullthroughtest"
	"github.com/berth-registry/berth/internal/server"
	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/opencontainers/go-digest"
)

// env is an upstream Berth behind a counting proxy, and a caching Berth
// mirroring it under the prefix up.test.
type env struct {
	up    *pullthroughtest.Client // the upstream, directly
	proxy *pullthroughtest.Proxy
	cache string // the cache's base URL
	root  string // the cache's storage root
}

func newEnv(t *testing.T, tagTTL time.Duration) *env {
	t.Helper()
	upAddr := servertest.Start(t, servertest.Options{})
	proxy := pullthroughtest.StartProxy(t, "http://"+upAddr, nil)
	root := t.TempDir()
	cacheAddr := servertest.Start(t, servertest.Options{Root: root, PullThrough: &config.PullThrough{Upstreams: []config.Upstream{{
		Prefix: "up.test", URL: proxy.URL, Insecure: true, TagTTL: config.Duration(tagTTL), Timeout: config.Duration(time.Second),
	}}}})
	return &env{up: &pullthroughtest.Client{Base: "http://" + upAddr}, proxy: proxy, cache: "http://" + cacheAddr, root: root}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func get(t testing.TB, method, url string, hdr ...string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func errCode(t testing.TB, a answer) (string, string) {
	t.Helper()
	var env struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal(a.body, &env); err != nil || len(env.Errors) == 0 {
		t.Fatalf("not an OCI error envelope (status %d): %s", a.status, a.body)
	}
	return env.Errors[0].Code, env.Errors[0].Message
}

// pull fetches an image through the cache by ref and checks every byte
// against what was pushed.
func (e *env) pull(t testing.TB, repo, ref string, img pullthroughtest.Image) {
	t.Helper()
	ref, query, _ := strings.Cut(ref, "?")
	if query != "" {
		query = "?" + query
	}
	m := get(t, http.MethodGet, e.cache+"/v2/"+repo+"/manifests/"+ref+query)
	if m.status != http.StatusOK || !bytes.Equal(m.body, img.Manifest) || m.header.Get("Docker-Content-Digest") != string(img.Digest) {
		t.Fatalf("manifest %s:%s through the cache: %d %s (digest %s, want %s)", repo, ref, m.status, m.body, m.header.Get("Docker-Content-Digest"), img.Digest)
	}
	for _, d := range append([]digest.Digest{img.Config}, img.Layers...) {
		b := get(t, http.MethodGet, e.cache+"/v2/"+repo+"/blobs/"+string(d)+query)
		if b.status != http.StatusOK || digest.FromBytes(b.body) != d {
			t.Fatalf("blob %s through the cache: %d, %d bytes hashing to %s", d, b.status, len(b.body), digest.FromBytes(b.body))
		}
	}
}

func TestPullThroughByTagAndDigest(t *testing.T) {
	e := newEnv(t, time.Hour)
	img := e.up.PushImage(t, "team/app", "v1", pullthroughtest.RandomBytes(300<<10), pullthroughtest.RandomBytes(40<<10))

	e.pull(t, "up.test/team/app", "v1", img)
	e.pull(t, "up.test/team/app", string(img.Digest), img)
	// containerd's hosts.toml mirror: the plain name plus ?ns=.
	e.pull(t, "team/app", "v1?ns=up.test", img)

	for _, d := range append([]digest.Digest{img.Config}, img.Layers...) {
		if n := e.proxy.BlobGets(d); n != 1 {
			t.Errorf("blob %s fetched from the upstream %d times, want 1", d, n)
		}
	}
	if n := e.proxy.Count(http.MethodGet, "/v2/team/app/manifests/v1"); n != 1 {
		t.Errorf("tag fetched %d times within its TTL, want 1", n)
	}
	if n := e.proxy.Count(http.MethodGet, "/v2/team/app/manifests/"+string(img.Digest)); n != 0 {
		t.Errorf("the manifest by digest went upstream %d times though it was cached by tag", n)
	}
	// Cached content is ordinary content.
	cat := get(t, http.MethodGet, e.cache+"/v2/_catalog")
	if !strings.Contains(string(cat.body), `"up.test/team/app"`) {
		t.Errorf("catalog does not list the cached repository: %s", cat.body)
	}
	tags := get(t, http.MethodGet, e.cache+"/v2/up.test/team/app/tags/list")
	if !strings.Contains(string(tags.body), `"v1"`) {
		t.Errorf("tag list of the cached repository: %s", tags.body)
	}
}

func TestDockerHubLibrary(t *testing.T) {
	upAddr := servertest.Start(t, servertest.Options{})
	up := &pullthroughtest.Client{Base: "http://" + upAddr}
	img := up.PushImage(t, "library/busybox", "latest", pullthroughtest.RandomBytes(1000))
	cacheAddr := servertest.Start(t, servertest.Options{PullThrough: &config.PullThrough{Upstreams: []config.Upstream{{
		Prefix: "docker.io", URL: "http://" + upAddr, Insecure: true, TagTTL: config.Duration(time.Hour), Timeout: config.Duration(time.Second),
	}}}})
	e := &env{cache: "http://" + cacheAddr}
	e.pull(t, "docker.io/busybox", "latest", img)
	e.pull(t, "busybox", "latest?ns=docker.io", img)
	e.pull(t, "docker.io/library/busybox", string(img.Digest), img)
}

func TestPushAndDeleteRefused(t *testing.T) {
	e := newEnv(t, time.Hour)
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/v2/up.test/team/app/blobs/uploads/"},
		{http.MethodPut, "/v2/up.test/team/app/manifests/v1"},
		{http.MethodDelete, "/v2/up.test/team/app/manifests/v1"},
		{http.MethodDelete, "/v2/up.test/team/app/blobs/sha256:" + strings.Repeat("a", 64)},
		{http.MethodPut, "/v2/team/app/manifests/v1?ns=up.test"},
	} {
		a := get(t, c.method, e.cache+c.path)
		code, msg := errCode(t, a)
		if a.status != http.StatusMethodNotAllowed || code != "UNSUPPORTED" || !strings.Contains(msg, "pull-through cache of up.test") {
			t.Errorf("%s %s: %d %s %q, want 405 UNSUPPORTED saying why", c.method, c.path, a.status, code, msg)
		}
	}
	// Outside the prefix the registry is an ordinary one.
	local := &pullthroughtest.Client{Base: e.cache}
	local.PushImage(t, "mine/app", "v1", []byte("x"))
}

func TestConcurrentColdPullsFetchOnce(t *testing.T) {
	e := newEnv(t, time.Hour)
	img := e.up.PushImage(t, "team/big", "v1", pullthroughtest.RandomBytes(4<<20), pullthroughtest.RandomBytes(2<<20), pullthroughtest.RandomBytes(100))
	var wg sync.WaitGroup
	errs := make(chan string, 32*4)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := "v1"
			if i%2 == 1 {
				ref = string(img.Digest)
			}
			m := get(t, http.MethodGet, e.cache+"/v2/up.test/team/big/manifests/"+ref)
			if m.status != http.StatusOK || !bytes.Equal(m.body, img.Manifest) {
				errs <- fmt.Sprintf("client %d: manifest %d", i, m.status)
				return
			}
			for _, d := range append([]digest.Digest{img.Config}, img.Layers...) {
				b := get(t, http.MethodGet, e.cache+"/v2/up.test/team/big/blobs/"+string(d))
				if b.status != http.StatusOK || digest.FromBytes(b.body) != d {
					errs <- fmt.Sprintf("client %d: blob %s: %d, %d bytes", i, d, b.status, len(b.body))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for _, d := range append([]digest.Digest{img.Config}, img.Layers...) {
		if n := e.proxy.BlobGets(d); n != 1 {
			t.Errorf("blob %s fetched from the upstream %d times by 32 clients, want 1", d, n)
		}
	}
	if got, want := e.proxy.BlobBytes(), img.Size-int64(len(img.Manifest)); got != want {
		t.Errorf("upstream sent %d blob bytes, want %d (the image once)", got, want)
	}
}

func TestStaleIfError(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault pullthroughtest.Fault
	}{
		{"connection dropped", pullthroughtest.Drop},
		{"503", http.StatusServiceUnavailable},
		{"429", http.StatusTooManyRequests},
		{"401", http.StatusUnauthorized},
		{"403", http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, time.Millisecond)
			img := e.up.PushImage(t, "team/app", "v1", pullthroughtest.RandomBytes(10000))
			uncached := e.up.PushImage(t, "team/other", "v1", pullthroughtest.RandomBytes(100))
			e.pull(t, "up.test/team/app", "v1", img)
			time.Sleep(5 * time.Millisecond) // past the tag's TTL
			e.proxy.SetFault(func(*http.Request) pullthroughtest.Fault { return c.fault })

			m := get(t, http.MethodGet, e.cache+"/v2/up.test/team/app/manifests/v1")
			if m.status != http.StatusOK || m.header.Get("Docker-Content-Digest") != string(img.Digest) {
				t.Fatalf("cached tag while the upstream fails: %d %s", m.status, m.body)
			}
			if w := m.header.Get("Warning"); !strings.HasPrefix(w, "110 ") || !strings.Contains(w, "up.test") {
				t.Errorf("stale answer's Warning = %q", w)
			}
			e.pull(t, "up.test/team/app", "v1", img)
			e.pull(t, "up.test/team/app", string(img.Digest), img)

			for _, ref := range []string{"v1", string(uncached.Digest)} {
				a := get(t, http.MethodGet, e.cache+"/v2/up.test/team/other/manifests/"+ref)
				code, msg := errCode(t, a)
				if a.status != http.StatusServiceUnavailable || code != "UNAVAILABLE" || !strings.Contains(msg, "upstream up.test") {
					t.Errorf("uncached %s while the upstream fails: %d %s %q, want 503 naming the upstream", ref, a.status, code, msg)
				}
			}
			b := get(t, http.MethodGet, e.cache+"/v2/up.test/team/other/blobs/"+string(uncached.Layers[0]))
			if b.status != http.StatusServiceUnavailable {
				t.Errorf("uncached blob while the upstream fails: %d", b.status)
			}
			// Back up: the next revalidation succeeds and has no warning.
			e.proxy.SetFault(nil)
			time.Sleep(1100 * time.Millisecond) // the failed upstream's pause
			m = get(t, http.MethodGet, e.cache+"/v2/up.test/team/other/manifests/v1")
			if m.status != http.StatusOK || m.header.Get("Warning") != "" {
				t.Errorf("after recovery: %d, Warning %q", m.status, m.header.Get("Warning"))
			}
		})
	}
}

func TestUpstreamNotFound(t *testing.T) {
	e := newEnv(t, time.Hour)
	a := get(t, http.MethodGet, e.cache+"/v2/up.test/team/none/manifests/v1")
	if code, _ := errCode(t, a); a.status != http.StatusNotFound || code != "MANIFEST_UNKNOWN" {
		t.Errorf("unknown upstream tag: %d %s, want 404 MANIFEST_UNKNOWN", a.status, code)
	}
	a = get(t, http.MethodGet, e.cache+"/v2/up.test/team/none/blobs/sha256:"+strings.Repeat("0", 64))
	if code, _ := errCode(t, a); a.status != http.StatusNotFound || code != "BLOB_UNKNOWN" {
		t.Errorf("unknown upstream blob: %d %s, want 404 BLOB_UNKNOWN", a.status, code)
	}
}

func TestTagFollowsUpstream(t *testing.T) {
	e := newEnv(t, 500*time.Millisecond)
	one := e.up.PushImage(t, "team/app", "stable", []byte("one"))
	e.pull(t, "up.test/team/app", "stable", one)
	two := e.up.PushImage(t, "team/app", "stable", []byte("two"))
	e.pull(t, "up.test/team/app", "stable", one) // within the TTL: the cached answer
	time.Sleep(600 * time.Millisecond)
	e.pull(t, "up.test/team/app", "stable", two)
	if n := e.proxy.Count(http.MethodHead, "/v2/team/app/manifests/stable"); n != 1 {
		t.Errorf("revalidations by HEAD: %d, want 1", n)
	}
	e.pull(t, "up.test/team/app", string(one.Digest), one) // the old one stays cached
}

func TestIndexBringsOnlyWhatIsAsked(t *testing.T) {
	e := newEnv(t, time.Hour)
	amd := e.up.PushImage(t, "team/multi", "", pullthroughtest.RandomBytes(5000))
	arm := e.up.PushImage(t, "team/multi", "", pullthroughtest.RandomBytes(5000))
	idx, raw := e.up.PushIndex(t, "team/multi", "v1", []string{"amd64", "arm64"}, []pullthroughtest.Image{amd, arm})
	m := get(t, http.MethodGet, e.cache+"/v2/up.test/team/multi/manifests/v1")
	if m.status != http.StatusOK || !bytes.Equal(m.body, raw) || m.header.Get("Docker-Content-Digest") != string(idx) {
		t.Fatalf("index through the cache: %d", m.status)
	}
	e.pull(t, "up.test/team/multi", string(amd.Digest), amd)
	if n := e.proxy.Count(http.MethodGet, "/v2/team/multi/manifests/"+string(arm.Digest)); n != 0 {
		t.Errorf("the arm64 manifest no one asked for was fetched %d times", n)
	}
	for _, d := range append([]digest.Digest{arm.Config}, arm.Layers...) {
		if n := e.proxy.BlobGets(d); n != 0 {
			t.Errorf("arm64 blob %s fetched %d times though no one asked", d, n)
		}
	}
}

func TestReferrersThroughTheCache(t *testing.T) {
	e := newEnv(t, time.Hour)
	img := e.up.PushImage(t, "team/signed", "v1", []byte("payload"))
	sig := e.up.PushSignature(t, "team/signed", img.Digest)
	a := get(t, http.MethodGet, e.cache+"/v2/up.test/team/signed/referrers/"+string(img.Digest))
	if a.status != http.StatusOK || !strings.Contains(string(a.body), string(sig)) {
		t.Fatalf("referrers through the cache: %d %s (want %s listed)", a.status, a.body, sig)
	}
	// The signature tag a node's policy looks up works through the cache.
	sigTag := "sha256-" + img.Digest.Encoded() + ".sig"
	m := get(t, http.MethodGet, e.cache+"/v2/up.test/team/signed/manifests/"+sigTag)
	if m.status != http.StatusOK || m.header.Get("Docker-Content-Digest") != string(sig) {
		t.Fatalf("signature tag through the cache: %d %s", m.status, m.body)
	}
}

// holdBody lets a test hold a blob body in the proxy after the first
// `after` bytes until release is closed, and optionally corrupt it.
func holdBody(t *testing.T, p *pullthroughtest.Proxy, d digest.Digest, after int64, release chan struct{}, corrupt bool) {
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { defer func() { _ = recover() }(); close(release) }) })
	p.SetBody(func(r *http.Request, off int64, b []byte) {
		if !strings.HasSuffix(r.URL.Path, string(d)) {
			return
		}
		if off+int64(len(b)) > after {
			<-release
			if corrupt {
				b[len(b)-1] ^= 0xff
			}
		}
	})
}

func TestFillStreamsAndSurvivesClients(t *testing.T) {
	e := newEnv(t, time.Hour)
	layer := pullthroughtest.RandomBytes(3 << 20)
	img := e.up.PushImage(t, "team/stream", "v1", layer)
	d := img.Layers[0]
	release := make(chan struct{})
	holdBody(t, e.proxy, d, 1<<20, release, false)

	// A client reads the first bytes while the upstream body is held,
	// then goes away.
	resp, err := http.Get(e.cache + "/v2/up.test/team/stream/blobs/" + string(d))
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first bytes before the upstream finished: %v", err)
	}
	if !bytes.Equal(first, layer[:len(first)]) {
		t.Fatal("first bytes differ")
	}
	resp.Body.Close()
	// A range request during the fill is answered from what arrived.
	r := get(t, http.MethodGet, e.cache+"/v2/up.test/team/stream/blobs/"+string(d), "Range", "bytes=100-199")
	if r.status != http.StatusPartialContent || !bytes.Equal(r.body, layer[100:200]) {
		t.Fatalf("range during the fill: %d, %d bytes", r.status, len(r.body))
	}
	close(release)
	// The fill completed without the client: the next pull is a hit.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b := get(t, http.MethodGet, e.cache+"/v2/up.test/team/stream/blobs/"+string(d), "Range", "bytes=-10")
		if b.status == http.StatusPartialContent && bytes.Equal(b.body, layer[len(layer)-10:]) && b.header.Get("Accept-Ranges") == "bytes" && e.proxy.BlobGets(d) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("blob not committed after its fill: %d, %d upstream GETs", b.status, e.proxy.BlobGets(d))
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.pull(t, "up.test/team/stream", "v1", img)
	if n := e.proxy.BlobGets(d); n != 1 {
		t.Errorf("upstream GETs of the layer: %d, want 1", n)
	}
}

func TestCorruptUpstreamIsNeverServedWhole(t *testing.T) {
	e := newEnv(t, time.Hour)
	layer := pullthroughtest.RandomBytes(1 << 20)
	img := e.up.PushImage(t, "team/bad", "v1", layer)
	d := img.Layers[0]
	release := make(chan struct{})
	close(release)
	holdBody(t, e.proxy, d, 512<<10, release, true)
	resp, err := http.Get(e.cache + "/v2/up.test/team/bad/blobs/" + string(d))
	if err != nil {
		t.Fatal(err)
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rerr == nil && resp.StatusCode == http.StatusOK && len(body) == len(layer) {
		t.Fatalf("a corrupt blob was served whole (%d bytes, digest %s)", len(body), digest.FromBytes(body))
	}
	// Nothing was committed: with the upstream healthy again the next
	// pull refills and validates.
	e.proxy.SetBody(nil)
	time.Sleep(1100 * time.Millisecond) // the failed upstream's pause
	b := get(t, http.MethodGet, e.cache+"/v2/up.test/team/bad/blobs/"+string(d))
	if b.status != http.StatusOK || !bytes.Equal(b.body, layer) {
		t.Fatalf("refill after a corrupt fill: %d, %d bytes", b.status, len(b.body))
	}
	if n := e.proxy.BlobGets(d); n < 2 {
		t.Errorf("upstream GETs = %d, want a refill", n)
	}
}

// storeBytes is what the cache's blob store holds on disk.
func storeBytes(t *testing.T, root string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(root, "blobs"), func(p string, d fs.DirEntry, err error) error {
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

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEvictionByMaxSize(t *testing.T) {
	const maxSize = 1100 << 10
	upAddr := servertest.Start(t, servertest.Options{})
	proxy := pullthroughtest.StartProxy(t, "http://"+upAddr, nil)
	root := t.TempDir()
	cacheAddr := servertest.Start(t, servertest.Options{Root: root, PullThrough: &config.PullThrough{MaxSize: maxSize, Upstreams: []config.Upstream{{
		Prefix: "up.test", URL: proxy.URL, Insecure: true, TagTTL: config.Duration(time.Hour), Timeout: config.Duration(time.Second),
	}}}})
	e := &env{up: &pullthroughtest.Client{Base: "http://" + upAddr}, proxy: proxy, cache: "http://" + cacheAddr, root: root}
	shared := pullthroughtest.RandomBytes(200 << 10)
	a := e.up.PushImage(t, "team/x", "a", shared, pullthroughtest.RandomBytes(400<<10))
	b := e.up.PushImage(t, "team/x", "b", shared, pullthroughtest.RandomBytes(400<<10))
	cLayer := pullthroughtest.RandomBytes(400 << 10)
	c := e.up.PushImage(t, "team/c", "c", cLayer)
	d := e.up.PushImage(t, "team/d", "d", pullthroughtest.RandomBytes(300<<10))

	e.pull(t, "up.test/team/x", "a", a)
	e.pull(t, "up.test/team/x", "b", b)

	// c's layer streams, held half way, while d fills the cache past
	// maxSize.
	release := make(chan struct{})
	holdBody(t, proxy, c.Layers[0], 200<<10, release, false)
	m := get(t, http.MethodGet, e.cache+"/v2/up.test/team/c/manifests/c")
	if m.status != http.StatusOK {
		t.Fatalf("manifest c: %d", m.status)
	}
	type result struct {
		body []byte
		err  error
	}
	streamed := make(chan result, 1)
	go func() {
		resp, err := http.Get(e.cache + "/v2/up.test/team/c/blobs/" + string(c.Layers[0]))
		if err != nil {
			streamed <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		streamed <- result{body, err}
	}()
	e.pull(t, "up.test/team/d", "d", d)
	tagsOf := func(repo string) string { return string(get(t, http.MethodGet, e.cache+"/v2/"+repo+"/tags/list").body) }
	waitFor(t, "the least recently pulled image to be evicted", func() bool { return !strings.Contains(tagsOf("up.test/team/x"), `"a"`) })
	if !strings.Contains(tagsOf("up.test/team/x"), `"b"`) {
		t.Errorf("b was evicted too early: %s", tagsOf("up.test/team/x"))
	}

	// What b shares with the evicted a is still there: b pulls whole
	// with the upstream refusing everything.
	proxy.SetFault(func(*http.Request) pullthroughtest.Fault { return http.StatusServiceUnavailable })
	e.pull(t, "up.test/team/x", string(b.Digest), b)
	proxy.SetFault(nil)

	close(release)
	r := <-streamed
	if r.err != nil || !bytes.Equal(r.body, cLayer) {
		t.Fatalf("the pull streaming through the eviction: %v, %d bytes (want %d, digest %s)", r.err, len(r.body), len(cLayer), c.Layers[0])
	}
	waitFor(t, "the store to get under maxSize", func() bool { return storeBytes(t, root) <= maxSize })
	e.pull(t, "up.test/team/c", "c", c)
	if n := proxy.BlobGets(c.Layers[0]); n != 1 {
		t.Errorf("c's layer fetched %d times, want 1 (eviction must not touch a pull in progress)", n)
	}
}

func TestEvictionByUnusedAge(t *testing.T) {
	upAddr := servertest.Start(t, servertest.Options{})
	root := t.TempDir()
	cacheAddr := servertest.Start(t, servertest.Options{Root: root, PullThrough: &config.PullThrough{MaxUnusedAge: config.Duration(time.Second), Upstreams: []config.Upstream{{
		Prefix: "up.test", URL: "http://" + upAddr, Insecure: true, TagTTL: config.Duration(time.Hour), Timeout: config.Duration(time.Second),
	}}}})
	e := &env{up: &pullthroughtest.Client{Base: "http://" + upAddr}, cache: "http://" + cacheAddr, root: root}
	img := e.up.PushImage(t, "team/old", "v1", pullthroughtest.RandomBytes(100<<10))
	next := e.up.PushImage(t, "team/new", "v1", pullthroughtest.RandomBytes(100<<10))
	e.pull(t, "up.test/team/old", "v1", img)
	// An age longer than a pull takes, so new is not evicted while it is
	// pulled (a 1ms age did that under load).
	time.Sleep(1100 * time.Millisecond)
	// Eviction runs after each fill; these trigger it.
	e.pull(t, "up.test/team/new", "v1", next)
	waitFor(t, "unused content to go", func() bool {
		return !strings.Contains(string(get(t, http.MethodGet, e.cache+"/v2/up.test/team/old/tags/list").body), `"v1"`)
	})
}

func TestGCAndPruneKeepCachedContent(t *testing.T) {
	e := newEnv(t, time.Hour)
	img := e.up.PushImage(t, "team/untagged", "v1", pullthroughtest.RandomBytes(50<<10))
	// Pulled by digest only: nothing in the cache tags it.
	e.pull(t, "up.test/team/untagged", string(img.Digest), img)

	cfg := &config.Config{Storage: config.Storage{Filesystem: &config.Filesystem{RootDirectory: e.root}}}
	cfg.Defaults()
	ctx := context.Background()
	st, err := server.OpenStores(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := gc.Prune(ctx, st.Meta, gc.PruneOptions{KeepTagRevisions: 1, KeepYoungerThan: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	res, err := gc.Collect(ctx, st.Blobs, st.Meta, gc.Options{Grace: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deleted) != 0 || len(res.Links) != 0 {
		t.Fatalf("gc removed cached content: %+v", res)
	}
	e.proxy.SetFault(func(*http.Request) pullthroughtest.Fault { return pullthroughtest.Drop })
	e.pull(t, "up.test/team/untagged", string(img.Digest), img)
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, time.Millisecond)
	img := e.up.PushImage(t, "team/app", "v1", pullthroughtest.RandomBytes(10000))
	e.pull(t, "up.test/team/app", "v1", img)
	// A fill commits after its client has the last byte: wait for the
	// fills, so the second pull is served from the cache (hits), not
	// joined to a fill still committing.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(get(t, http.MethodGet, e.cache+"/extensions/v2/metrics").body), "berth_pullthrough_fills_in_flight 0") {
		if time.Now().After(deadline) {
			t.Fatal("the first pull's fills did not finish in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.pull(t, "up.test/team/app", string(img.Digest), img)
	time.Sleep(5 * time.Millisecond)
	e.proxy.SetFault(func(*http.Request) pullthroughtest.Fault { return http.StatusTooManyRequests })
	e.pull(t, "up.test/team/app", "v1", img)
	m := string(get(t, http.MethodGet, e.cache+"/extensions/v2/metrics").body)
	for _, want := range []string{
		`berth_pullthrough_misses_total{kind="manifest",upstream="up.test"} 1`,
		`berth_pullthrough_hits_total{kind="blob",upstream="up.test"}`,
		`berth_pullthrough_stale_serves_total{kind="manifest",upstream="up.test"} 1`,
		`berth_pullthrough_upstream_errors_total{reason="throttled",upstream="up.test"} 1`,
		fmt.Sprintf(`berth_pullthrough_upstream_bytes_total{upstream="up.test"} %d`, img.Size),
		`berth_pullthrough_fills_in_flight 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
