package console_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/api"
	"github.com/berth-registry/berth/internal/console"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/storage"
	"github.com/opencontainers/go-digest"
)

// benchConsole is a console over a real SQLite metadata store and a
// memory blob store, filled through the registry's push path.
func benchConsole(b *testing.B) (*console.Handler, *registry.Registry, *metadata.Store) {
	b.Helper()
	ctx := context.Background()
	meta, err := metadata.OpenSQLite(ctx, filepath.Join(b.TempDir(), "metadata.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { meta.Close() })
	reg := registry.New(storage.NewMemory(), meta, registry.Options{})
	log := slog.New(slog.DiscardHandler)
	h, err := console.New(console.Options{API: api.NewHandler(reg, log, api.Options{}), Registry: reg, Meta: meta, Storage: "memory"})
	if err != nil {
		b.Fatal(err)
	}
	return h, reg, meta
}

func putBlob(b *testing.B, reg *registry.Registry, repo string, body []byte) digest.Digest {
	b.Helper()
	d := digest.FromBytes(body)
	if err := reg.PutBlob(context.Background(), repo, d, bytes.NewReader(body)); err != nil {
		b.Fatal(err)
	}
	return d
}

// pushImage pushes an image manifest (one layer, a linux/amd64 config)
// tagged tag; n makes each manifest distinct.
func benchPush(b *testing.B, reg *registry.Registry, repo, tag string, n int) {
	b.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","config":{"Cmd":["serve"]},"rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := []byte("layer of " + repo)
	cd, ld := putBlob(b, reg, repo, cfg), putBlob(b, reg, repo, layer)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}],"annotations":{"n":"%d"}}`,
		cd, len(cfg), ld, len(layer), n)
	if _, _, err := reg.PutManifest(context.Background(), repo, tag, "application/vnd.oci.image.manifest.v1+json", strings.NewReader(m)); err != nil {
		b.Fatal(err)
	}
}

func render(b *testing.B, h http.Handler, target string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	if rec.Code != 200 {
		b.Fatalf("GET %s: %d\n%s", target, rec.Code, rec.Body.String())
	}
	return rec.Body.Len()
}

// BenchmarkRepositoryList renders a page of the repository list of a
// registry holding 10,000 repositories: the first page, a page deep in the
// list (keyset: it costs the same), and a substring search. Target: < 50 ms.
func BenchmarkRepositoryList(b *testing.B) {
	h, reg, _ := benchConsole(b)
	for i := range 10_000 {
		benchPush(b, reg, fmt.Sprintf("team-%02d/app-%05d", i%50, i), "v1", i)
	}
	for _, c := range []struct{ name, target string }{
		{"first", "/"},
		{"deep", "/?after=team-37%2Fapp-09000"},
		{"search", "/?q=app-0999"},
		{"prefix", "/?q=team-49%2F&match=prefix"},
	} {
		b.Run(c.name, func(b *testing.B) {
			size := 0
			for b.Loop() {
				size = render(b, h, c.target)
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}

// BenchmarkTagPage renders a page (TagPageSize rows) of the tags of a
// repository with 5,000 tags, each on its own manifest: the first page by
// name and by push time, by size (every row's summary, cached), and a
// page deep in the list (keyset: it costs the same). Target: < 100 ms.
func BenchmarkTagPage(b *testing.B) {
	h, reg, _ := benchConsole(b)
	for i := range 5_000 {
		benchPush(b, reg, "team/big", fmt.Sprintf("v1.%d", i), i)
	}
	render(b, h, "/r/team/big") // the platforms are read once per digest, then cached
	for _, c := range []struct{ name, target string }{
		{"by-name", "/r/team/big"},
		{"by-pushed", "/r/team/big?sort=pushed&dir=desc"},
		{"by-size", "/r/team/big?sort=size&dir=desc"},
		{"deep-by-name", "/r/team/big?sort=name&dir=asc&after=v1.4000"},
	} {
		b.Run(c.name, func(b *testing.B) {
			size := 0
			for b.Loop() {
				size = render(b, h, c.target)
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}
