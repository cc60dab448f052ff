package pullthrough_test

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/pullthrough/pullthroughtest"
	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/opencontainers/go-digest"
)

// The pull-through benchmarks, all on loopback against CNCF Distribution
// (htpasswd, TLS from a private CA) as the upstream:
//
//	ColdPull/direct   an image pulled straight from the upstream
//	ColdPull/cache    the same kind of image, uncached, through berth
//	WarmPull          the image again, from berth's cache
//	Cold32/berth      32 clients pulling one uncached image at once
//	Cold32/distribution  the same through Distribution in proxy mode
//	TTFB/*            time to the first byte of a big uncached blob
//
// Each op pulls a freshly pushed image (pushing is not timed), so "cold"
// is really cold. upstream-MB/op is what the upstream sent.

const benchLayers, benchLayerSize = 4, 16 << 20

type pullClient struct {
	base string // scheme://host
	hc   *http.Client
	user string
	pass string
}

func (c pullClient) get(path string) (*http.Response, error) {
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	return c.hc.Do(req)
}

// pull fetches repo:ref and its blobs (up to 3 at a time, like skopeo),
// checking every digest.
func (c pullClient) pull(repo, ref string, img pullthroughtest.Image) error {
	resp, err := c.get("/v2/" + repo + "/manifests/" + ref)
	if err != nil {
		return err
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || digest.FromBytes(m) != img.Digest {
		return fmt.Errorf("manifest %s:%s: %s", repo, ref, resp.Status)
	}
	blobs := append([]digest.Digest{img.Config}, img.Layers...)
	errs := make(chan error, len(blobs))
	sem := make(chan struct{}, 3)
	for _, d := range blobs {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			resp, err := c.get("/v2/" + repo + "/blobs/" + string(d))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			h := digest.Canonical.Digester()
			if _, err := io.Copy(h.Hash(), resp.Body); err != nil {
				errs <- err
				return
			}
			if h.Digest() != d {
				errs <- fmt.Errorf("blob %s: got %s (%s)", d, h.Digest(), resp.Status)
				return
			}
			errs <- nil
		}()
	}
	for range blobs {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

type benchWorld struct {
	dist  *pullthroughtest.Distribution
	proxy *pullthroughtest.Proxy
	cache pullClient
	n     int
}

func newBenchWorld(b *testing.B) *benchWorld {
	b.Helper()
	ca := pullthroughtest.NewCA(b)
	dist := pullthroughtest.StartDistribution(b, ca, pullthroughtest.DistributionOptions{})
	_, _, proxyTLS := ca.Issue(b, "proxy")
	proxy := pullthroughtest.StartTLSProxy(b, dist.URL, ca.Pool, proxyTLS)
	addr := servertest.Start(b, servertest.Options{PullThrough: &config.PullThrough{Upstreams: []config.Upstream{{
		Prefix: prefix, URL: proxy.URL, AuthFile: dist.AuthFile(b, proxy.Host), CAFile: ca.File,
		TagTTL: config.Duration(time.Hour), Timeout: config.Duration(5 * time.Second),
	}}}})
	return &benchWorld{dist: dist, proxy: proxy, cache: pullClient{base: "http://" + addr, hc: &http.Client{}}}
}

// direct pulls from the upstream through the same counting proxy the
// cache uses, so both pay the same hops.
func (w *benchWorld) direct() pullClient {
	return pullClient{base: w.proxy.URL, hc: w.dist.HTTPClient(), user: w.dist.User, pass: w.dist.Pass}
}

func (w *benchWorld) push(b *testing.B, layers int, size int) (string, pullthroughtest.Image) {
	b.Helper()
	w.n++
	repo := fmt.Sprintf("bench/app%d", w.n)
	var ls [][]byte
	for range layers {
		ls = append(ls, pullthroughtest.RandomBytes(size))
	}
	return repo, w.dist.Client().PushImage(b, repo, "v1", ls...)
}

func BenchmarkColdPull(b *testing.B) {
	w := newBenchWorld(b)
	direct := w.direct()
	b.Run("direct", func(b *testing.B) {
		b.SetBytes(benchLayers * benchLayerSize)
		for b.Loop() {
			b.StopTimer()
			repo, img := w.push(b, benchLayers, benchLayerSize)
			b.StartTimer()
			if err := direct.pull(repo, "v1", img); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache", func(b *testing.B) {
		b.SetBytes(benchLayers * benchLayerSize)
		before := w.proxy.BlobBytes()
		for b.Loop() {
			b.StopTimer()
			repo, img := w.push(b, benchLayers, benchLayerSize)
			b.StartTimer()
			if err := w.cache.pull(prefix+"/"+repo, "v1", img); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(w.proxy.BlobBytes()-before)/float64(b.N)/(1<<20), "upstream-MB/op")
	})
}

func BenchmarkWarmPull(b *testing.B) {
	w := newBenchWorld(b)
	repo, img := w.push(b, benchLayers, benchLayerSize)
	if err := w.cache.pull(prefix+"/"+repo, "v1", img); err != nil {
		b.Fatal(err)
	}
	pushed := pullthroughtest.Client{Base: w.cache.base}
	var ls [][]byte
	for range benchLayers {
		ls = append(ls, pullthroughtest.RandomBytes(benchLayerSize))
	}
	local := pushed.PushImage(b, "local/app", "v1", ls...)
	b.Run("cached", func(b *testing.B) {
		b.SetBytes(benchLayers * benchLayerSize)
		for b.Loop() {
			if err := w.cache.pull(prefix+"/"+repo, "v1", img); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pushed", func(b *testing.B) {
		b.SetBytes(benchLayers * benchLayerSize)
		for b.Loop() {
			if err := w.cache.pull("local/app", "v1", local); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// cold32 has 32 clients pull one freshly pushed image through c at once.
func cold32(b *testing.B, w *benchWorld, c pullClient, repoPrefix string) {
	b.SetBytes(benchLayers * benchLayerSize)
	before := w.proxy.BlobBytes()
	for b.Loop() {
		b.StopTimer()
		repo, img := w.push(b, benchLayers, benchLayerSize)
		b.StartTimer()
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- c.pull(repoPrefix+repo, "v1", img)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(w.proxy.BlobBytes()-before)/float64(b.N)/(1<<20), "upstream-MB/op")
}

func BenchmarkCold32(b *testing.B) {
	w := newBenchWorld(b)
	b.Run("berth", func(b *testing.B) { cold32(b, w, w.cache, prefix+"/") })
	b.Run("distribution", func(b *testing.B) {
		// Distribution's proxy mode, on the same upstream through the
		// same counting proxy.
		d := pullthroughtest.StartDistribution(b, w.dist.CA, pullthroughtest.DistributionOptions{ProxyRemote: w.proxy.URL, ProxyUser: w.dist.User, ProxyPass: w.dist.Pass})
		cold32(b, w, pullClient{base: d.URL, hc: d.HTTPClient()}, "")
	})
}

// BenchmarkTTFB is the time to the first byte of an uncached 256 MiB blob,
// through the cache and straight from the upstream (median of the ops, in
// ms).
func BenchmarkTTFB(b *testing.B) {
	w := newBenchWorld(b)
	direct := w.direct()
	for _, c := range []struct {
		name   string
		client pullClient
		prefix string
	}{{"direct", direct, ""}, {"cache", w.cache, prefix + "/"}} {
		b.Run(c.name, func(b *testing.B) {
			var ttfb []time.Duration
			for b.Loop() {
				b.StopTimer()
				repo, img := w.push(b, 1, 256<<20)
				b.StartTimer()
				start := time.Now()
				resp, err := c.client.get("/v2/" + c.prefix + repo + "/blobs/" + string(img.Layers[0]))
				if err != nil {
					b.Fatal(err)
				}
				one := make([]byte, 1)
				if _, err := io.ReadFull(resp.Body, one); err != nil {
					b.Fatal(err)
				}
				ttfb = append(ttfb, time.Since(start))
				b.StopTimer()
				_, _ = io.Copy(io.Discard, resp.Body) // let the fill finish before the next op
				resp.Body.Close()
				b.StartTimer()
			}
			sort.Slice(ttfb, func(i, j int) bool { return ttfb[i] < ttfb[j] })
			b.ReportMetric(float64(ttfb[len(ttfb)/2].Microseconds())/1000, "ttfb-ms")
		})
	}
}
