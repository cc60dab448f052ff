package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// Filesystem layout under the root:
//
//	blobs/<algorithm>/<first two hex>/<hex>   committed blobs, read-only
//	uploads/<id>                              upload sessions in progress
//
// Upload ids and digests are validated by the caller; both are joined here
// only after checking they contain no path separator.
type fsBackend struct {
	root string
}

var (
	_ Backend            = (*fsBackend)(nil)
	_ ConditionalDeleter = (*fsBackend)(nil)
)

// NewFilesystem returns a Backend storing under root, creating it if needed.
func NewFilesystem(root string) (Backend, error) {
	for _, d := range []string{"blobs", "uploads"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	return &fsBackend{root: root}, nil
}

func (b *fsBackend) blobPath(d digest.Digest) (string, error) {
	alg, enc := string(d.Algorithm()), d.Encoded()
	if len(enc) < 3 || strings.ContainsAny(alg+enc, `/\.`) {
		return "", fmt.Errorf("storage: bad digest %q", d)
	}
	return filepath.Join(b.root, "blobs", alg, enc[:2], enc), nil
}

func (b *fsBackend) uploadPath(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
		return "", fmt.Errorf("storage: bad upload id %q", id)
	}
	return filepath.Join(b.root, "uploads", id), nil
}

// fileSize stats a path that failed validation (err) or may not exist.
func fileSize(p string, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Stat reads the inode afresh: its modification time is the commit time
// (Commit and Touch set it).
func (b *fsBackend) Stat(_ context.Context, d digest.Digest) (BlobInfo, error) {
	p, err := b.blobPath(d)
	if err != nil {
		return BlobInfo{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return BlobInfo{}, ErrNotFound
	}
	if err != nil {
		return BlobInfo{}, err
	}
	return BlobInfo{Size: fi.Size(), Committed: fi.ModTime()}, nil
}

func (b *fsBackend) Open(_ context.Context, d digest.Digest) (Blob, error) {
	p, err := b.blobPath(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

func (b *fsBackend) Delete(_ context.Context, d digest.Digest) error {
	p, err := b.blobPath(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (b *fsBackend) Walk(ctx context.Context, fn func(digest.Digest, int64, time.Time) error) error {
	base := filepath.Join(b.root, "blobs")
	return filepath.WalkDir(base, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if de.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(base, p)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 3 || strings.Contains(parts[2], ".") {
			return nil // not a blob (a file gc is deleting)
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		return fn(digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2]), fi.Size(), fi.ModTime())
	})
}

func (b *fsBackend) StartUpload(_ context.Context, id string) error {
	p, err := b.uploadPath(id)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// copyBufs holds the buffers pushes stream through: bigger writes mean
// fewer syscalls than io.Copy's 32 KiB default.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyBufSize is big enough that syscalls are a small part of a push, and
// small enough that many concurrent pushes stay cheap in memory.
const copyBufSize = 256 << 10

// writebackEvery is how many bytes an append writes before it starts their
// writeback to disk.
const writebackEvery = 8 << 20

// fileAppender writes to an upload file and starts writeback every
// writebackEvery bytes. Being a plain Writer, it also hides *os.File's
// ReadFrom so io.CopyBuffer uses our large buffer.
type fileAppender struct {
	f         *os.File
	off       int64 // file offset of the next write
	unflushed int64 // offset from which writeback has not been started
}

func (a *fileAppender) Write(p []byte) (int, error) {
	n, err := a.f.Write(p)
	a.off += int64(n)
	if a.off-a.unflushed >= writebackEvery {
		startWriteback(a.f, a.unflushed, a.off-a.unflushed)
		a.unflushed = a.off
	}
	return n, err
}

func (b *fsBackend) Append(_ context.Context, id string, r io.Reader) (int64, error) {
	p, err := b.uploadPath(id)
	if err != nil {
		return 0, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	buf := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(&fileAppender{f: f, off: start, unflushed: start}, r, *buf)
	copyBufs.Put(buf)
	if err != nil {
		// Leave the upload exactly as it was before this append.
		if terr := f.Truncate(start); terr != nil {
			return 0, errors.Join(err, terr)
		}
		return 0, err
	}
	return n, nil
}

func (b *fsBackend) UploadSize(_ context.Context, id string) (int64, error) {
	return fileSize(b.uploadPath(id))
}

func (b *fsBackend) OpenUpload(_ context.Context, id string) (io.ReadCloser, error) {
	p, err := b.uploadPath(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

func (b *fsBackend) Commit(_ context.Context, id string, d digest.Digest) error {
	up, err := b.uploadPath(id)
	if err != nil {
		return err
	}
	dst, err := b.blobPath(d)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(up, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		// Content-addressed: the same bytes are already durable. Refresh
		// the commit time so gc's grace period covers this push too.
		now := time.Now()
		err := os.Chtimes(dst, now, now)
		if err == nil {
			return os.Remove(up)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		// gc moved it aside a moment ago: store these bytes instead.
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Rename(up, dst); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (b *fsBackend) Abort(_ context.Context, id string) error {
	p, err := b.uploadPath(id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (b *fsBackend) Uploads(ctx context.Context, fn func(string, time.Time) error) error {
	entries, err := os.ReadDir(filepath.Join(b.root, "uploads"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if err := fn(e.Name(), fi.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

// DeleteIfCommittedBefore moves the blob aside (an atomic rename), then
// decides on the moved file's time: a Commit that refreshed the time before
// the move is seen and the blob put back; a Commit after the move finds no
// blob and stores its own bytes.
func (b *fsBackend) DeleteIfCommittedBefore(_ context.Context, d digest.Digest, cutoff time.Time) (bool, error) {
	p, err := b.blobPath(d)
	if err != nil {
		return false, err
	}
	aside := p + ".gc-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.Rename(p, aside); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	fi, err := os.Stat(aside)
	if err != nil {
		return false, err
	}
	if !fi.ModTime().Before(cutoff) {
		// Re-committed just now: put it back, unless a newer commit has
		// already stored the same bytes again.
		if err := os.Link(aside, p); err != nil && !errors.Is(err, fs.ErrExist) {
			return false, err
		}
		return false, os.Remove(aside)
	}
	return true, os.Remove(aside)
}

func (b *fsBackend) Touch(_ context.Context, d digest.Digest) error {
	p, err := b.blobPath(d)
	if err != nil {
		return err
	}
	now := time.Now()
	if err := os.Chtimes(p, now, now); errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	return nil
}
