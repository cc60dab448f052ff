package registry

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/storage"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Registry.
type Options struct {
	// Secret signs upload session ids so forged ids are refused before any
	// lookup. Empty means a random per-process secret (sessions then do not
	// survive a restart of a multi-replica deployment).
	Secret []byte
	// ManifestCacheBytes bounds the in-memory cache of manifest bodies
	// (content-addressed, so never stale). Zero means 32 MiB.
	ManifestCacheBytes int
	// Metrics, when set, receives the manifest cache's hit and miss
	// counters under the cluster registry's digest-cache names.
	Metrics prometheus.Registerer
	// Notifier, when set, describes each push, delete and mount (and pull,
	// if it records pulls) as events queued in the same metadata
	// transaction as the change.
	Notifier *events.Notifier
}

// Registry implements the protocol's rules.
type Registry struct {
	blobs  storage.Backend
	meta   *metadata.Store
	secret []byte

	mu     sync.Mutex
	hashes map[string]*uploadHash // running sha256 per upload session

	cache    *manifestCache
	notifier *events.Notifier
	// cacheRequests and scopedCacheRequests count manifest cache lookups
	// by type (Hit, Miss); nil without metrics.
	cacheRequests, scopedCacheRequests *prometheus.CounterVec
}

// uploadHash is the running hash of an upload's bytes [0, offset).
type uploadHash struct {
	offset int64
	h      hash.Hash
}

// New wires a Registry over its stores.
func New(blobs storage.Backend, meta *metadata.Store, opts Options) *Registry {
	secret := opts.Secret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	size := opts.ManifestCacheBytes
	if size == 0 {
		size = 32 << 20
	}
	r := &Registry{blobs: blobs, meta: meta, secret: secret, hashes: map[string]*uploadHash{}, cache: newManifestCache(size), notifier: opts.Notifier}
	if opts.Metrics != nil {
		r.cacheRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imageregistry_digest_cache_requests_total",
			Help: "Lookups of the manifest cache, by type (Hit, Miss).",
		}, []string{"type"})
		r.scopedCacheRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imageregistry_digest_cache_scoped_requests_total",
			Help: "Lookups of the manifest cache made for one repository's manifest, by type (Hit, Miss); every lookup is so scoped today.",
		}, []string{"type"})
		opts.Metrics.MustRegister(r.cacheRequests, r.scopedCacheRequests)
	}
	return r
}

// cachedManifest looks a manifest body up in the cache for repository
// content, counting the hit or miss.
func (r *Registry) cachedManifest(d digest.Digest) ([]byte, bool) {
	raw, ok := r.cache.get(d)
	if r.cacheRequests != nil {
		t := "Miss"
		if ok {
			t = "Hit"
		}
		r.cacheRequests.WithLabelValues(t).Inc()
		r.scopedCacheRequests.WithLabelValues(t).Inc()
	}
	return raw, ok
}

func internal(err error) error { return fmt.Errorf("registry: %w", err) }

// notify is the events describing c (none without a notifier).
func (r *Registry) notify(ctx context.Context, c events.Change) []metadata.Event {
	return r.notifier.Events(ctx, c)
}

// notified tells the notifier that evs, describing a change of action,
// just committed.
func (r *Registry) notified(action string, evs []metadata.Event) {
	if len(evs) > 0 {
		r.notifier.Queued(action, evs)
	}
}

// Pulled queues the pull events of c (its Action is set to pull), when
// pulls are recorded; the HTTP layer calls it for each GET it served. A
// pull that cannot be recorded is still served: a pull changes nothing, so
// only its event is lost, never a change's.
func (r *Registry) Pulled(ctx context.Context, c events.Change) {
	if !r.notifier.Pulls() {
		return
	}
	c.Action = events.Pull
	if evs := r.notify(ctx, c); len(evs) > 0 && r.meta.Enqueue(ctx, evs...) == nil {
		r.notified(events.Pull, evs)
	}
}

