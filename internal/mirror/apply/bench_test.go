package apply_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/internal/bench"
	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/apply"
	"github.com/berth-registry/berth/internal/mirror/imageset"
	"github.com/berth-registry/berth/internal/mirror/mirrortest"
	"github.com/berth-registry/berth/internal/server/servertest"
)

// wire counts the blob bytes that cross a proxy in either direction:
// downloads from a source, uploads to a destination.
type wire struct {
	host     string
	down, up atomic.Int64
}

func startWire(tb testing.TB, upstream string) *wire {
	u, _ := url.Parse("http://" + upstream)
	rp := httputil.NewSingleHostReverseProxy(u)
	w := &wire{}
	s := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Body != nil && (r.Method == http.MethodPut || r.Method == http.MethodPatch) {
			r.Body = counted{r.Body, &w.up}
		}
		rp.ServeHTTP(&countedWriter{rw, &w.down, r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/")}, r)
	}))
	tb.Cleanup(s.Close)
	w.host = strings.TrimPrefix(s.URL, "http://")
	return w
}

type counted struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c counted) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type countedWriter struct {
	http.ResponseWriter
	n  *atomic.Int64
	on bool
}

func (c *countedWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	if c.on {
		c.n.Add(int64(n))
	}
	return n, err
}

// pushCatalog builds a catalog of n packages (one channel of three bundles
// each, replaces chains, a related image per bundle) in the registry and
// returns its reference.
func pushCatalog(tb testing.TB, host string, n int) string {
	var fbc strings.Builder
	line := func(v any) {
		b, _ := json.Marshal(v)
		fbc.Write(append(b, '\n'))
	}
	for i := 0; i < n; i++ {
		pkg := fmt.Sprintf("op%02d", i)
		line(map[string]any{"schema": "olm.package", "name": pkg, "defaultChannel": "stable"})
		var entries []map[string]string
		for v := 0; v < 3; v++ {
			e := map[string]string{"name": fmt.Sprintf("%s.v1.%d.0", pkg, v)}
			if v > 0 {
				e["replaces"] = fmt.Sprintf("%s.v1.%d.0", pkg, v-1)
			}
			entries = append(entries, e)
			seed := uint64(50000 + 10*i + v)
			bundle, err := mirrortest.PushImage(fmt.Sprintf("%s/ops/%s-bundle:v1.%d.0", host, pkg, v), seed)
			if err != nil {
				tb.Fatal(err)
			}
			operand, err := mirrortest.PushImage(fmt.Sprintf("%s/ops/%s-operand:v1.%d.0", host, pkg, v), seed+100000, seed+200000)
			if err != nil {
				tb.Fatal(err)
			}
			line(map[string]any{"schema": "olm.bundle", "name": e["name"], "package": pkg,
				"image":         fmt.Sprintf("%s/ops/%s-bundle@%s", host, pkg, bundle),
				"properties":    []map[string]any{{"type": "olm.package", "value": map[string]string{"packageName": pkg, "version": fmt.Sprintf("1.%d.0", v)}}},
				"relatedImages": []map[string]string{{"name": "operand", "image": fmt.Sprintf("%s/ops/%s-operand@%s", host, pkg, operand)}}})
		}
		line(map[string]any{"schema": "olm.channel", "package": pkg, "name": "stable", "entries": entries})
	}
	layer, err := mirrortest.FileLayer(map[string][]byte{"configs/index.json": []byte(fbc.String())})
	if err != nil {
		tb.Fatal(err)
	}
	img, err := mirrortest.Image([]v1.Layer{layer}, "amd64", map[string]string{"operators.operatorframework.io.index.configs.v1": "/configs"})
	if err != nil {
		tb.Fatal(err)
	}
	ref := host + "/redhat/operator-index:v4.17"
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		tb.Fatal(err)
	}
	return ref
}

