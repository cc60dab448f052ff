package mirror

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The on-disk format of --to-dir / --from-dir is a standard OCI image
// layout, so skopeo (oci:DIR:NAME), crane and regctl (ocidir://DIR:NAME)
// read it directly:
//
//	DIR/oci-layout            {"imageLayoutVersion":"1.0.0"}
//	DIR/index.json            one entry per named image; annotation
//	                          org.opencontainers.image.ref.name = "REPO:TAG"
//	DIR/blobs/sha256/HEX      every blob and manifest, once, named by digest
//	DIR/berth-mirror.json     the catalog: repository, tag, digest, source
//	                          reference and referrer subject of every entry
//
// A blob file gets its digest name only after its bytes hashed to that
// digest (written to a temporary name, then renamed), so after a crash a
// file under its final name is always complete and a rerun resumes by
// digest. Manifests are written after everything they reference, so a
// manifest present means its whole tree is present. Layouts written by
// other tools (no catalog) are read from index.json alone.

// CatalogFile is the name of the layout's catalog.
const CatalogFile = "berth-mirror.json"

const refNameAnnotation = "org.opencontainers.image.ref.name"

// Catalog lists what a layout holds, beyond what index.json can say.
type Catalog struct {
	Version int            `json:"version"`
	Images  []CatalogEntry `json:"images"`
}

// CatalogEntry is one named manifest in a layout.
type CatalogEntry struct {
	// Repository is the path the image is pushed under (below a prefix).
	Repository string `json:"repository"`
	// Tag is empty for images kept by digest only.
	Tag       string `json:"tag,omitempty"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	// Source is the reference the image was mirrored from.
	Source string `json:"source,omitempty"`
	// Subject is set on referrers: the digest they refer to.
	Subject string `json:"subject,omitempty"`
}

func (e CatalogEntry) key() string { return e.Repository + "\x00" + e.Tag + "\x00" + e.Digest }

// Layout is an OCI image layout directory, as Source and Target.
type Layout struct {
	dir string

	mu      sync.Mutex
	entries map[string]CatalogEntry
	flushMu sync.Mutex // one writer of index.json and the catalog at a time
	assumed map[string]bool
	// trusted holds the blobs (digest: size) whose bytes this process
	// hashed while writing or unpacking them here; only these are pushed
	// without hashing them again.
	trusted   map[v1.Hash]int64
	lastFlush time.Time
	// external are blobs read from archives in place (OpenArchives).
	external map[v1.Hash][]archiveSection
}

var (
	_ Source    = (*Layout)(nil)
	_ Target    = (*Layout)(nil)
	_ Closer    = (*Layout)(nil)
	_ BlobFiler = (*Layout)(nil)

	_ verifiedSource = (*Layout)(nil)
)

// flushEvery bounds how often index.json and the catalog are rewritten
// while a run adds images (Close always writes them). Blobs and manifests
// are committed by their own renames, so an interrupted run loses at most
// the names of its last images; a rerun finds their content by digest and
// only writes the names again.
const flushEvery = time.Second

// OpenLayout opens (creating when create is set) the layout at dir.
func OpenLayout(dir string, create bool) (*Layout, error) {
	l := &Layout{dir: dir, entries: map[string]CatalogEntry{}, trusted: map[v1.Hash]int64{}}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		if !create {
			return nil, fmt.Errorf("%s is not an OCI image layout (no oci-layout file): %w", dir, err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`+"\n")); err != nil {
			return nil, err
		}
	}
	if err := l.load(); err != nil {
		return nil, err
	}
	if create {
		// Temporary files of an interrupted run: never valid content.
		stale, _ := filepath.Glob(filepath.Join(dir, "blobs", "*", ".tmp-*"))
		for _, f := range stale {
			os.Remove(f)
		}
	}
	return l, nil
}

