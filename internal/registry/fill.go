package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/storage"
	"github.com/opencontainers/go-digest"
)

// What a pull-through cache needs beyond push and pull. A fill commits
// exactly like a push: bytes through an upload session, verified against
// their digest, committed, then named by one metadata commit. The only
// difference is that a cached manifest may be named before what it
// references is held (see metadata.PutCachedManifest).

// PutCachedManifest validates raw (which must hash to want when want is
// set), stores its bytes and records it in repo, under tag when tag is not
// empty, without requiring its blobs and children to be held yet.
func (r *Registry) PutCachedManifest(ctx context.Context, repo, tag, mediaType string, raw []byte, want digest.Digest) (digest.Digest, *oci.Manifest, error) {
	m, err := oci.ParseManifest(mediaType, raw)
	if err != nil {
		return "", nil, err
	}
	alg := digest.SHA256
	if want != "" {
		alg = want.Algorithm()
	}
	d := oci.DigestBytes(alg, raw)
	if want != "" && d != want {
		return "", nil, oci.Errorf(oci.ErrDigestInvalid, "manifest has digest %s, not %s", d, want)
	}
	if tag != "" {
		if err := oci.ValidateTag(tag); err != nil {
			return "", nil, err
		}
	}
	if err := r.storeBytes(ctx, repo, d, raw); err != nil {
		return "", nil, err
	}
	var blobs, children []digest.Digest
	for _, b := range m.Blobs() {
		blobs = append(blobs, b.Digest)
	}
	for _, c := range m.Manifests {
		children = append(children, c.Digest)
	}
	rec := metadata.Manifest{Repo: repo, Digest: d, MediaType: m.MediaType, Size: int64(len(raw)), ArtifactType: m.ReferrerArtifactType(), Annotations: m.Annotations}
	if m.Subject != nil {
		rec.Subject = m.Subject.Digest
	}
	if err := r.meta.PutCachedManifest(ctx, rec, blobs, children, tag); err != nil {
		return "", nil, internal(err)
	}
	r.cache.put(d, raw)
	return d, m, nil
}

func (r *Registry) storeBytes(ctx context.Context, repo string, d digest.Digest, raw []byte) error {
	id := r.newID(repo)
	if err := r.blobs.StartUpload(ctx, id); err != nil {
		return internal(err)
	}
	if _, err := r.blobs.Append(ctx, id, bytes.NewReader(raw)); err != nil {
		_ = r.blobs.Abort(ctx, id)
		return internal(err)
	}
	if err := r.blobs.Commit(ctx, id, d); err != nil {
		return internal(err)
	}
	return nil
}

// Fill is one blob being streamed into an upload session. Written tells
// how many bytes the session holds so far, for readers of the growing
// upload (OpenFill); Run does the work.
type Fill struct {
	r       *Registry
	repo    string
	id      string
	d       digest.Digest
	written atomic.Int64
}

// StartFill opens the upload session a blob is filled into.
func (r *Registry) StartFill(ctx context.Context, repo string, d digest.Digest) (*Fill, error) {
	id, err := r.StartUpload(ctx, repo)
	if err != nil {
		return nil, err
	}
	return &Fill{r: r, repo: repo, id: id, d: d}, nil
}

// Written is how many bytes of the blob the upload session holds (they
// may be read with OpenFill); it only grows.
func (f *Fill) Written() int64 { return f.written.Load() }

// Run streams body into the session, calling progress (which must not
// block) each time more bytes are readable; then it verifies the digest
// and size (when size >= 0) and, if they match, calls verified (readers of
// the session may now be given every byte) and commits the blob into the
// repository. On any failure the session is discarded and nothing becomes
// visible.
func (f *Fill) Run(ctx context.Context, body io.Reader, size int64, progress func(written int64), verified func()) error {
	pr := &progressReader{r: body, f: f, progress: progress}
	n, err := f.r.AppendUpload(ctx, f.repo, f.id, 0, pr)
	if err != nil {
		f.r.discard(context.WithoutCancel(ctx), f.id)
		return err
	}
	f.written.Store(n)
	progress(n)
	if size >= 0 && n != size {
		f.r.discard(context.WithoutCancel(ctx), f.id)
		return oci.Errorf(oci.ErrSizeInvalid, "blob %s: upstream sent %d bytes, announced %d", f.d, n, size)
	}
	got, err := f.r.uploadDigest(ctx, f.id, n, f.d.Algorithm())
	if err != nil {
		f.r.discard(context.WithoutCancel(ctx), f.id)
		return err
	}
	if got != f.d {
		f.r.discard(context.WithoutCancel(ctx), f.id)
		return oci.Errorf(oci.ErrDigestInvalid, "upstream content has digest %s, not %s; it was discarded", got, f.d)
	}
	verified()
	// CompleteUpload checks the digest again (from the same running hash)
	// and commits: durable bytes, then the link.
	return f.r.CompleteUpload(ctx, f.repo, f.id, f.d, -1, nil)
}

// Abandon discards the session (a fill that never ran).
func (f *Fill) Abandon(ctx context.Context) { f.r.discard(ctx, f.id) }

// progressReader reports, at each Read, the bytes returned by the Reads
// before it: the storage copy loop has written those by the time it asks
// for more.
type progressReader struct {
	r        io.Reader
	f        *Fill
	progress func(int64)
	given    int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	if p.given > p.f.written.Load() {
		p.f.written.Store(p.given)
		p.progress(p.given)
	}
	n, err := p.r.Read(b)
	p.given += int64(n)
	return n, err
}