// notInRepo maps err: a store's not-found (metadata or blob store) becomes
// code, saying that what is not in repo; anything else is internal.
func notInRepo(err error, code oci.Code, what, repo string) error {
	if errors.Is(err, metadata.ErrNotFound) || errors.Is(err, storage.ErrNotFound) {
		return oci.Errorf(code, "%s is not in repository %s", what, repo)
	}
	return internal(err)
}

// ---- blobs ----

// StatBlob returns the size of blob d in repo.
func (r *Registry) StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	n, err := r.meta.BlobSize(ctx, repo, d)
	if err != nil {
		return 0, notInRepo(err, oci.ErrBlobUnknown, "blob "+d.String(), repo)
	}
	return n, nil
}

// OpenBlob opens blob d of repo for reading.
func (r *Registry) OpenBlob(ctx context.Context, repo string, d digest.Digest) (storage.Blob, int64, error) {
	n, err := r.StatBlob(ctx, repo, d)
	if err != nil {
		return nil, 0, err
	}
	b, err := r.blobs.Open(ctx, d)
	if err != nil {
		return nil, 0, notInRepo(err, oci.ErrBlobUnknown, "blob "+d.String(), repo)
	}
	return b, n, nil
}

// DeleteBlob removes repo's link to blob d (the bytes go at the next gc).
func (r *Registry) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	evs := r.notify(ctx, events.Change{Action: events.Delete, Repo: repo, Digest: d, MediaType: events.BlobMediaType})
	if err := r.meta.UnlinkBlob(ctx, repo, d, evs...); err != nil {
		return notInRepo(err, oci.ErrBlobUnknown, "blob "+d.String(), repo)
	}
	r.notified(events.Delete, evs)
	return nil
}

// MountBlob links blob d from repository from into repo. It reports false
// (and no error) when from does not hold d, so the caller falls back to an
// upload session.
func (r *Registry) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (bool, error) {
	n, err := r.meta.BlobSize(ctx, from, d)
	if errors.Is(err, metadata.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, internal(err)
	}
	// The mount event is queued with the link; should gc have taken the
	// bytes (below), the link is undone and the client uploads them, which
	// queues a push: a receiver then sees a mount followed by a push.
	evs := r.notify(ctx, events.Change{Action: events.Mount, Repo: repo, From: from, Digest: d, MediaType: events.BlobMediaType, Size: n})
	if err := r.meta.LinkBlob(ctx, repo, d, n, evs...); err != nil {
		return false, internal(err)
	}
	r.notified(events.Mount, evs)
	// Refresh the bytes' commit time after linking, so a concurrent gc
	// either sees the new link or the fresh time; if gc got to the bytes
	// first, undo the link and let the client upload them.
	if touchErr := r.blobs.Touch(ctx, d); touchErr != nil {
		_ = r.meta.UnlinkBlob(ctx, repo, d)
		if errors.Is(touchErr, storage.ErrNotFound) {
			return false, nil
		}
		return false, internal(touchErr)
	}
	return true, nil
}

// ---- uploads ----

func (r *Registry) newID(repo string) string {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	return hex.EncodeToString(nonce) + r.sign(repo, nonce)
}

