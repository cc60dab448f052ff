package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gocloud.dev/blob/memblob"

	"github.com/berth-registry/berth/internal/storage"
	"github.com/berth-registry/berth/internal/storage/storagetest"
)

// optional lists every optional interface of package storage: the
// instrumented wrapper must have exactly those its backend has.
var optional = []reflect.Type{
	reflect.TypeFor[storage.ConditionalDeleter](),
}

func backends(t *testing.T) map[string]storage.Backend {
	fsb, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bucket := memblob.OpenBucket(nil)
	t.Cleanup(func() { bucket.Close() })
	return map[string]storage.Backend{
		"Filesystem": fsb,
		"Memory":     storage.NewMemory(),
		"Bucket":     storage.NewBucket(bucket),
	}
}

func TestInstrumentKeepsOptionalInterfaces(t *testing.T) {
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			w := storage.Instrument(b, prometheus.NewRegistry())
			for _, it := range optional {
				if got, want := reflect.TypeOf(w).Implements(it), reflect.TypeOf(b).Implements(it); got != want {
					t.Errorf("instrumented %s implements %s: %v, the backend: %v", name, it, got, want)
				}
			}
		})
	}
}

// TestInstrumentHandsOutTheBackendsBlob: on the filesystem an open blob is
// still an *os.File, which net/http sends with sendfile.
func TestInstrumentHandsOutTheBackendsBlob(t *testing.T) {
	b, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := storage.Instrument(b, prometheus.NewRegistry())
	d := commit(t, w, "u", "zero copy")
	blob, err := w.Open(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	if _, ok := blob.(*os.File); !ok {
		t.Fatalf("Open returned a %T, not the filesystem's *os.File", blob)
	}
}

func TestInstrumentConformance(t *testing.T) {
	t.Run("Memory", func(t *testing.T) {
		storagetest.Run(t, func(*testing.T) storage.Backend {
			return storage.Instrument(storage.NewMemory(), prometheus.NewRegistry())
		})
	})
	t.Run("FilesystemConditionalDelete", func(t *testing.T) {
		b, err := storage.NewFilesystem(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		storagetest.RunConditionalDelete(t, storage.Instrument(b, prometheus.NewRegistry()))
	})
}

func commit(t *testing.T, b storage.Backend, id, content string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	d := digest.FromString(content)
	if err := b.StartUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, id, strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, id, d); err != nil {
		t.Fatal(err)
	}
	return d
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("client went away") }

// TestInstrumentCounts: every operation is timed; errors are counted by
// the cluster registry's codes, and only those the store caused.
func TestInstrumentCounts(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	w := storage.Instrument(storage.NewMemory(), reg)
	// A second wrapper on the same registry shares its series.
	w2 := storage.Instrument(storage.NewMemory(), reg)
	commit(t, w, "u1", "counted")
	if _, err := w2.Stat(ctx, digest.FromString("absent")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	if err := w.StartUpload(ctx, "u2"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(ctx, "u2", failingReader{}); err == nil {
		t.Fatal("append from a failing reader succeeded")
	}
	stop := errors.New("stop")
	if err := w.Walk(ctx, func(digest.Digest, int64, time.Time) error { return stop }); !errors.Is(err, stop) {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_ = w.Walk(cancelled, func(digest.Digest, int64, time.Time) error { return nil })

	want := `
# HELP imageregistry_storage_errors_total Cumulative number of failed operations with the storage.
# TYPE imageregistry_storage_errors_total counter
imageregistry_storage_errors_total{code="PATH_NOT_FOUND",operation="Stat"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "imageregistry_storage_errors_total"); err != nil {
		t.Error(err)
	}
	for op, n := range map[string]int{"StartUpload": 2, "Append": 2, "Commit": 1, "Stat": 1, "Walk": 2} {
		if got := histogramCount(t, reg, op); got != n {
			t.Errorf("imageregistry_storage_duration_seconds{operation=%q} counted %d, want %d", op, got, n)
		}
	}
}

func histogramCount(t *testing.T, reg *prometheus.Registry, op string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "imageregistry_storage_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" && l.GetValue() == op {
					return int(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return 0
}

func TestInstrumentErrorCodes(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, errno := range []syscall.Errno{syscall.EROFS, syscall.ENOSPC, syscall.EFBIG, syscall.EIO} {
		err := fmt.Errorf("storage: %w", &fs.PathError{Op: "write", Path: "uploads/x", Err: errno})
		w := storage.Instrument(failing{storage.NewMemory(), err}, reg)
		if err := w.StartUpload(context.Background(), "x"); err == nil {
			t.Fatal("no error")
		}
	}
	want := `
# HELP imageregistry_storage_errors_total Cumulative number of failed operations with the storage.
# TYPE imageregistry_storage_errors_total counter
imageregistry_storage_errors_total{code="DEVICE_OUT_OF_SPACE",operation="StartUpload"} 1
imageregistry_storage_errors_total{code="FILE_TOO_LARGE",operation="StartUpload"} 1
imageregistry_storage_errors_total{code="READ_ONLY_FILESYSTEM",operation="StartUpload"} 1
imageregistry_storage_errors_total{code="UNKNOWN",operation="StartUpload"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "imageregistry_storage_errors_total"); err != nil {
		t.Error(err)
	}
}

// failing fails StartUpload with err, as a full or read-only volume does.
type failing struct {
	storage.Backend
	err error
}

func (f failing) StartUpload(context.Context, string) error { return f.err }
