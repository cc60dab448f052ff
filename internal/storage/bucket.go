package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Object-store layout (S3, GCS, Azure Blob, through gocloud.dev/blob):
//
//	blobs/<algorithm>/<hex>              committed blobs, written once
//	touched/<algorithm>/<hex>/<unix ns, 20 digits>  empty; a repeated commit's time
//	uploads/<id>/start                   empty; the session exists
//	uploads/<id>/chunk-<offset, 20 digits>  one object per appended chunk
//
// A touch's time is in its key because stores list modification times to
// the second (Azure, AWS S3), too coarse to tell a touch from the commit
// just before it. Each touch removes the older markers; a marker without the
// time suffix (written before it was added) counts by its modification time.
//
// Objects cannot be appended to, so each append is its own object, written
// whole or not at all (an aborted writer leaves nothing). Commit copies a
// single-chunk upload server-side and streams several chunks into one new
// object; either way the blob appears atomically, when the store
// acknowledges the write, which is also when it is durable.
type bucketBackend struct {
	b *blob.Bucket
}

var _ Backend = (*bucketBackend)(nil)

// NewBucket returns a Backend over an object-store bucket opened by the
// caller (s3blob, gcsblob, azureblob, or memblob/fileblob in tests).
func NewBucket(b *blob.Bucket) Backend { return &bucketBackend{b: b} }

func blobKey(d digest.Digest) (string, error) {
	alg, enc := string(d.Algorithm()), d.Encoded()
	if enc == "" || strings.ContainsAny(alg+enc, `/\.`) {
		return "", fmt.Errorf("storage: bad digest %q", d)
	}
	return "blobs/" + alg + "/" + enc, nil
}

