package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/storage"
	"github.com/opencontainers/go-digest"
)

func newTestHandler(t testing.TB) *Handler {
	t.Helper()
	meta, err := metadata.OpenSQLite(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	reg := registry.New(storage.NewMemory(), meta, registry.Options{})
	return NewHandler(reg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
}

// FuzzBlobRange sends arbitrary Range headers to a blob GET: the answer is
// 200 with the whole blob, 206 with exactly the bytes the range names, or
// 416 — never anything else, never wrong bytes.
func FuzzBlobRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=5-", "bytes=-3", "bytes=9-2", "bytes=0-0,2-3", "bytes=100-200", "items=0-1", "bytes=", ""} {
		f.Add(s)
	}
	h := newTestHandler(f)
	blob := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	d := digest.FromBytes(blob)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v2/r/blobs/uploads/?digest="+string(d), bytes.NewReader(blob)))
	if rec.Code != http.StatusCreated {
		f.Fatalf("seed push: %d %s", rec.Code, rec.Body)
	}
	f.Fuzz(func(t *testing.T, rng string) {
		req := httptest.NewRequest(http.MethodGet, "/v2/r/blobs/"+string(d), nil)
		req.Header.Set("Range", rng)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		switch rec.Code {
		case http.StatusOK:
			if !bytes.Equal(body, blob) {
				t.Fatalf("Range %q: 200 with %q", rng, body)
			}
		case http.StatusPartialContent:
			var start, end, size int64
			cr := rec.Header().Get("Content-Range")
			if cr == "" { // multipart answer to several ranges
				return
			}
			if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &start, &end, &size); err != nil || start < 0 || end < start || end >= int64(len(blob)) {
				t.Fatalf("Range %q: bad Content-Range %q", rng, cr)
			}
			if size != int64(len(blob)) || !bytes.Equal(body, blob[start:end+1]) {
				t.Fatalf("Range %q: 206 %s with %q", rng, cr, body)
			}
		case http.StatusRequestedRangeNotSatisfiable:
		default:
			t.Fatalf("Range %q: status %d", rng, rec.Code)
		}
	})
}