func (l *Layout) load() error {
	raw, err := os.ReadFile(filepath.Join(l.dir, CatalogFile))
	if err == nil {
		var c Catalog
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(l.dir, CatalogFile), err)
		}
		for _, e := range c.Images {
			l.entries[e.key()] = e
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// A layout from another tool: names come from index.json.
	raw, err = os.ReadFile(filepath.Join(l.dir, "index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(l.dir, "index.json"), err)
	}
	for _, d := range idx.Manifests {
		e := CatalogEntry{Digest: d.Digest.String(), MediaType: string(d.MediaType), Size: d.Size}
		e.Repository, e.Tag = splitRefName(d.Annotations[refNameAnnotation])
		l.entries[e.key()] = e
	}
	return nil
}

// splitRefName reads "repo:tag", "repo@digest" or a bare "tag".
func splitRefName(s string) (repo, tag string) {
	if i := strings.Index(s, "@"); i >= 0 {
		s = s[:i]
		if !strings.Contains(s, "/") && !strings.Contains(s, ":") {
			return s, ""
		}
	}
	slash := strings.LastIndex(s, "/")
	if i := strings.LastIndex(s, ":"); i > slash {
		return s[:i], s[i+1:]
	}
	if slash < 0 {
		return "", s
	}
	return s, ""
}

// Name implements Source and Target.
func (l *Layout) Name() string { return "oci:" + l.dir }

// Dir is the layout's directory.
func (l *Layout) Dir() string { return l.dir }

// Entries returns the catalog, sorted by repository, tag and digest.
func (l *Layout) Entries() []CatalogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]CatalogEntry, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

func (l *Layout) blobPath(h v1.Hash) string {
	return filepath.Join(l.dir, "blobs", h.Algorithm, h.Hex)
}

func (l *Layout) resolve(repo, ref string) (CatalogEntry, error) {
	if strings.Contains(ref, ":") {
		return CatalogEntry{Repository: repo, Digest: ref}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		if e.Repository == repo && e.Tag == ref {
			return e, nil
		}
	}
	return CatalogEntry{}, fmt.Errorf("%s: no image %s:%s: %w", l.dir, repo, ref, fs.ErrNotExist)
}

// GetManifest implements Source.
func (l *Layout) GetManifest(ctx context.Context, repo, ref string) (*Manifest, error) {
	e, err := l.resolve(repo, ref)
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(e.Digest)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(l.blobPath(h))
	if err != nil {
		return nil, err
	}
	return newManifest(raw, e.MediaType, e.Digest)
}

// OpenBlob implements Source.
func (l *Layout) OpenBlob(ctx context.Context, repo string, d v1.Descriptor) (io.ReadCloser, error) {
	l.mu.Lock()
	secs, ok := l.external[d.Digest]
	l.mu.Unlock()
	if ok {
		return &sectionsReader{secs: secs}, nil
	}
	return l.OpenBlobFile(ctx, repo, d)
}

// OpenBlobFile implements BlobFiler.
func (l *Layout) OpenBlobFile(ctx context.Context, repo string, d v1.Descriptor) (*os.File, error) {
	return os.Open(l.blobPath(d.Digest))
}

// Referrers implements Source from the catalog's subjects and tag scheme.
func (l *Layout) Referrers(ctx context.Context, repo string, subject v1.Hash) ([]Referrer, error) {
	prefix := subject.Algorithm + "-" + subject.Hex
	var out []Referrer
	for _, e := range l.Entries() {
		if e.Repository != repo {
			continue
		}
		tagged := e.Tag == prefix || strings.HasPrefix(e.Tag, prefix+".")
		if e.Subject != subject.String() && !tagged {
			continue
		}
		h, err := v1.NewHash(e.Digest)
		if err != nil {
			return nil, err
		}
		r := Referrer{Descriptor: v1.Descriptor{MediaType: types.MediaType(e.MediaType), Digest: h, Size: e.Size}}
		if tagged {
			r.Tag = e.Tag
		}
		out = append(out, r)
	}
	return out, nil
}

// ManifestDigest implements Target. By digest the answer does not depend on
// the repository: a layout is one content store.
func (l *Layout) ManifestDigest(ctx context.Context, repo, ref string) (v1.Hash, bool, error) {
	e, err := l.resolve(repo, ref)
	if errors.Is(err, fs.ErrNotExist) {
		return v1.Hash{}, false, nil
	}
	if err != nil {
		return v1.Hash{}, false, err
	}
	h, err := v1.NewHash(e.Digest)
	if err != nil {
		return v1.Hash{}, false, err
	}
	if _, err := os.Stat(l.blobPath(h)); err != nil {
		if strings.Contains(ref, ":") && l.isAssumed(e.Digest) {
			return h, true, nil
		}
		return v1.Hash{}, false, nil
	}
	return h, true, nil
}

