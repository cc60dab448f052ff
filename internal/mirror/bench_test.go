package mirror_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/mirrortest"
	"github.com/berth-registry/berth/internal/testpeer"
)

// countingProxy fronts a registry and counts the blob bytes uploaded
// through it: the "bytes moved" of every tool, measured the same way.
type countingProxy struct {
	host  string
	bytes atomic.Int64
}

func startCountingProxy(tb testing.TB, upstream string) *countingProxy {
	u, _ := url.Parse("http://" + upstream)
	rp := httputil.NewSingleHostReverseProxy(u)
	cp := &countingProxy{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && r.Body != nil && (r.Method == http.MethodPut || r.Method == http.MethodPatch) {
			r.Body = countBody{r.Body, &cp.bytes}
		}
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(s.Close)
	cp.host = strings.TrimPrefix(s.URL, "http://")
	return cp
}

type countBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// BenchmarkMirrorPayload mirrors a synthetic 100-component payload (half of
// each image's layers shared, every 10th multi-arch) from CNCF Distribution
// to a fresh CNCF Distribution, with Berth (registry to registry, and
// through a directory) and with crane, regsync and skopeo sync, reporting
// wall time and the blob bytes each moved. Run:
//
//	go test ./internal/mirror -run '^$' -bench MirrorPayload -benchtime 1x
func BenchmarkMirrorPayload(b *testing.B) {
	ctx := context.Background()
	src := testpeer.StartDistribution(b)
	spec := mirrortest.ReleaseSpec{Components: 100, LayersPerImage: 4, SharedPool: 8, LayerSize: 256 << 10, MultiArchEvery: 10, TagComponents: true}
	rel, err := mirrortest.PushRelease(ctx, src, spec)
	if err != nil {
		b.Fatal(err)
	}
	repo := "openshift-release-dev/ocp-v4.0-art-dev"
	b.Logf("payload: %d components, %d unique blobs, %.1f MiB unique", len(rel.Components), rel.UniqueBlobs, float64(rel.UniqueBytes)/(1<<20))

	berthJobs := func(b *testing.B, tgt mirror.Target, dstRepo string) []mirror.Job {
		c, _ := mirror.NewClient(mirror.ClientOptions{})
		s, _ := c.Registry(src)
		tags, err := s.Tags(ctx, repo)
		if err != nil {
			b.Fatal(err)
		}
		var jobs []mirror.Job
		for _, tag := range tags {
			jobs = append(jobs, mirror.Job{Source: s, SrcRepo: repo, SrcRef: tag, Target: tgt, DstRepo: dstRepo, DstTag: tag})
		}
		return jobs
	}
	opts := mirror.Options{Jobs: 8, BlobJobs: 16, PerRegistry: 16}
	tools := []struct {
		name string
		run  func(b *testing.B, dst string)
	}{
		{"berth", func(b *testing.B, dst string) {
			c, _ := mirror.NewClient(mirror.ClientOptions{})
			t, _ := c.Registry(dst)
			if err := mirror.NewCopier(opts).Run(ctx, berthJobs(b, t, repo)).Err(); err != nil {
				b.Fatal(err)
			}
		}},
		{"berth-via-dir", func(b *testing.B, dst string) {
			dir := b.TempDir()
			l, _ := mirror.OpenLayout(dir, true)
			if err := mirror.NewCopier(opts).Run(ctx, berthJobs(b, l, repo)).Err(); err != nil {
				b.Fatal(err)
			}
			c, _ := mirror.NewClient(mirror.ClientOptions{})
			jobs, err := c.LayoutJobs(l, dst)
			if err != nil {
				b.Fatal(err)
			}
			if err := mirror.NewCopier(opts).Run(ctx, jobs).Err(); err != nil {
				b.Fatal(err)
			}
		}},
		{"crane", func(b *testing.B, dst string) {
			benchPeer(b, "crane", "copy", "--all-tags", "--insecure", src+"/"+repo, dst+"/"+repo)
		}},
		{"regsync", func(b *testing.B, dst string) {
			cfg := filepath.Join(b.TempDir(), "regsync.yml")
			os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
creds:
  - registry: %s
    tls: disabled
  - registry: %s
    tls: disabled
sync:
  - source: %s/%s
    target: %s/%s
    type: repository
`, src, dst, src, repo, dst, repo)), 0o644)
			benchPeer(b, "regsync", "once", "-c", cfg)
		}},
		{"skopeo-sync", func(b *testing.B, dst string) {
			benchPeer(b, "skopeo", "sync", "--all", "--preserve-digests", "--src", "docker", "--dest", "docker",
				"--src-tls-verify=false", "--dest-tls-verify=false", src+"/"+repo, dst+"/mirror")
		}},
	}
	for _, tool := range tools {
		b.Run(tool.name, func(b *testing.B) {
			var moved int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				proxy := startCountingProxy(b, testpeer.StartDistribution(b))
				b.StartTimer()
				start := time.Now()
				tool.run(b, proxy.host)
				b.StopTimer()
				moved += proxy.bytes.Load()
				b.Logf("%s: %s, %.1f MiB uploaded", tool.name, time.Since(start).Round(time.Millisecond), float64(proxy.bytes.Load())/(1<<20))
			}
			b.ReportMetric(float64(moved)/float64(b.N)/(1<<20), "MiB-moved/op")
			b.ReportMetric(float64(rel.UniqueBytes)/(1<<20), "MiB-unique")
		})
	}
}

func benchPeer(b *testing.B, name string, args ...string) {
	b.Helper()
	out, err := exec.Command(testpeer.Need(b, name), args...).CombinedOutput()
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
