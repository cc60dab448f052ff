package storage

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// memBackend keeps everything in memory: a throw-away store, like an
// emptyDir volume. It is the one backend that holds blobs in memory, by
// definition; the handlers above it still stream.
type memBackend struct {
	mu      sync.RWMutex
	blobs   map[digest.Digest][]byte
	commits map[digest.Digest]time.Time
	uploads map[string][]byte
	touched map[string]time.Time
}

var _ Backend = (*memBackend)(nil)

// NewMemory returns an empty in-memory Backend.
func NewMemory() Backend {
	return &memBackend{blobs: map[digest.Digest][]byte{}, commits: map[digest.Digest]time.Time{}, uploads: map[string][]byte{}, touched: map[string]time.Time{}}
}

type memBlob struct{ *bytes.Reader }

func (memBlob) Close() error { return nil }

func (m *memBackend) Stat(_ context.Context, d digest.Digest) (BlobInfo, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b, ok := m.blobs[d]
	if !ok {
		return BlobInfo{}, ErrNotFound
	}
	return BlobInfo{Size: int64(len(b)), Committed: m.commits[d]}, nil
}

func (m *memBackend) Open(_ context.Context, d digest.Digest) (Blob, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b, ok := m.blobs[d]
	if !ok {
		return nil, ErrNotFound
	}
	return memBlob{bytes.NewReader(b)}, nil
}

func (m *memBackend) Delete(_ context.Context, d digest.Digest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blobs, d)
	delete(m.commits, d)
	return nil
}

func (m *memBackend) Walk(ctx context.Context, fn func(digest.Digest, int64, time.Time) error) error {
	type entry struct {
		size int64
		at   time.Time
	}
	m.mu.RLock()
	list := make(map[digest.Digest]entry, len(m.blobs))
	for d, b := range m.blobs {
		list[d] = entry{int64(len(b)), m.commits[d]}
	}
	m.mu.RUnlock()
	for d, e := range list {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(d, e.size, e.at); err != nil {
			return err
		}
	}
	return nil
}

func (m *memBackend) StartUpload(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.uploads[id] = nil
	m.touched[id] = time.Now()
	return nil
}

func (m *memBackend) Append(_ context.Context, id string, r io.Reader) (int64, error) {
	// Read outside the lock: a slow client must not stall everyone else.
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.uploads[id]
	if !ok {
		return 0, ErrNotFound
	}
	m.uploads[id] = append(cur, data...)
	m.touched[id] = time.Now()
	return int64(len(data)), nil
}

func (m *memBackend) UploadSize(_ context.Context, id string) (int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b, ok := m.uploads[id]
	if !ok {
		return 0, ErrNotFound
	}
	return int64(len(b)), nil
}

func (m *memBackend) OpenUpload(_ context.Context, id string) (io.ReadCloser, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b, ok := m.uploads[id]
	if !ok {
		return nil, ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memBackend) Commit(_ context.Context, id string, d digest.Digest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.uploads[id]
	if !ok {
		return ErrNotFound
	}
	delete(m.uploads, id)
	delete(m.touched, id)
	if _, exists := m.blobs[d]; !exists {
		m.blobs[d] = b
	}
	m.commits[d] = time.Now()
	return nil
}

func (m *memBackend) Abort(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.uploads, id)
	delete(m.touched, id)
	return nil
}

func (m *memBackend) Uploads(ctx context.Context, fn func(string, time.Time) error) error {
	m.mu.RLock()
	list := make(map[string]time.Time, len(m.touched))
	for id, t := range m.touched {
		list[id] = t
	}
	m.mu.RUnlock()
	for id, t := range list {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(id, t); err != nil {
			return err
		}
	}
	return nil
}

func (m *memBackend) Touch(_ context.Context, d digest.Digest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.blobs[d]; !ok {
		return ErrNotFound
	}
	m.commits[d] = time.Now()
	return nil
}