// OpenFill reads what a fill's session holds, from offset off. Where the
// store lets a growing upload be read (the filesystem), the returned
// reader sees bytes as they are written; elsewhere it may end early at
// what was written when it was opened, or hold nothing until the end: the
// caller re-opens or waits for the commit. ErrFillGone means the session
// is over (committed or discarded).
func (r *Registry) OpenFill(ctx context.Context, f *Fill, off int64) (io.ReadCloser, error) {
	rc, err := r.blobs.OpenUpload(ctx, f.id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrFillGone
	}
	if err != nil {
		return nil, internal(err)
	}
	if off > 0 {
		if s, ok := rc.(io.Seeker); ok {
			if _, err := s.Seek(off, io.SeekStart); err != nil {
				rc.Close()
				return nil, internal(err)
			}
		} else if _, err := io.CopyN(io.Discard, rc, off); err != nil {
			rc.Close()
			if errors.Is(err, io.EOF) {
				return io.NopCloser(eofReader{}), nil
			}
			return nil, internal(err)
		}
	}
	return rc, nil
}

// ErrFillGone is returned by OpenFill once the session is over.
var ErrFillGone = errors.New("registry: the fill's upload session is over")

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// BlobCommitted tells whether the blob store holds d (in any repository).
func (r *Registry) BlobCommitted(ctx context.Context, d digest.Digest) (bool, error) {
	_, err := r.blobs.Stat(ctx, d)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, internal(err)
	}
	return true, nil
}

// LinkCommittedBlob makes blob d, already in the blob store, servable from
// repo, refreshing its commit time first so gc's grace covers the new link.
func (r *Registry) LinkCommittedBlob(ctx context.Context, repo string, d digest.Digest) error {
	err := r.blobs.Touch(ctx, d)
	if errors.Is(err, storage.ErrNotFound) {
		return oci.Errorf(oci.ErrBlobUnknown, "blob %s is not stored", d)
	}
	if err != nil {
		return internal(err)
	}
	info, err := r.blobs.Stat(ctx, d)
	if errors.Is(err, storage.ErrNotFound) {
		return oci.Errorf(oci.ErrBlobUnknown, "blob %s is not stored", d)
	}
	if err != nil {
		return internal(err)
	}
	if err := r.meta.LinkBlob(ctx, repo, d, info.Size); err != nil {
		return internal(err)
	}
	return nil
}

// MarkPulled records a pull of manifest d in repo, for eviction by last
// pull.
func (r *Registry) MarkPulled(ctx context.Context, repo string, d digest.Digest, at time.Time) error {
	if err := r.meta.MarkPulled(ctx, repo, d, at); err != nil {
		return internal(err)
	}
	return nil
}

// EvictOptions tell Evict what it may not remove.
type EvictOptions struct {
	// NotPulledSince: a manifest pulled at or after this is kept.
	NotPulledSince time.Time
	// InUse reports digests a pull is reading or filling now; their bytes
	// are kept (the links go, so the next pull refills or relinks).
	InUse func(digest.Digest) bool
}

// Evict removes manifest d of repo with its tags and the blob links only
// it needed, then deletes the bytes nothing references any more. It
// returns the bytes freed. A manifest pulled since the decision is kept
// (metadata.ErrInUse).
func (r *Registry) Evict(ctx context.Context, repo string, d digest.Digest, opts EvictOptions) (int64, error) {
	var msize int64
	if rec, err := r.meta.GetManifest(ctx, repo, d); err == nil {
		msize = rec.Size
	}
	links, err := r.meta.EvictManifest(ctx, repo, d, opts.NotPulledSince)
	if err != nil {
		return 0, err
	}
	var freed int64
	candidates := []metadata.Link{{Repo: repo, Digest: d, Size: msize}}
	candidates = append(candidates, links...)
	for _, l := range candidates {
		if opts.InUse != nil && opts.InUse(l.Digest) {
			continue
		}
		ref, err := r.meta.BlobReferenced(ctx, l.Digest)
		if err != nil {
			return freed, internal(err)
		}
		if ref {
			continue
		}
		if err := r.blobs.Delete(ctx, l.Digest); err != nil {
			return freed, internal(fmt.Errorf("evicting %s: %w", l.Digest, err))
		}
		freed += l.Size
	}
	return freed, nil
}

// ManifestRefs lists what manifest d of repo references.
func (r *Registry) ManifestRefs(ctx context.Context, repo string, d digest.Digest) ([]digest.Digest, error) {
	refs, err := r.meta.ManifestRefs(ctx, repo, d)
	if err != nil {
		return nil, internal(err)
	}
	return refs, nil
}

// LeastRecentlyPulled lists up to n manifests under prefixes last pulled
// before before, least recently pulled first.
func (r *Registry) LeastRecentlyPulled(ctx context.Context, prefixes []string, before time.Time, n int) ([]metadata.PulledManifest, error) {
	list, err := r.meta.LeastRecentlyPulled(ctx, prefixes, before, n)
	if err != nil {
		return nil, internal(err)
	}
	return list, nil
}

// CachedBytes is the size of what the repositories under prefixes hold.
func (r *Registry) CachedBytes(ctx context.Context, prefixes []string) (int64, error) {
	n, err := r.meta.CachedBytes(ctx, prefixes)
	if err != nil {
		return 0, internal(err)
	}
	return n, nil
}
