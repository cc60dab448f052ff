package registry

import (
	"hash"
	"sync"
)

// asyncHasher feeds a hash on its own goroutine, so that on a push hashing
// runs on one core while the copy into storage runs on another. Without
// SHA extensions sha256 is slower than a durable write, so doing the two one
// after the other would make hashing the bottleneck twice over.
type asyncHasher struct {
	h    hash.Hash
	ch   chan *[]byte
	done chan struct{}
}

var hashBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

func newAsyncHasher(h hash.Hash) *asyncHasher {
	a := &asyncHasher{h: h, ch: make(chan *[]byte, 4), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for b := range a.ch {
			a.h.Write(*b)
			hashBufs.Put(b)
		}
	}()
	return a
}

// Write queues a copy of p; at most four buffers are in flight, which bounds
// memory per upload.
func (a *asyncHasher) Write(p []byte) (int, error) {
	b := hashBufs.Get().(*[]byte)
	*b = append((*b)[:0], p...)
	a.ch <- b
	return len(p), nil
}

// Finish waits until everything written has been hashed.
func (a *asyncHasher) Finish() {
	close(a.ch)
	<-a.done
}