// PutManifest implements Target.
func (l *Layout) PutManifest(ctx context.Context, repo, ref string, m *Manifest) error {
	if _, err := os.Stat(l.blobPath(m.Digest)); err != nil {
		if err := l.PutBlob(ctx, repo, m.Descriptor(), bytes.NewReader(m.Raw)); err != nil {
			return err
		}
	}
	var probe struct {
		Subject *v1.Descriptor `json:"subject"`
	}
	_ = json.Unmarshal(m.Raw, &probe)
	if strings.Contains(ref, ":") && probe.Subject == nil {
		return nil // a child manifest: reachable through its index
	}
	e := CatalogEntry{Repository: repo, Digest: m.Digest.String(), MediaType: m.MediaType, Size: int64(len(m.Raw))}
	if !strings.Contains(ref, ":") {
		e.Tag = ref
	}
	if probe.Subject != nil {
		e.Subject = probe.Subject.Digest.String()
	}
	l.mu.Lock()
	if old, ok := l.entries[e.key()]; ok {
		e.Source = old.Source
	}
	// A tag names one digest: drop what it named before.
	if e.Tag != "" {
		for k, o := range l.entries {
			if o.Repository == repo && o.Tag == e.Tag && o.Digest != e.Digest {
				delete(l.entries, k)
			}
		}
	}
	l.entries[e.key()] = e
	l.mu.Unlock()
	return l.flushSoon()
}

// NoteSource records where a top-level image came from and keeps by-digest
// images in the catalog. A listed image always has its manifest in the
// layout, even when --since said the receiver holds it: whoever pushes the
// layout reads it from there.
func (l *Layout) NoteSource(ctx context.Context, repo, ref string, m *Manifest, source string) error {
	if _, err := os.Stat(l.blobPath(m.Digest)); err != nil {
		if err := l.PutBlob(ctx, repo, m.Descriptor(), bytes.NewReader(m.Raw)); err != nil {
			return err
		}
	}
	e := CatalogEntry{Repository: repo, Digest: m.Digest.String(), MediaType: m.MediaType, Size: int64(len(m.Raw)), Source: source}
	if !strings.Contains(ref, ":") {
		e.Tag = ref
	}
	l.mu.Lock()
	if old, ok := l.entries[e.key()]; ok {
		e.Subject = old.Subject
	}
	l.entries[e.key()] = e
	l.mu.Unlock()
	return l.flushSoon()
}

// HasBlob implements Target: a blob under its digest name is complete.
func (l *Layout) HasBlob(ctx context.Context, repo string, d v1.Descriptor) (bool, error) {
	if l.isAssumed(d.Digest.String()) {
		return true, nil
	}
	fi, err := os.Stat(l.blobPath(d.Digest))
	if err != nil {
		return false, nil
	}
	return d.Size <= 0 || fi.Size() == d.Size, nil
}

