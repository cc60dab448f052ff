package pullthrough

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/storage"
	"github.com/opencontainers/go-digest"
)

// Blob is a blob answer: either committed bytes from the store (Committed,
// which can seek, so Range and zero-copy work as for any pull) or a fill in
// progress, read with Reader. Close it when done.
type Blob struct {
	// Size is the blob's size; -1 when a fill in progress has not said.
	Size int64
	// Committed is set when the blob is served from the store.
	Committed storage.Blob

	c       *Cache
	fill    *fill
	release func()
}

// Close releases the blob.
func (b *Blob) Close() error {
	b.release()
	if b.Committed != nil {
		return b.Committed.Close()
	}
	return nil
}

// Reader reads bytes [off, end) of a fill in progress (end < 0: to the
// end) as they arrive. It never hands out the blob's last byte before the
// fill verified the digest; a failed fill fails the read.
func (b *Blob) Reader(ctx context.Context, off, end int64) io.ReadCloser {
	return &fillReader{ctx: ctx, c: b.c, f: b.fill, pos: off, end: end}
}

// fill is one blob streaming from an upstream into the store.
type fill struct {
	u    *upstream
	repo string
	d    digest.Digest
	rf   *registry.Fill

	started  chan struct{} // closed once size (or startErr) is known
	done     chan struct{} // closed when committed or failed
	size     int64         // set before started
	startErr error         // set before started: the fill never began
	err      error         // set before done

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced at each progress
	verified bool          // the digest matched: every byte may be read
}

