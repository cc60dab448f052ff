package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/storage"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTestRegistry(t *testing.T) *Registry {
	t.Helper()
	dir := t.TempDir()
	blobs, err := storage.NewFilesystem(dir)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := metadata.OpenSQLite(context.Background(), filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	return New(blobs, meta, Options{})
}

func TestPurgeUploads(t *testing.T) {
	ctx := context.Background()
	r := newTestRegistry(t)
	id, err := r.StartUpload(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AppendUpload(ctx, "p", id, 0, bytes.NewReader([]byte("abc"))); err != nil {
		t.Fatal(err)
	}
	if n, err := r.PurgeUploads(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("fresh upload purged: %d, %v", n, err)
	}
	if n, err := r.PurgeUploads(ctx, -time.Second); err != nil || n != 1 {
		t.Fatalf("stale upload not purged: %d, %v", n, err)
	}
	_, err = r.UploadSize(ctx, "p", id)
	if e, ok := oci.AsError(err); !ok || e.Code != oci.ErrBlobUploadUnknown {
		t.Fatalf("purged upload still answers: %v", err)
	}
	if len(r.hashes) != 0 {
		t.Fatalf("purge left %d running hashes behind", len(r.hashes))
	}
}

// TestDigestMismatchDiscards checks that a wrong digest is refused and its
// bytes are gone (the session too).
func TestDigestMismatchDiscards(t *testing.T) {
	ctx := context.Background()
	r := newTestRegistry(t)
	wrong := digest.FromString("something else")
	err := r.PutBlob(ctx, "d", wrong, bytes.NewReader([]byte("actual bytes")))
	if e, ok := oci.AsError(err); !ok || e.Code != oci.ErrDigestInvalid {
		t.Fatalf("want DIGEST_INVALID, got %v", err)
	}
	if _, err := r.blobs.Stat(ctx, digest.FromString("actual bytes")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("mismatched bytes were kept: %v", err)
	}
	n := 0
	_ = r.blobs.(storage.UploadLister).Uploads(ctx, func(string, time.Time) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d upload sessions left after a refused push", n)
	}
}

// TestSHA512Upload verifies a chunked upload against a sha512 digest, which
// needs the stored bytes rehashed with the other algorithm.
func TestSHA512Upload(t *testing.T) {
	ctx := context.Background()
	r := newTestRegistry(t)
	data := bytes.Repeat([]byte("512"), 5000)
	d := digest.SHA512.FromBytes(data)
	id, _ := r.StartUpload(ctx, "s")
	if _, err := r.AppendUpload(ctx, "s", id, 0, bytes.NewReader(data[:100])); err != nil {
		t.Fatal(err)
	}
	if err := r.CompleteUpload(ctx, "s", id, d, 100, bytes.NewReader(data[100:])); err != nil {
		t.Fatal(err)
	}
	if n, err := r.StatBlob(ctx, "s", d); err != nil || n != int64(len(data)) {
		t.Fatalf("sha512 blob: %d, %v", n, err)
	}
}

// The manifest cache counts hits and misses under the cluster registry's
// digest-cache names.
func TestManifestCacheMetrics(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	blobs, err := storage.NewFilesystem(dir)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := metadata.OpenSQLite(ctx, filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	pr := prometheus.NewRegistry()
	r := New(blobs, meta, Options{Metrics: pr})
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd := digest.FromBytes(cfg)
	if err := r.PutBlob(ctx, "c", cd, bytes.NewReader(cfg)); err != nil {
		t.Fatal(err)
	}
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + string(cd) + `","size":` + fmt.Sprint(len(cfg)) + `},"layers":[]}`)
	if _, _, err := r.PutManifest(ctx, "c", "v1", "application/vnd.oci.image.manifest.v1+json", bytes.NewReader(m)); err != nil {
		t.Fatal(err)
	}
	// A fresh registry over the same stores starts with an empty cache.
	r2 := New(blobs, meta, Options{Metrics: prometheus.NewRegistry()})
	for _, reg := range []*Registry{r, r, r2, r2} {
		if _, raw, err := reg.GetManifest(ctx, "c", "v1"); err != nil || !bytes.Equal(raw, m) {
			t.Fatalf("GetManifest: %v", err)
		}
	}
	for _, tc := range []struct {
		vec  *prometheus.CounterVec
		typ  string
		want float64
	}{
		{r.cacheRequests, "Hit", 2}, {r.cacheRequests, "Miss", 0},
		{r.scopedCacheRequests, "Hit", 2},
		{r2.cacheRequests, "Miss", 1}, {r2.cacheRequests, "Hit", 1},
	} {
		if got := testutil.ToFloat64(tc.vec.WithLabelValues(tc.typ)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.typ, got, tc.want)
		}
	}
	if n, err := testutil.GatherAndCount(pr, "imageregistry_digest_cache_requests_total", "imageregistry_digest_cache_scoped_requests_total"); err != nil || n != 3 {
		t.Errorf("gathered %d series (%v), want Hit and Miss of one and Hit of the other", n, err)
	}
}