// PutBlob implements Target: write under a temporary name, verify, rename.
// The bytes are hashed once: here, or by r when it is a digestChecker for
// d (the copy engine's verifying reader), which fails the copy at EOF on a
// mismatch before the rename could happen.
func (l *Layout) PutBlob(ctx context.Context, repo string, d v1.Descriptor, r io.Reader) error {
	if d.Digest.Algorithm != "sha256" {
		return fmt.Errorf("blob %s: only sha256 digests are supported in a layout", d.Digest)
	}
	final := l.blobPath(d.Digest)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(final), ".tmp-"+d.Digest.Hex[:12]+"-"+hex.EncodeToString(rnd[:]))
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	var h hash.Hash
	if dc, ok := r.(digestChecker); ok {
		if cd, ok := dc.checks(); !ok || cd.Digest != d.Digest || cd.Size != d.Size {
			h = sha256.New()
		}
	} else {
		h = sha256.New()
	}
	n, err := copyBlob(f, h, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && h != nil && hex.EncodeToString(h.Sum(nil)) != d.Digest.Hex {
		err = fmt.Errorf("blob %s: content hashes to sha256:%x: %w", d.Digest, h.Sum(nil), ErrDigestMismatch)
	}
	if err == nil && d.Size > 0 && n != d.Size {
		err = fmt.Errorf("blob %s: got %d bytes, want %d: %w", d.Digest, n, d.Size, ErrDigestMismatch)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	l.markVerified(d.Digest, n)
	return nil
}

// copyBufs are the buffers blobs are copied through: large enough that a
// layer costs few write calls.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// copyBlob copies r to EOF into f, and into h when h is not nil. It fills
// the buffer before each write, so small network reads do not each become
// a write call.
func copyBlob(f io.Writer, h hash.Hash, r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		// Not io.ReadFull: it turns a short read's io.EOF into
		// io.ErrUnexpectedEOF, and a truncated body's own
		// io.ErrUnexpectedEOF must stay an error.
		m := 0
		var rerr error
		for m < len(buf) && rerr == nil {
			var k int
			k, rerr = r.Read(buf[m:])
			m += k
		}
		if m > 0 {
			if h != nil {
				h.Write(buf[:m])
			}
			if _, err := f.Write(buf[:m]); err != nil {
				return n, err
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

func (l *Layout) markVerified(d v1.Hash, size int64) {
	l.mu.Lock()
	l.trusted[d] = size
	l.mu.Unlock()
}

// verified implements verifiedSource.
func (l *Layout) verified(d v1.Descriptor) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	size, ok := l.trusted[d.Digest]
	return ok && (d.Size <= 0 || d.Size == size)
}

// Close implements Closer.
func (l *Layout) Close() error { return l.flush() }

// flushSoon flushes unless the last flush was under flushEvery ago.
func (l *Layout) flushSoon() error {
	l.mu.Lock()
	due := time.Since(l.lastFlush) >= flushEvery
	l.mu.Unlock()
	if !due {
		return nil
	}
	return l.flush()
}

// flush rewrites index.json and the catalog atomically.
func (l *Layout) flush() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	l.lastFlush = time.Now()
	l.mu.Unlock()
	entries := l.Entries()
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	seen := map[string]bool{}
	// regctl's ocidir:// looks a tag up by the bare tag; add that second
	// name when the tag is unique in the layout (always so for a release).
	tagRepos := map[string]int{}
	for _, e := range entries {
		if e.Tag != "" {
			tagRepos[e.Tag]++
		}
	}
	add := func(d v1.Descriptor) {
		k := d.Digest.String() + "\x00" + d.Annotations[refNameAnnotation]
		if !seen[k] {
			seen[k] = true
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	for _, e := range entries {
		h, err := v1.NewHash(e.Digest)
		if err != nil {
			return err
		}
		d := v1.Descriptor{MediaType: types.MediaType(e.MediaType), Digest: h, Size: e.Size}
		if e.Tag != "" {
			name := e.Tag
			if e.Repository != "" {
				name = e.Repository + ":" + e.Tag
			}
			d.Annotations = map[string]string{refNameAnnotation: name}
			if e.Repository != "" && tagRepos[e.Tag] == 1 {
				bare := d
				bare.Annotations = map[string]string{refNameAnnotation: e.Tag}
				add(bare)
			}
		}
		add(d)
	}
	raw, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(l.dir, "index.json"), append(raw, '\n')); err != nil {
		return err
	}
	craw, err := json.MarshalIndent(Catalog{Version: 1, Images: entries}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(l.dir, CatalogFile), append(craw, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// State is what a receiving side holds, by digest: written by
// `berth mirror state --from-dir DIR` there and given to `--since` on the
// sending side, so a directory carries only what the receiver lacks. A lost
// directory never breaks the chain: the next state simply lists less.
type State struct {
	Blobs []string `json:"blobs"`
}

// State lists every blob and manifest in the layout. A file under its
// digest name was verified when written, so names are trusted here.
func (l *Layout) State() (*State, error) {
	s := &State{Blobs: []string{}}
	algs, err := os.ReadDir(filepath.Join(l.dir, "blobs"))
	if err != nil {
		return nil, err
	}
	for _, a := range algs {
		files, err := os.ReadDir(filepath.Join(l.dir, "blobs", a.Name()))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if !strings.HasPrefix(f.Name(), ".") {
				s.Blobs = append(s.Blobs, a.Name()+":"+f.Name())
			}
		}
	}
	sort.Strings(s.Blobs)
	return s, nil
}

// AssumePresent makes the layout treat these digests as already delivered:
// they are neither fetched nor written (incremental --since transfers).
func (l *Layout) AssumePresent(s *State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.assumed == nil {
		l.assumed = map[string]bool{}
	}
	for _, d := range s.Blobs {
		l.assumed[d] = true
	}
}

func (l *Layout) isAssumed(d string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.assumed[d]
}