func (r *Registry) sign(repo string, nonce []byte) string {
	m := hmac.New(sha256.New, r.secret)
	m.Write([]byte(repo))
	m.Write([]byte{0})
	m.Write(nonce)
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// session checks that id is a genuine upload session of repo.
func (r *Registry) session(ctx context.Context, repo, id string) error {
	unknown := oci.Errorf(oci.ErrBlobUploadUnknown, "upload %q is not known in repository %s", id, repo)
	if len(id) != 48 {
		return unknown
	}
	nonce, err := hex.DecodeString(id[:32])
	if err != nil || !hmac.Equal([]byte(r.sign(repo, nonce)), []byte(id[32:])) {
		return unknown
	}
	// A failing metadata store is a 500 the client retries, not an unknown
	// session it would abandon.
	owner, err := r.meta.UploadRepo(ctx, id)
	switch {
	case errors.Is(err, metadata.ErrNotFound):
		return unknown
	case err != nil:
		return internal(err)
	case owner != repo:
		return unknown
	}
	return nil
}

// StartUpload opens an upload session in repo.
func (r *Registry) StartUpload(ctx context.Context, repo string) (string, error) {
	id := r.newID(repo)
	if err := r.blobs.StartUpload(ctx, id); err != nil {
		return "", internal(err)
	}
	if err := r.meta.CreateUpload(ctx, id, repo); err != nil {
		_ = r.blobs.Abort(ctx, id)
		return "", internal(err)
	}
	r.mu.Lock()
	r.hashes[id] = &uploadHash{h: sha256.New()}
	r.mu.Unlock()
	return id, nil
}

// UploadSize returns how many bytes an upload session holds.
func (r *Registry) UploadSize(ctx context.Context, repo, id string) (int64, error) {
	if err := r.session(ctx, repo, id); err != nil {
		return 0, err
	}
	n, err := r.blobs.UploadSize(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, oci.Errorf(oci.ErrBlobUploadUnknown, "upload %q is not known", id)
	}
	if err != nil {
		return 0, internal(err)
	}
	return n, nil
}

// RangeError refuses a chunk (out of order, or a Content-Range that does not
// fit its body); Size is what the upload holds, so the client can resume.
// It unwraps to its protocol error, BLOB_UPLOAD_INVALID served 416.
type RangeError struct {
	Size   int64
	Reason string
}

func (e *RangeError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s (%d bytes received so far)", e.Reason, e.Size)
	}
	return fmt.Sprintf("chunk does not start at the end of the upload (%d bytes received so far)", e.Size)
}

func (e *RangeError) Unwrap() error { return oci.UploadRangeInvalid(e.Error()) }

// ChunkStart checks a chunk's Content-Range against its Content-Length
// (contentLength < 0: not given) and returns the chunk's first offset, or
// -1 for a streamed chunk without a Content-Range. A malformed range, or
// one that does not cover exactly the body, is a *RangeError with the size
// upload id of repo already holds.
func (r *Registry) ChunkStart(ctx context.Context, repo, id, contentRange string, contentLength int64) (int64, error) {
	if contentRange == "" {
		return -1, nil
	}
	reason := ""
	start, end, err := oci.ParseContentRange(contentRange)
	switch {
	case err != nil:
		reason = fmt.Sprintf("malformed Content-Range %q", truncateRef(contentRange))
	case contentLength >= 0 && contentLength != end-start+1:
		reason = fmt.Sprintf("Content-Range %s covers %d bytes but Content-Length is %d", contentRange, end-start+1, contentLength)
	default:
		return start, nil
	}
	size, serr := r.UploadSize(ctx, repo, id)
	if serr != nil {
		return 0, serr
	}
	if err == nil && start != size {
		reason = "" // out of order is the more useful thing to say
	}
	return 0, &RangeError{Size: size, Reason: reason}
}

// AppendUpload appends a chunk. start is the chunk's offset from its
// Content-Range, or -1 for a streamed chunk without one. It returns the new
// upload size.
func (r *Registry) AppendUpload(ctx context.Context, repo, id string, start int64, body io.Reader) (int64, error) {
	size, err := r.UploadSize(ctx, repo, id)
	if err != nil {
		return 0, err
	}
	if start >= 0 && start != size {
		return size, &RangeError{Size: size}
	}
	return r.appendLocked(ctx, id, size, body)
}