func run(tb testing.TB, ctx context.Context, c *mirror.Client, req apply.Request) *apply.Plan {
	p, err := apply.New(ctx, c, req)
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.RebuildCatalogs(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := mirror.NewCopier(mirror.Options{Jobs: 8, BlobJobs: 16, PerRegistry: 16}).Run(ctx, p.Jobs).Err(); err != nil {
		tb.Fatal(err)
	}
	if err := p.WriteRecord(); err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkImageSet carries one image set — a release of 100 components
// (as the release tests build them) and a catalog of 50 packages filtered
// to 10 — to disk with archives and back into a berth serve, then reruns
// it unchanged against the receiver's state. Run:
//
//	go test ./internal/mirror/apply -run '^$' -bench ImageSet -benchtime 1x
//
// BERTH_BENCH_LAYER_KIB sets the release's layer size (default 256);
// BERTH_BENCH_UNPACK=1 unpacks the archives first, as --unpack-dir does.
func BenchmarkImageSet(b *testing.B) {
	ctx := context.Background()
	srcHost := mirrortest.StartRegistry(b)
	src := startWire(b, srcHost)
	layer := 256 << 10
	if s := os.Getenv("BERTH_BENCH_LAYER_KIB"); s != "" {
		fmt.Sscan(s, &layer)
		layer <<= 10
	}
	rel, err := mirrortest.PushRelease(ctx, src.host, mirrortest.ReleaseSpec{Version: "4.17.2", Components: 100, LayersPerImage: 4, SharedPool: 8, LayerSize: layer, MultiArchEvery: 10})
	if err != nil {
		b.Fatal(err)
	}
	catRef := pushCatalog(b, src.host, 50)
	graph := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"nodes":[{"version":"4.17.2","payload":%q}],"edges":[]}`, src.host+"/openshift-release-dev/ocp-release@"+rel.Digest)
	}))
	b.Cleanup(graph.Close)
	var pk strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&pk, "    - name: op%02d\n", i*5)
	}
	iscFile := filepath.Join(b.TempDir(), "isc.yaml")
	os.WriteFile(iscFile, []byte(fmt.Sprintf("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n    channels:\n    - name: stable-4.17\n  operators:\n  - catalog: %s\n    packages:\n%s",
		catRef, pk.String())), 0o644)
	isc, err := imageset.ReadImageSetConfiguration(iscFile)
	if err != nil {
		b.Fatal(err)
	}
	graphs := &imageset.GraphClient{URL: graph.URL}

	for i := 0; i < b.N; i++ {
		work := b.TempDir()
		ceiling, err := bench.DurableWriteCeiling(work, 256<<20)
		if err != nil {
			b.Fatal(err)
		}
		dst := startWire(b, servertest.Start(b, servertest.Options{}))
		c, _ := mirror.NewClient(mirror.ClientOptions{})
		src.down.Store(0)

		// Leg 1: mirror to disk, packed.
		start := time.Now()
		l, _ := mirror.OpenLayout(filepath.Join(work, "set"), true)
		p := run(b, ctx, c, apply.Request{Config: isc, ToDir: l, Graphs: graphs})
		adir := filepath.Join(work, "archives")
		set, err := mirror.PackLayout(ctx, l.Dir(), adir, 64<<20)
		if err != nil {
			b.Fatal(err)
		}
		toDisk := time.Since(start)
		var archived, unique int64
		for _, a := range set.Archives {
			archived += a.Size
		}
		st, _ := l.State()
		for _, d := range st.Blobs {
			h, _ := v1.NewHash(d)
			fi, err := os.Stat(filepath.Join(l.Dir(), "blobs", h.Algorithm, h.Hex))
			if err == nil {
				unique += fi.Size()
			}
		}

		// Leg 2: disk to mirror, straight from the archives (as --from-dir
		// without --unpack-dir): small files extracted and verified, large
		// blobs hashed as they are pushed.
		start = time.Now()
		open := mirror.OpenArchives
		if os.Getenv("BERTH_BENCH_UNPACK") != "" {
			open = mirror.OpenUnpacked // as --unpack-dir
		}
		in, _, err := open(ctx, adir, filepath.Join(work, "imported"), mirror.UnpackOptions{})
		if err != nil {
			b.Fatal(err)
		}
		unpacked := time.Since(start)
		pushed := run(b, ctx, c, apply.Request{Config: isc, FromDir: in, To: dst.host + "/mirror"})
		toMirror := time.Since(start)
		if _, err := apply.WriteResources(filepath.Join(work, "cluster-resources"), pushed.Resources()); err != nil {
			b.Fatal(err)
		}

		// Leg 3: the same set again, against what the receiver holds.
		recv, err := c.RegistryState(ctx, mirrorRepos(pushed))
		if err != nil {
			b.Fatal(err)
		}
		l2, _ := mirror.OpenLayout(filepath.Join(work, "set2"), true)
		l2.AssumePresent(recv)
		run(b, ctx, c, apply.Request{Config: isc, ToDir: l2, Graphs: graphs})
		set2, err := mirror.PackLayout(ctx, l2.Dir(), filepath.Join(work, "archives2"), 64<<20)
		if err != nil {
			b.Fatal(err)
		}
		var again int64
		for _, a := range set2.Archives {
			again += a.Size
		}

		perBlob := perBlobCeiling(b, filepath.Join(work, "ceiling"), l.Dir(), st.Blobs)
		mib := func(n int64) float64 { return float64(n) / (1 << 20) }
		through := mib(archived) / toMirror.Seconds()
		b.Logf("images %d (%d catalogs); to disk %s, to mirror %s (reading the archives' index and small files %s)", len(p.Jobs), len(p.Catalogs), toDisk.Round(time.Millisecond), toMirror.Round(time.Millisecond), unpacked.Round(time.Millisecond))
		b.Logf("wire: %.1f MiB from the source, %.1f MiB to the mirror; archives %.1f MiB for %.1f MiB of unique blobs (%.3fx)", mib(src.down.Load()), mib(dst.up.Load()), mib(archived), mib(unique), float64(archived)/float64(unique))
		b.Logf("unchanged rerun: %.3f MiB of archives; unpack-verify-push %.1f MiB/s, durable-write ceiling %.1f MiB/s (%.0f%%), the same blobs written and fsynced one by one %.1f MiB/s (%.0f%%)", mib(again), through, ceiling, 100*through/ceiling, perBlob, 100*through/perBlob)
		b.ReportMetric(toDisk.Seconds(), "s-to-disk")
		b.ReportMetric(toMirror.Seconds(), "s-to-mirror")
		b.ReportMetric(float64(archived)/float64(unique), "archive/unique")
		b.ReportMetric(mib(again), "MiB-rerun")
		b.ReportMetric(100*through/ceiling, "%-of-ceiling")
	}
}

// perBlobCeiling writes each blob of the layout as its own file, fsynced,
// as any registry that makes each pushed blob durable must: the ceiling
// for a payload of this shape.
func perBlobCeiling(tb testing.TB, dir, layout string, blobs []string) float64 {
	os.MkdirAll(dir, 0o755)
	var total int64
	start := time.Now()
	for i, d := range blobs {
		h, _ := v1.NewHash(d)
		raw, err := os.ReadFile(filepath.Join(layout, "blobs", h.Algorithm, h.Hex))
		if err != nil {
			continue
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			tb.Fatal(err)
		}
		f.Write(raw)
		f.Sync()
		f.Close()
		total += int64(len(raw))
	}
	return float64(total) / (1 << 20) / time.Since(start).Seconds()
}

// mirrorRepos are the repositories a disk-to-mirror run pushed to.
func mirrorRepos(p *apply.Plan) []string {
	seen := map[string]bool{}
	var out []string
	for _, j := range p.Jobs {
		r := j.Target.Name() + "/" + j.DstRepo
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}