func (f *fill) markVerified() {
	f.mu.Lock()
	f.verified = true
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *fill) progress(int64) {
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// state is what readers may read: up to avail bytes. Until the fill is
// verified one byte is held back.
func (f *fill) state() (avail int64, done bool, err error, changed chan struct{}) {
	f.mu.Lock()
	changed, verified := f.changed, f.verified
	f.mu.Unlock()
	select {
	case <-f.done:
		if f.err != nil {
			return 0, true, f.err, changed
		}
		return f.rf.Written(), true, nil, changed
	default:
	}
	if f.rf == nil {
		return 0, false, nil, changed
	}
	if verified {
		return f.rf.Written(), false, nil, changed
	}
	return max(f.rf.Written()-1, 0), false, nil, changed
}

// Blob answers a blob GET or HEAD of d in the local repository repo.
func (c *Cache) Blob(ctx context.Context, repo string, d digest.Digest) (*Blob, error) {
	u, _, err := c.lookup(repo)
	if err != nil {
		return nil, err
	}
	if _, err := c.reg.StatBlob(ctx, repo, d); err == nil {
		b, size, err := c.reg.OpenBlob(ctx, repo, d)
		if err == nil {
			c.m.hits.WithLabelValues(u.Prefix, "blob").Inc()
			return &Blob{Size: size, Committed: b, c: c, release: c.use(d)}, nil
		}
		// Evicted between the two: fill it again.
	}
	c.m.misses.WithLabelValues(u.Prefix, "blob").Inc()
	c.mu.Lock()
	f := c.fills[d]
	c.mu.Unlock()
	if f == nil {
		if down, lastErr := u.down(); down {
			return nil, unavailable(u, repo+"@"+string(d), lastErr)
		}
	}
	release := c.use(d)
	f, err = c.startFill(ctx, u, repo, d)
	if err != nil {
		release()
		return nil, err
	}
	select {
	case <-f.started:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
	if f.startErr != nil {
		release()
		return nil, f.startErr
	}
	if f.repo != repo {
		// Another repository's fill of the same bytes: link them here too
		// once they are committed.
		go func() {
			<-f.done
			if f.err == nil {
				if err := c.reg.LinkCommittedBlob(c.ctx, repo, d); err != nil {
					c.log.Warn("pull-through: linking a filled blob failed", "repository", repo, "digest", d, "error", err)
				}
			}
		}()
	}
	return &Blob{Size: f.size, c: c, fill: f, release: release}, nil
}

// startFill joins the fill of d in progress, or starts one.
func (c *Cache) startFill(ctx context.Context, u *upstream, repo string, d digest.Digest) (*fill, error) {
	c.mu.Lock()
	if f := c.fills[d]; f != nil {
		c.mu.Unlock()
		return f, nil
	}
	f := &fill{u: u, repo: repo, d: d, started: make(chan struct{}), done: make(chan struct{}), changed: make(chan struct{}), size: -1}
	c.fills[d] = f
	c.mu.Unlock()
	rf, err := c.reg.StartFill(c.ctx, repo, d)
	if err != nil {
		f.err, f.startErr = err, err
		close(f.started)
		c.endFill(f)
		return nil, err
	}
	f.rf = rf
	c.m.fillsInFlight.Inc()
	go c.runFill(f)
	return f, nil
}

func (c *Cache) endFill(f *fill) {
	close(f.done)
	forget := func() {
		c.mu.Lock()
		if c.fills[f.d] == f {
			delete(c.fills, f.d)
		}
		c.mu.Unlock()
	}
	if f.err != nil {
		forget()
		return
	}
	// A request that missed the store just before the commit still finds
	// the finished fill for a moment, rather than start another.
	time.AfterFunc(5*time.Second, forget)
}

func (c *Cache) runFill(f *fill) {
	defer c.m.fillsInFlight.Dec()
	defer c.kickEviction()
	u := f.u
	_, upRepo, _ := c.lookup(f.repo)
	start := time.Now()
	body, size, err := u.Client.GetBlob(c.ctx, upRepo, string(f.d))
	if err != nil {
		if notFound(err) {
			f.err = oci.Errorf(oci.ErrBlobUnknown, "blob %s is not in %s/%s upstream", f.d, u.Client.Host(), upRepo)
		} else {
			c.failed(u, "blob "+upRepo+"@"+string(f.d), err)
			f.err = unavailable(u, f.repo+"@"+string(f.d), err)
		}
		f.startErr = f.err
		f.rf.Abandon(context.WithoutCancel(c.ctx))
		close(f.started)
		c.endFill(f)
		return
	}
	u.ok()
	f.size = size
	close(f.started)
	cr := &countingReader{r: body}
	err = f.rf.Run(c.ctx, cr, size, f.progress, f.markVerified)
	body.Close()
	c.m.bytesFetched.WithLabelValues(u.Prefix).Add(float64(cr.n))
	if err != nil {
		if _, isOCI := oci.AsError(err); !isOCI {
			c.failed(u, "blob "+upRepo+"@"+string(f.d), err)
			err = unavailable(u, f.repo+"@"+string(f.d), err)
		}
		c.log.Warn("pull-through: blob fill failed", "upstream", u.Prefix, "repository", f.repo, "digest", f.d, "bytes", cr.n, "error", err)
		f.err = err
	} else {
		c.log.Info("pull-through: blob filled", "upstream", u.Prefix, "repository", f.repo, "digest", f.d, "bytes", cr.n, "duration", time.Since(start))
	}
	c.endFill(f)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// fillReader follows a fill: it reads the growing upload where the store
// shows it, else waits for the commit and reads the blob.
type fillReader struct {
	ctx    context.Context
	c      *Cache
	f      *fill
	pos    int64
	end    int64
	rc     io.ReadCloser
	opaque bool // the store does not show a growing upload
}

func (r *fillReader) Read(p []byte) (int, error) {
	for {
		if r.end >= 0 && r.pos >= r.end {
			return 0, io.EOF
		}
		avail, done, ferr, changed := r.f.state()
		if ferr != nil {
			return 0, ferr
		}
		if done && (r.rc == nil || r.opaque) {
			if err := r.openCommitted(); err != nil {
				return 0, err
			}
			avail = r.f.rf.Written()
		}
		if done && r.pos >= avail {
			return 0, io.EOF
		}
		if r.pos < avail && !(r.opaque && !done) {
			if r.rc == nil {
				rc, err := r.c.reg.OpenFill(r.ctx, r.f.rf, r.pos)
				if errors.Is(err, registry.ErrFillGone) {
					// Committed or discarded a moment ago.
					select {
					case <-r.f.done:
						continue
					case <-r.ctx.Done():
						return 0, r.ctx.Err()
					}
				}
				if err != nil {
					return 0, err
				}
				r.rc = rc
			}
			want := min(int64(len(p)), avail-r.pos)
			if r.end >= 0 {
				want = min(want, r.end-r.pos)
			}
			n, err := r.rc.Read(p[:want])
			r.pos += int64(n)
			if n > 0 {
				return n, nil
			}
			if err != nil && err != io.EOF {
				return 0, err
			}
			if done {
				return 0, io.ErrUnexpectedEOF
			}
			// The store showed less than was written: wait for the commit.
			r.rc.Close()
			r.rc, r.opaque = nil, true
			continue
		}
		select {
		case <-changed:
		case <-r.f.done:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

func (r *fillReader) openCommitted() error {
	if r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
	b, _, err := r.c.reg.OpenBlob(r.ctx, r.f.repo, r.f.d)
	if err != nil {
		return err
	}
	if _, err := b.Seek(r.pos, io.SeekStart); err != nil {
		b.Close()
		return err
	}
	r.rc, r.opaque = b, false
	return nil
}

func (r *fillReader) Close() error {
	if r.rc != nil {
		return r.rc.Close()
	}
	return nil
}