func (r *Registry) appendLocked(ctx context.Context, id string, size int64, body io.Reader) (int64, error) {
	r.mu.Lock()
	uh := r.hashes[id]
	delete(r.hashes, id) // one writer at a time owns the running hash
	r.mu.Unlock()
	src := body
	var ah *asyncHasher
	if uh != nil && uh.offset == size {
		ah = newAsyncHasher(uh.h)
		src = io.TeeReader(body, ah)
	} else {
		uh = nil
	}
	n, err := r.blobs.Append(ctx, id, src)
	if ah != nil {
		ah.Finish()
	}
	if err != nil {
		// The append was rolled back; the hash (if any) is now ahead of the
		// bytes, so it is dropped and recomputed from storage at the end.
		if errors.Is(err, storage.ErrNotFound) {
			return 0, oci.Errorf(oci.ErrBlobUploadUnknown, "upload %q is not known", id)
		}
		return 0, oci.Errorf(oci.ErrBlobUploadInvalid, "reading the chunk failed: %v", err)
	}
	if uh != nil {
		uh.offset = size + n
		r.mu.Lock()
		r.hashes[id] = uh
		r.mu.Unlock()
	}
	return size + n, nil
}

// CompleteUpload appends an optional final chunk, verifies the whole upload
// against d and, if it matches, makes it blob d of repo. A mismatch discards
// the upload's bytes.
func (r *Registry) CompleteUpload(ctx context.Context, repo, id string, d digest.Digest, start int64, body io.Reader) error {
	size, err := r.UploadSize(ctx, repo, id)
	if err != nil {
		return err
	}
	if body != nil {
		if start >= 0 && start != size {
			return &RangeError{Size: size}
		}
		if size, err = r.appendLocked(ctx, id, size, body); err != nil {
			return err
		}
	}
	got, err := r.uploadDigest(ctx, id, size, d.Algorithm())
	if err != nil {
		return err
	}
	if got != d {
		r.discard(ctx, id)
		return oci.Errorf(oci.ErrDigestInvalid, "upload content has digest %s, not %s; the upload was discarded", got, d)
	}
	if err := r.blobs.Commit(ctx, id, d); err != nil {
		return internal(err)
	}
	r.forget(ctx, id)
	evs := r.notify(ctx, events.Change{Action: events.Push, Repo: repo, Digest: d, MediaType: events.BlobMediaType, Size: size})
	if err := r.meta.LinkBlob(ctx, repo, d, size, evs...); err != nil {
		return internal(err)
	}
	r.notified(events.Push, evs)
	return nil
}

func (r *Registry) uploadDigest(ctx context.Context, id string, size int64, alg digest.Algorithm) (digest.Digest, error) {
	r.mu.Lock()
	uh := r.hashes[id]
	r.mu.Unlock()
	if uh != nil && uh.offset == size && alg == digest.SHA256 {
		return oci.FromHash(alg, uh.h), nil
	}
	// Another replica or a restarted process took part, or the client named
	// another algorithm: hash what storage holds.
	rc, err := r.blobs.OpenUpload(ctx, id)
	if err != nil {
		return "", internal(err)
	}
	defer rc.Close()
	h := oci.NewHash(alg)
	if _, err := io.Copy(h, rc); err != nil {
		return "", internal(err)
	}
	return oci.FromHash(alg, h), nil
}

func (r *Registry) forget(ctx context.Context, id string) {
	r.mu.Lock()
	delete(r.hashes, id)
	r.mu.Unlock()
	_ = r.meta.DeleteUpload(ctx, id)
}

func (r *Registry) discard(ctx context.Context, id string) {
	_ = r.blobs.Abort(ctx, id)
	r.forget(ctx, id)
}

// CancelUpload discards an upload session.
func (r *Registry) CancelUpload(ctx context.Context, repo, id string) error {
	if err := r.session(ctx, repo, id); err != nil {
		return err
	}
	r.discard(ctx, id)
	return nil
}

// PutBlob stores a whole blob in one call (monolithic upload).
func (r *Registry) PutBlob(ctx context.Context, repo string, d digest.Digest, body io.Reader) error {
	id, err := r.StartUpload(ctx, repo)
	if err != nil {
		return err
	}
	if err := r.CompleteUpload(ctx, repo, id, d, -1, body); err != nil {
		r.discard(ctx, id)
		return err
	}
	return nil
}

