package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRegistry is a minimal in-memory registry that answers the requests the
// workload makes, optionally corrupting the blobs it serves: a hand-written
// fake, because no real registry can be made to lie on demand.
type fakeRegistry struct {
	corruptBlobs bool
	mu           sync.Mutex
	uploads      map[string][]byte
	blobs        map[string][]byte // digest → bytes
	manifests    map[string][]byte // repo:tag → bytes
	n            int
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := r.URL.Path
	switch {
	case p == "/v2/":
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/blobs/uploads/"):
		f.n++
		id := fmt.Sprintf("/upload/%d", f.n)
		f.uploads[id] = nil
		w.Header().Set("Location", id+"?_state=x")
		w.WriteHeader(http.StatusAccepted)
	case strings.HasPrefix(p, "/upload/") && (r.Method == http.MethodPatch || r.Method == http.MethodPut):
		b, _ := io.ReadAll(r.Body)
		f.uploads[p] = append(f.uploads[p], b...)
		if r.Method == http.MethodPatch {
			w.Header().Set("Location", p+"?_state=y")
			w.WriteHeader(http.StatusAccepted)
			return
		}
		d := r.URL.Query().Get("digest")
		f.blobs[d] = f.uploads[p]
		w.Header().Set("Docker-Content-Digest", d)
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodGet && strings.Contains(p, "/blobs/"):
		b, ok := f.blobs[p[strings.LastIndex(p, "/")+1:]]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if f.corruptBlobs && len(b) > 0 {
			b = append([]byte{b[0] ^ 1}, b[1:]...)
		}
		w.Write(b)
	case strings.Contains(p, "/manifests/"):
		if r.Method == http.MethodPut {
			b, _ := io.ReadAll(r.Body)
			f.manifests[p] = b
			w.WriteHeader(http.StatusCreated)
			return
		}
		b, ok := f.manifests[p]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", mediaTypeManifest)
		w.Write(b)
	default:
		http.Error(w, "unexpected "+r.Method+" "+p, http.StatusBadRequest)
	}
}

func TestBenchReportsCorruptPulls(t *testing.T) {
	f := &fakeRegistry{corruptBlobs: true, uploads: map[string][]byte{}, blobs: map[string][]byte{}, manifests: map[string][]byte{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	rep, err := Run(context.Background(), Config{
		Target: srv.URL, BlobSize: 1 << 20, ChunkSize: 300 << 10, Images: 2, Workers: 2,
		ManifestWorkers: 2, ManifestDuration: 100 * time.Millisecond, CeilingDir: t.TempDir(),
	})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Run = %v; want ErrDigestMismatch", err)
	}
	if rep == nil {
		t.Fatal("no report with the mismatch")
	}
	if !rep.BlobPushMonolithic.DigestOK || !rep.BlobPushChunked.DigestOK || !rep.ImagesPush.DigestOK || !rep.ManifestGet.DigestOK {
		t.Errorf("phases that saw the right bytes say digest_ok=false: %+v", rep)
	}
	if rep.BlobPull.DigestOK || rep.ImagesPull.DigestOK {
		t.Errorf("corrupt pulls say digest_ok=true: blob %+v, images %+v", rep.BlobPull, rep.ImagesPull)
	}
	// The chunked upload was reassembled from PATCHes into the right blob.
	if got := len(f.blobs[rep.BlobPushChunked.Digest]); got != 1<<20 {
		t.Errorf("chunked blob stored %d bytes, want %d", got, 1<<20)
	}
}

func TestBenchOverTLS(t *testing.T) {
	srv := httptest.NewTLSServer(&fakeRegistry{uploads: map[string][]byte{}, blobs: map[string][]byte{}, manifests: map[string][]byte{}})
	defer srv.Close()
	cfg := Config{
		Target: srv.URL, BlobSize: 256 << 10, ChunkSize: 100 << 10, Images: 1, Workers: 1,
		ManifestWorkers: 1, ManifestDuration: 50 * time.Millisecond, CeilingDir: t.TempDir(),
	}
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("self-signed certificate without Insecure: %v; want a certificate error", err)
	}
	cfg.Insecure = true
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("with Insecure: %v", err)
	}
	if !strings.HasPrefix(rep.Target, "https://") || !rep.BlobPull.DigestOK || rep.ManifestGet.Count == 0 {
		t.Errorf("report over TLS: %+v", rep)
	}
}