func uploadPrefix(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\.`) {
		return "", fmt.Errorf("storage: bad upload id %q", id)
	}
	return "uploads/" + id + "/", nil
}

func notFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }

// Stat lists the blob and its touch markers, so the commit time is the same
// as Walk's: a listing carries modification times to the millisecond where
// the attributes (an HTTP Last-Modified) round them down to the second.
func (s *bucketBackend) Stat(ctx context.Context, d digest.Digest) (BlobInfo, error) {
	key, err := blobKey(d)
	if err != nil {
		return BlobInfo{}, err
	}
	var info BlobInfo
	found := false
	if err := s.list(ctx, key, func(o *blob.ListObject) error {
		if o.Key == key {
			info, found = BlobInfo{Size: o.Size, Committed: o.ModTime}, true
		}
		return nil
	}); err != nil {
		return BlobInfo{}, err
	}
	if !found {
		return BlobInfo{}, ErrNotFound
	}
	prefix := touchedPrefix(key)
	err = s.list(ctx, prefix, func(o *blob.ListObject) error {
		if at, ok := touchTime(prefix, o); ok && at.After(info.Committed) {
			info.Committed = at
		}
		return nil
	})
	return info, err
}

// touchTime is the time a touch marker under prefix records: the one in its
// key, or its modification time for a marker without one.
func touchTime(prefix string, o *blob.ListObject) (time.Time, bool) {
	if o.Key == prefix {
		return o.ModTime, true
	}
	rest, ok := strings.CutPrefix(o.Key, prefix+"/")
	if !ok {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

func (s *bucketBackend) Open(ctx context.Context, d digest.Digest) (Blob, error) {
	key, err := blobKey(d)
	if err != nil {
		return nil, err
	}
	r, err := s.b.NewReader(ctx, key, nil)
	if notFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (s *bucketBackend) Delete(ctx context.Context, d digest.Digest) error {
	key, err := blobKey(d)
	if err != nil {
		return err
	}
	if err := s.b.Delete(ctx, key); err != nil && !notFound(err) {
		return err
	}
	return s.untouch(ctx, touchedPrefix(key), "")
}

func touchedPrefix(blobKey string) string { return "touched/" + strings.TrimPrefix(blobKey, "blobs/") }

// untouch deletes a blob's touch markers older than keep (all when keep is
// empty), the legacy marker without a time suffix included.
func (s *bucketBackend) untouch(ctx context.Context, prefix, keep string) error {
	var old []string
	if err := s.list(ctx, prefix, func(o *blob.ListObject) error {
		if (o.Key == prefix || strings.HasPrefix(o.Key, prefix+"/")) && (keep == "" || o.Key < keep) {
			old = append(old, o.Key)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range old {
		if err := s.b.Delete(ctx, k); err != nil && !notFound(err) {
			return err
		}
	}
	return nil
}

func (s *bucketBackend) Walk(ctx context.Context, fn func(digest.Digest, int64, time.Time) error) error {
	touched := map[string]time.Time{}
	if err := s.list(ctx, "touched/", func(o *blob.ListObject) error {
		rel, at := strings.TrimPrefix(o.Key, "touched/"), o.ModTime
		if i := strings.LastIndexByte(rel, '/'); i > 0 && strings.Count(rel, "/") == 2 {
			ns, err := strconv.ParseInt(rel[i+1:], 10, 64)
			if err != nil {
				return nil
			}
			rel, at = rel[:i], time.Unix(0, ns)
		}
		if at.After(touched[rel]) {
			touched[rel] = at
		}
		return nil
	}); err != nil {
		return err
	}
	return s.list(ctx, "blobs/", func(o *blob.ListObject) error {
		rel := strings.TrimPrefix(o.Key, "blobs/")
		alg, enc, ok := strings.Cut(rel, "/")
		if !ok {
			return nil
		}
		at := o.ModTime
		if t, ok := touched[rel]; ok && t.After(at) {
			at = t
		}
		return fn(digest.NewDigestFromEncoded(digest.Algorithm(alg), enc), o.Size, at)
	})
}

func (s *bucketBackend) list(ctx context.Context, prefix string, fn func(*blob.ListObject) error) error {
	it := s.b.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(o); err != nil {
			return err
		}
	}
}

// put stores all of r under key, or nothing: a read error cancels the write
// before the store can complete it. Upload hands r to the driver whole (the
// S3 and Azure drivers stream it themselves), rather than through a
// Writer's Write calls, which also keeps clear of azureblob's Writer: its
// Close panics after a failed write (gocloud.dev v0.47.0).
func (s *bucketBackend) put(ctx context.Context, key string, r io.Reader) (int64, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	src := &abortingReader{r: r, abort: cancel}
	err := s.b.Upload(wctx, key, src, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if src.err != nil {
		return 0, src.err
	}
	if err != nil {
		return 0, err
	}
	return src.n, nil
}

// abortingReader counts what it reads and, on the first read error,
// cancels the write it feeds so that nothing is stored. Upload returns only
// after its driver is done reading, so n and err are then safe to read.
type abortingReader struct {
	r     io.Reader
	abort context.CancelFunc
	n     int64
	err   error
}

func (a *abortingReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	a.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		a.err = err
		a.abort()
	}
	return n, err
}

func (s *bucketBackend) StartUpload(ctx context.Context, id string) error {
	p, err := uploadPrefix(id)
	if err != nil {
		return err
	}
	_, err = s.put(ctx, p+"start", strings.NewReader(""))
	return err
}

// chunks lists an upload's chunk objects in offset order, and whether the
// session exists at all.
func (s *bucketBackend) chunks(ctx context.Context, id string) ([]*blob.ListObject, bool, error) {
	p, err := uploadPrefix(id)
	if err != nil {
		return nil, false, err
	}
	var out []*blob.ListObject
	exists := false
	err = s.list(ctx, p, func(o *blob.ListObject) error {
		switch name := strings.TrimPrefix(o.Key, p); {
		case name == "start":
			exists = true
		case strings.HasPrefix(name, "chunk-"):
			out = append(out, o)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, exists, err
}

func (s *bucketBackend) UploadSize(ctx context.Context, id string) (int64, error) {
	cs, ok, err := s.chunks(ctx, id)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, ErrNotFound
	}
	var n int64
	for _, c := range cs {
		n += c.Size
	}
	return n, nil
}

func (s *bucketBackend) Append(ctx context.Context, id string, r io.Reader) (int64, error) {
	size, err := s.UploadSize(ctx, id)
	if err != nil {
		return 0, err
	}
	p, _ := uploadPrefix(id)
	return s.put(ctx, fmt.Sprintf("%schunk-%020d", p, size), r)
}

// chunkReader reads an upload's chunks one after another, opening each only
// when the previous one is done.
type chunkReader struct {
	ctx  context.Context
	b    *blob.Bucket
	keys []string
	cur  *blob.Reader
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			if len(c.keys) == 0 {
				return 0, io.EOF
			}
			r, err := c.b.NewReader(c.ctx, c.keys[0], nil)
			if err != nil {
				return 0, err
			}
			c.cur, c.keys = r, c.keys[1:]
		}
		n, err := c.cur.Read(p)
		if errors.Is(err, io.EOF) {
			c.cur.Close()
			c.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *chunkReader) Close() error {
	if c.cur != nil {
		return c.cur.Close()
	}
	return nil
}

func (s *bucketBackend) OpenUpload(ctx context.Context, id string) (io.ReadCloser, error) {
	cs, ok, err := s.chunks(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.Key
	}
	return &chunkReader{ctx: ctx, b: s.b, keys: keys}, nil
}

func (s *bucketBackend) Commit(ctx context.Context, id string, d digest.Digest) error {
	key, err := blobKey(d)
	if err != nil {
		return err
	}
	cs, ok, err := s.chunks(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	if err := s.Touch(ctx, d); err == nil {
		// Content-addressed: already stored; Touch recorded the commit.
		return s.Abort(ctx, id)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	switch {
	case len(cs) == 1 && s.b.Copy(ctx, key, cs[0].Key, nil) == nil:
		// Server-side copy: the bytes do not pass through this process.
	default:
		rc, err := s.OpenUpload(ctx, id)
		if err != nil {
			return err
		}
		_, err = s.put(ctx, key, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return s.Abort(ctx, id)
}

func (s *bucketBackend) Abort(ctx context.Context, id string) error {
	p, err := uploadPrefix(id)
	if err != nil {
		return err
	}
	var keys []string
	if err := s.list(ctx, p, func(o *blob.ListObject) error { keys = append(keys, o.Key); return nil }); err != nil {
		return err
	}
	// The session marker first: from then on the session is gone for every
	// replica, so an abort (or a Commit's cleanup) cut short by a crash never
	// leaves a session that is still open but lost its first chunks, which a
	// retried PUT would then refuse as DIGEST_INVALID. Leftover chunks are
	// still under the prefix Uploads lists, so the purge finishes them.
	sort.SliceStable(keys, func(i, j int) bool {
		return strings.HasSuffix(keys[i], "/start") && !strings.HasSuffix(keys[j], "/start")
	})
	for _, k := range keys {
		if err := s.b.Delete(ctx, k); err != nil && !notFound(err) {
			return err
		}
	}
	return nil
}

func (s *bucketBackend) Uploads(ctx context.Context, fn func(string, time.Time) error) error {
	latest := map[string]time.Time{}
	if err := s.list(ctx, "uploads/", func(o *blob.ListObject) error {
		id, _, ok := strings.Cut(strings.TrimPrefix(o.Key, "uploads/"), "/")
		if ok && o.ModTime.After(latest[id]) {
			latest[id] = o.ModTime
		}
		return nil
	}); err != nil {
		return err
	}
	for id, t := range latest {
		if err := fn(id, t); err != nil {
			return err
		}
	}
	return nil
}

func (s *bucketBackend) Touch(ctx context.Context, d digest.Digest) error {
	key, err := blobKey(d)
	if err != nil {
		return err
	}
	if exists, err := s.b.Exists(ctx, key); err != nil {
		return err
	} else if !exists {
		return ErrNotFound
	}
	marker := fmt.Sprintf("%s/%020d", touchedPrefix(key), time.Now().UnixNano())
	if _, err := s.put(ctx, marker, strings.NewReader("")); err != nil {
		return err
	}
	return s.untouch(ctx, touchedPrefix(key), marker)
}