// ---- manifests ----

// PutManifest validates and stores a manifest under ref (a tag or the
// manifest's digest). It returns the manifest's digest and parsed form.
func (r *Registry) PutManifest(ctx context.Context, repo, ref, contentType string, body io.Reader) (digest.Digest, *oci.Manifest, error) {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(body, oci.MaxManifestSize+1)); err != nil {
		return "", nil, oci.Errorf(oci.ErrManifestInvalid, "reading the manifest failed: %v", err)
	}
	raw := buf.Bytes()
	m, err := oci.ParseManifest(contentType, raw)
	if err != nil {
		return "", nil, err
	}
	alg, tag := digest.SHA256, ref
	var want digest.Digest
	if oci.IsDigestReference(ref) {
		if want, err = oci.ParseDigest(ref); err != nil {
			return "", nil, err
		}
		alg, tag = want.Algorithm(), ""
	} else if err := oci.ValidateTag(ref); err != nil {
		return "", nil, err
	}
	d := oci.DigestBytes(alg, raw)
	if want != "" && d != want {
		return "", nil, oci.Errorf(oci.ErrDigestInvalid, "manifest has digest %s, not %s", d, want)
	}
	// The bytes first, durable; then the name.
	id := r.newID(repo)
	if err := r.blobs.StartUpload(ctx, id); err != nil {
		return "", nil, internal(err)
	}
	if _, err := r.blobs.Append(ctx, id, bytes.NewReader(raw)); err != nil {
		_ = r.blobs.Abort(ctx, id)
		return "", nil, internal(err)
	}
	if err := r.blobs.Commit(ctx, id, d); err != nil {
		return "", nil, internal(err)
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
	evs := r.notify(ctx, events.Change{Action: events.Push, Repo: repo, Digest: d, MediaType: m.MediaType, Size: rec.Size, Tag: tag})
	err = r.meta.PutManifest(ctx, rec, blobs, children, tag, evs...)
	var missing *metadata.MissingError
	if errors.As(err, &missing) {
		return "", nil, &oci.Error{Code: oci.ErrManifestBlobUnknown, Message: fmt.Sprintf("manifest references %s, which repository %s does not hold", missing.Digests[0], repo), Detail: map[string]any{"digests": missing.Digests}}
	}
	if err != nil {
		return "", nil, internal(err)
	}
	r.notified(events.Push, evs)
	r.cache.put(d, raw)
	return d, m, nil
}

// ManifestInfo is what a manifest GET or HEAD answers with.
type ManifestInfo struct {
	Digest    digest.Digest
	MediaType string
	Size      int64
}

// StatManifest resolves ref (tag or digest) in repo.
func (r *Registry) StatManifest(ctx context.Context, repo, ref string) (ManifestInfo, error) {
	var rec *metadata.Manifest
	var err error
	if oci.IsDigestReference(ref) {
		d, perr := oci.ParseDigest(ref)
		if perr != nil {
			return ManifestInfo{}, perr
		}
		rec, err = r.meta.GetManifest(ctx, repo, d)
	} else {
		if oci.ValidateTag(ref) != nil {
			// No manifest can have a tag the grammar refuses, so a pull
			// of one is a miss (404), as the OCI conformance suite and
			// other registries have it; a push of one is TAG_INVALID.
			return ManifestInfo{}, notInRepo(metadata.ErrNotFound, oci.ErrManifestUnknown, fmt.Sprintf("manifest %q (not a valid tag)", truncateRef(ref)), repo)
		}
		rec, err = r.meta.ResolveTag(ctx, repo, ref)
	}
	if err != nil {
		return ManifestInfo{}, notInRepo(err, oci.ErrManifestUnknown, "manifest "+ref, repo)
	}
	return ManifestInfo{Digest: rec.Digest, MediaType: rec.MediaType, Size: rec.Size}, nil
}

// truncateRef keeps an echoed reference short in error messages.
func truncateRef(ref string) string {
	if len(ref) > 130 {
		return ref[:130] + "…"
	}
	return ref
}

