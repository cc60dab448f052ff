package storage

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
)

// Storage error codes, as the cluster's own registry labels
// imageregistry_storage_errors_total, so its alerts (a read-only or full
// volume) fire unchanged.
const (
	codePathNotFound = "PATH_NOT_FOUND"
	codeReadOnlyFS   = "READ_ONLY_FILESYSTEM"
	codeFileTooLarge = "FILE_TOO_LARGE"
	codeOutOfSpace   = "DEVICE_OUT_OF_SPACE"
	codeUnknown      = "UNKNOWN"
)

func errorCode(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return codePathNotFound
	case errors.Is(err, syscall.EROFS):
		return codeReadOnlyFS
	case errors.Is(err, syscall.EFBIG):
		return codeFileTooLarge
	case errors.Is(err, syscall.ENOSPC):
		return codeOutOfSpace
	}
	return codeUnknown
}

type storageMetrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// Instrument returns b measured on reg: imageregistry_storage_duration_seconds
// (a histogram by operation, the Backend method's name) and
// imageregistry_storage_errors_total (by operation and code). The result
// has exactly the optional interfaces b has, and Open hands out b's own
// Blob, so an *os.File still reaches net/http's zero-copy path; the
// duration of Open is the open's, not the reading's.
//
// Errors the store did not cause are not counted: those of the client's
// reader in Append, of the caller's callback in Walk and Uploads, and a
// cancelled or expired context. Calling Instrument again with the same reg
// shares the collectors.
func Instrument(b Backend, reg prometheus.Registerer) Backend {
	m := &storageMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imageregistry_storage_duration_seconds",
			Help:    "Latency of operations with the storage.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imageregistry_storage_errors_total",
			Help: "Cumulative number of failed operations with the storage.",
		}, []string{"operation", "code"}),
	}
	m.duration = register(reg, m.duration)
	m.errors = register(reg, m.errors)
	in := &instrumented{b: b, m: m}
	if cd, ok := b.(ConditionalDeleter); ok {
		return &instrumentedConditional{instrumented: in, cd: cd}
	}
	return in
}

// register registers c on reg, or returns the equal collector registered
// before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if prev, ok := are.ExistingCollector.(C); ok {
				return prev
			}
		}
		panic(err) // a name clash with another collector: a programming error
	}
	return c
}

// observe records one operation that started at start and ended with err;
// notOurs is an error that came from the caller's side (its reader or
// callback), which is no failure of the store.
func (m *storageMetrics) observe(op string, start time.Time, err, notOurs error) {
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err == nil || (notOurs != nil && errors.Is(err, notOurs)) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	m.errors.WithLabelValues(op, errorCode(err)).Inc()
}

type instrumented struct {
	b Backend
	m *storageMetrics
}

// instrumentedConditional is an instrumented ConditionalDeleter; one type
// per combination of optional interfaces keeps type assertions truthful.
type instrumentedConditional struct {
	*instrumented
	cd ConditionalDeleter
}

var (
	_ Backend            = (*instrumented)(nil)
	_ ConditionalDeleter = (*instrumentedConditional)(nil)
)

func (i *instrumented) Stat(ctx context.Context, d digest.Digest) (BlobInfo, error) {
	start := time.Now()
	info, err := i.b.Stat(ctx, d)
	i.m.observe("Stat", start, err, nil)
	return info, err
}

func (i *instrumented) Open(ctx context.Context, d digest.Digest) (Blob, error) {
	start := time.Now()
	blob, err := i.b.Open(ctx, d)
	i.m.observe("Open", start, err, nil)
	return blob, err
}

func (i *instrumented) Delete(ctx context.Context, d digest.Digest) error {
	start := time.Now()
	err := i.b.Delete(ctx, d)
	i.m.observe("Delete", start, err, nil)
	return err
}

func (i *instrumented) Walk(ctx context.Context, fn func(digest.Digest, int64, time.Time) error) error {
	start := time.Now()
	var fnErr error
	err := i.b.Walk(ctx, func(d digest.Digest, size int64, committed time.Time) error {
		fnErr = fn(d, size, committed)
		return fnErr
	})
	i.m.observe("Walk", start, err, fnErr)
	return err
}

func (i *instrumented) StartUpload(ctx context.Context, id string) error {
	start := time.Now()
	err := i.b.StartUpload(ctx, id)
	i.m.observe("StartUpload", start, err, nil)
	return err
}

// clientReader remembers the error of the reader a client's bytes come
// from, so a client that goes away mid-upload is not a storage error.
type clientReader struct {
	r   io.Reader
	err error
}

func (c *clientReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

func (i *instrumented) Append(ctx context.Context, id string, r io.Reader) (int64, error) {
	start := time.Now()
	cr := &clientReader{r: r}
	n, err := i.b.Append(ctx, id, cr)
	i.m.observe("Append", start, err, cr.err)
	return n, err
}

func (i *instrumented) UploadSize(ctx context.Context, id string) (int64, error) {
	start := time.Now()
	n, err := i.b.UploadSize(ctx, id)
	i.m.observe("UploadSize", start, err, nil)
	return n, err
}

func (i *instrumented) OpenUpload(ctx context.Context, id string) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := i.b.OpenUpload(ctx, id)
	i.m.observe("OpenUpload", start, err, nil)
	return rc, err
}

func (i *instrumented) Commit(ctx context.Context, id string, d digest.Digest) error {
	start := time.Now()
	err := i.b.Commit(ctx, id, d)
	i.m.observe("Commit", start, err, nil)
	return err
}

func (i *instrumented) Abort(ctx context.Context, id string) error {
	start := time.Now()
	err := i.b.Abort(ctx, id)
	i.m.observe("Abort", start, err, nil)
	return err
}

func (i *instrumented) Uploads(ctx context.Context, fn func(string, time.Time) error) error {
	start := time.Now()
	var fnErr error
	err := i.b.Uploads(ctx, func(id string, modified time.Time) error {
		fnErr = fn(id, modified)
		return fnErr
	})
	i.m.observe("Uploads", start, err, fnErr)
	return err
}

func (i *instrumented) Touch(ctx context.Context, d digest.Digest) error {
	start := time.Now()
	err := i.b.Touch(ctx, d)
	i.m.observe("Touch", start, err, nil)
	return err
}

func (i *instrumentedConditional) DeleteIfCommittedBefore(ctx context.Context, d digest.Digest, cutoff time.Time) (bool, error) {
	start := time.Now()
	deleted, err := i.cd.DeleteIfCommittedBefore(ctx, d, cutoff)
	i.m.observe("DeleteIfCommittedBefore", start, err, nil)
	return deleted, err
}