// GetManifest returns a manifest's description and bytes.
func (r *Registry) GetManifest(ctx context.Context, repo, ref string) (ManifestInfo, []byte, error) {
	info, err := r.StatManifest(ctx, repo, ref)
	if err != nil {
		return info, nil, err
	}
	if raw, ok := r.cachedManifest(info.Digest); ok {
		return info, raw, nil
	}
	f, err := r.blobs.Open(ctx, info.Digest)
	if err != nil {
		return info, nil, internal(err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, oci.MaxManifestSize+1))
	if err != nil {
		return info, nil, internal(err)
	}
	r.cache.put(info.Digest, raw)
	return info, raw, nil
}

// DeleteManifest deletes by digest (the manifest and its tags) or by tag
// (the tag only, as the v1.1 spec allows).
func (r *Registry) DeleteManifest(ctx context.Context, repo, ref string) error {
	var err error
	var evs []metadata.Event
	if oci.IsDigestReference(ref) {
		d, perr := oci.ParseDigest(ref)
		if perr != nil {
			return perr
		}
		evs = r.notify(ctx, events.Change{Action: events.Delete, Repo: repo, Digest: d})
		err = r.meta.DeleteManifest(ctx, repo, d, evs...)
	} else {
		if verr := oci.ValidateTag(ref); verr != nil {
			return verr
		}
		evs = r.notify(ctx, events.Change{Action: events.Delete, Repo: repo, Tag: ref})
		err = r.meta.DeleteTag(ctx, repo, ref, evs...)
	}
	if err != nil {
		return notInRepo(err, oci.ErrManifestUnknown, "manifest "+ref, repo)
	}
	r.notified(events.Delete, evs)
	return nil
}

// ---- discovery ----

// Tags lists up to n tags after last (n < 0: all); more tells whether more
// follow.
func (r *Registry) Tags(ctx context.Context, repo, last string, n int) (tags []string, more bool, err error) {
	ok, err := r.meta.RepoExists(ctx, repo)
	if err != nil {
		return nil, false, internal(err)
	}
	if !ok {
		return nil, false, oci.Errorf(oci.ErrNameUnknown, "repository %s is not known", repo)
	}
	tags, more, err = r.meta.ListTags(ctx, repo, last, n)
	if err != nil {
		return nil, false, internal(err)
	}
	return tags, more, nil
}

// Catalog lists up to n repositories after last (n < 0: all).
func (r *Registry) Catalog(ctx context.Context, last string, n int) ([]string, bool, error) {
	names, more, err := r.meta.ListRepositories(ctx, last, n)
	if err != nil {
		return nil, false, internal(err)
	}
	return names, more, nil
}

// Referrers lists the manifests whose subject is d, filtered by
// artifactType when it is not empty, as index descriptors.
func (r *Registry) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]oci.Descriptor, error) {
	list, err := r.meta.Referrers(ctx, repo, d)
	if err != nil {
		return nil, internal(err)
	}
	out := []oci.Descriptor{}
	for _, m := range list {
		if artifactType != "" && m.ArtifactType != artifactType {
			continue
		}
		out = append(out, oci.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, ArtifactType: m.ArtifactType, Annotations: m.Annotations})
	}
	return out, nil
}

// PurgeUploads discards upload sessions untouched for longer than idle:
// clients that went away, and the leftovers of a crash mid-push. It returns
// how many were discarded.
func (r *Registry) PurgeUploads(ctx context.Context, idle time.Duration) (int, error) {
	cutoff := time.Now().Add(-idle)
	var stale []string
	if err := r.blobs.Uploads(ctx, func(id string, modified time.Time) error {
		if modified.Before(cutoff) {
			stale = append(stale, id)
		}
		return nil
	}); err != nil {
		return 0, internal(err)
	}
	for _, id := range stale {
		r.discard(ctx, id)
	}
	return len(stale), nil
}
