package mirror

import (
	"archive/tar"
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
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Archives (--archive-size) carry a layout across media with a size limit
// (DVDs, FAT32 sticks, upload caps). The format:
//
//	ARCHIVE_DIR/berth-archive-0001.tar ...   plain POSIX tar files, each at
//	                                         most MaxSize bytes on disk
//	ARCHIVE_DIR/berth-archives.json          the archive manifest (ArchiveSet)
//
// Every file of the layout is stored under its layout path. A file that does
// not fit the space left in an archive is split: its first bytes end that
// archive as entry PATH.part-0001, the rest continue at the start of the
// next archive (PATH.part-0002, ...). So every archive but the last is
// filled to the limit and a blob larger than the limit is carried too.
// Blobs come first and the layout's index files last, so a partly unpacked
// layout never names content it lacks.
//
// The manifest lists every archive's size and sha256, and every file's
// digest, size and parts (archive, entry, size). The manifest is written
// last: without it a set of archives is incomplete. Unpacking checks that
// every archive is present before reading any, streams each archive once,
// writes each file under a temporary name and renames it only after its
// bytes hash to the manifest's digest, and checks each archive's own sha256
// at its end. Any mismatch is an error naming the archive; a caller pushes
// only from a layout whose unpack returned no error.

// ArchiveManifestFile is the name of the archive manifest.
const ArchiveManifestFile = "berth-archives.json"

// MinArchiveSize is the smallest --archive-size accepted: room for the tar
// headers and end marker around a useful amount of data.
const MinArchiveSize = 16 << 10

const archiveVersion = 1

var archiveNameRE = regexp.MustCompile(`^berth-archive-[0-9]{4,}\.tar$`)

// ArchiveName is the name of the n-th (1-based) archive.
func ArchiveName(n int) string { return fmt.Sprintf("berth-archive-%04d.tar", n) }

// ArchiveSet is the archive manifest (berth-archives.json).
type ArchiveSet struct {
	Version int `json:"version"`
	// MaxSize is the --archive-size the archives were cut to.
	MaxSize  int64         `json:"maxSize"`
	Archives []ArchiveInfo `json:"archives"`
	// Files lists every layout file in the order the archives hold them.
	Files []ArchivedFile `json:"files"`
}

// ArchiveInfo is one tar file.
type ArchiveInfo struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"` // sha256 of the whole tar file
}

// ArchivedFile is one layout file and where its bytes are.
type ArchivedFile struct {
	// Path is relative to the layout root, slash-separated.
	Path   string     `json:"path"`
	Digest string     `json:"digest"`
	Size   int64      `json:"size"`
	Parts  []FilePart `json:"parts"`
}

// FilePart is a run of a file's bytes stored as one tar entry.
type FilePart struct {
	Archive string `json:"archive"`
	Entry   string `json:"entry"`
	Size    int64  `json:"size"`
}

// DefaultArchiveDir is where archives of the layout at layoutDir go unless
// told otherwise: a sibling directory, so the layout stays a working copy
// that reruns resume from and only the archives are carried.
func DefaultArchiveDir(layoutDir string) string {
	return filepath.Clean(layoutDir) + "-archives"
}

// IsArchiveDir reports whether dir holds an archive manifest.
func IsArchiveDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ArchiveManifestFile))
	return err == nil
}

// PackLayout packs every file of the layout at layoutDir into numbered tar
// files in archiveDir, each at most maxSize bytes, and writes the archive
// manifest. Archives and a manifest left in archiveDir by an earlier pack
// are replaced. Blobs are hashed as they are read: a layout file that does
// not match its digest name stops the pack.
func PackLayout(ctx context.Context, layoutDir, archiveDir string, maxSize int64) (*ArchiveSet, error) {
	if maxSize < MinArchiveSize {
		return nil, fmt.Errorf("archive size %d bytes: must be at least %d (16KiB)", maxSize, MinArchiveSize)
	}
	files, err := layoutFiles(layoutDir, archiveDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(archiveDir, 0o755); err != nil {
		return nil, err
	}
	old, _ := filepath.Glob(filepath.Join(archiveDir, "berth-archive-*.tar"))
	for _, f := range append(old, filepath.Join(archiveDir, ArchiveManifestFile)) {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	p := &packer{dir: archiveDir, max: maxSize, set: &ArchiveSet{Version: archiveVersion, MaxSize: maxSize}}
	defer p.abort()
	for _, rel := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := p.addFile(layoutDir, rel); err != nil {
			return nil, err
		}
	}
	if err := p.closeArchive(); err != nil {
		return nil, err
	}
	raw, err := json.MarshalIndent(p.set, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(archiveDir, ArchiveManifestFile), append(raw, '\n')); err != nil {
		return nil, err
	}
	return p.set, nil
}

// layoutFiles lists the layout's regular files, slash-separated and
// relative: blobs first, then the rest (index.json, the catalog, ...),
// each group sorted. Temporary files and archiveDir are left out.
func layoutFiles(layoutDir, archiveDir string) ([]string, error) {
	absArchive, _ := filepath.Abs(archiveDir)
	var blobs, meta []string
	err := filepath.WalkDir(layoutDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if abs, _ := filepath.Abs(p); abs == absArchive {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, ".tmp-") || strings.HasSuffix(name, ".tmp") || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(layoutDir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, "blobs/") {
			blobs = append(blobs, rel)
		} else {
			meta = append(meta, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(layoutDir, "oci-layout")); err != nil {
		return nil, fmt.Errorf("%s is not an OCI image layout (no oci-layout file)", layoutDir)
	}
	sort.Strings(blobs)
	sort.Strings(meta)
	return append(blobs, meta...), nil
}

// packer fills archives one after the other.
type packer struct {
	dir string
	max int64
	set *ArchiveSet

	f    *os.File
	tw   *tar.Writer
	cw   *countWriter
	info *ArchiveInfo
}

type countWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.h != nil {
		c.h.Write(p[:n])
	}
	return n, err
}

// tarEnd is what tar.Writer.Close appends: two zero blocks.
const tarEnd = 1024

func padded(n int64) int64 { return (n + 511) &^ 511 }

// headerCost is the exact number of bytes tar writes for h's header(s).
func headerCost(h *tar.Header) (int64, error) {
	cw := &countWriter{w: io.Discard}
	if err := tar.NewWriter(cw).WriteHeader(h); err != nil {
		return 0, err
	}
	return cw.n, nil
}

func (p *packer) openArchive() error {
	n := len(p.set.Archives) + 1
	name := ArchiveName(n)
	f, err := os.Create(filepath.Join(p.dir, name))
	if err != nil {
		return err
	}
	p.f = f
	p.cw = &countWriter{w: f, h: sha256.New()}
	p.tw = tar.NewWriter(p.cw)
	p.set.Archives = append(p.set.Archives, ArchiveInfo{Name: name})
	p.info = &p.set.Archives[len(p.set.Archives)-1]
	return nil
}

func (p *packer) closeArchive() error {
	if p.f == nil {
		return nil
	}
	err := p.tw.Close()
	if err == nil {
		err = p.f.Sync()
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	p.info.Size = p.cw.n
	p.info.Digest = "sha256:" + hex.EncodeToString(p.cw.h.Sum(nil))
	p.f = nil
	if err == nil && p.info.Size > p.max {
		err = fmt.Errorf("%s: %d bytes, over the %d limit (bug in the packer)", p.info.Name, p.info.Size, p.max)
	}
	return err
}

func (p *packer) abort() {
	if p.f != nil {
		p.f.Close()
	}
}

func (p *packer) addFile(root, rel string) error {
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	af := ArchivedFile{Path: rel, Size: size}
	h := sha256.New()
	src := io.TeeReader(f, h)
	mtime := fi.ModTime().Truncate(time.Second)
	var done int64
	for part := 1; ; {
		if p.f == nil {
			if err := p.openArchive(); err != nil {
				return err
			}
		}
		room := p.max - p.cw.n - tarEnd
		left := size - done
		// Whole (rest of the) file in this archive?
		entry := rel
		if part > 1 {
			entry = fmt.Sprintf("%s.part-%04d", rel, part)
		}
		hdr := &tar.Header{Name: entry, Size: left, Mode: 0o644, Typeflag: tar.TypeReg, ModTime: mtime}
		cost, err := headerCost(hdr)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		n := left
		if cost+padded(left) > room {
			// Split: as many whole blocks as fit after a part header.
			hdr.Name = fmt.Sprintf("%s.part-%04d", rel, part)
			if cost, err = headerCost(hdr); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			n = (room - cost) &^ 511
			if n < 512 {
				if p.cw.n == 0 {
					return fmt.Errorf("archive size %d is too small for the header of %s", p.max, rel)
				}
				if err := p.closeArchive(); err != nil {
					return err
				}
				continue
			}
			hdr.Size = n
		}
		if err := p.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", p.info.Name, err)
		}
		if _, err := io.CopyN(p.tw, src, n); err != nil {
			return fmt.Errorf("%s: reading %s: %w", p.info.Name, rel, err)
		}
		af.Parts = append(af.Parts, FilePart{Archive: p.info.Name, Entry: hdr.Name, Size: n})
		done += n
		if done == size {
			break
		}
		// The archive is full: the next part starts the next one.
		if err := p.closeArchive(); err != nil {
			return err
		}
		part++
	}
	af.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	if want, ok := blobDigestFromPath(rel); ok && want != af.Digest {
		return fmt.Errorf("layout file %s hashes to %s: the layout is corrupt; remove the file and rerun the mirror to fetch it again", rel, af.Digest)
	}
	p.set.Files = append(p.set.Files, af)
	return nil
}

// blobDigestFromPath reads blobs/sha256/HEX.
func blobDigestFromPath(rel string) (string, bool) {
	parts := strings.Split(rel, "/")
	if len(parts) != 3 || parts[0] != "blobs" || parts[1] != "sha256" {
		return "", false
	}
	return "sha256:" + parts[2], true
}

// ArchiveError is a missing, truncated or corrupt archive.
type ArchiveError struct {
	// Archive is the tar file's name, or the manifest's.
	Archive string
	Err     error
}

func (e *ArchiveError) Error() string { return e.Archive + ": " + e.Err.Error() }
func (e *ArchiveError) Unwrap() error { return e.Err }

// ErrArchiveMissing and ErrArchiveCorrupt classify ArchiveErrors.
var (
	ErrArchiveMissing = errors.New("archive missing")
	ErrArchiveCorrupt = errors.New("archive corrupt")
)

var sha256RE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// ReadArchiveSet reads and checks an archive manifest: names and paths
// are confined to the directories they live in, parts add up, and each
// file's parts follow the archives' order.
func ReadArchiveSet(r io.Reader) (*ArchiveSet, error) {
	var s ArchiveSet
	dec := json.NewDecoder(io.LimitReader(r, 256<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	if s.Version != archiveVersion {
		return nil, fmt.Errorf("version %d: this berth reads version %d", s.Version, archiveVersion)
	}
	var bad []error
	order := map[string]int{}
	for i, a := range s.Archives {
		if !archiveNameRE.MatchString(a.Name) || order[a.Name] != 0 {
			bad = append(bad, fmt.Errorf("archives[%d].name %q: want a unique berth-archive-NNNN.tar", i, a.Name))
		}
		if !sha256RE.MatchString(a.Digest) || a.Size < 0 {
			bad = append(bad, fmt.Errorf("archives[%d] (%s): want a sha256 digest and a size", i, a.Name))
		}
		order[a.Name] = i + 1
	}
	seen := map[string]bool{}
	last := 0
	for i, f := range s.Files {
		if !validLayoutPath(f.Path) || seen[f.Path] {
			bad = append(bad, fmt.Errorf("files[%d].path %q: want a unique relative path inside the layout", i, f.Path))
			continue
		}
		seen[f.Path] = true
		if !sha256RE.MatchString(f.Digest) {
			bad = append(bad, fmt.Errorf("files[%d] (%s): digest %q is not sha256:<64 hex>", i, f.Path, f.Digest))
		}
		if want, ok := blobDigestFromPath(f.Path); ok && want != f.Digest {
			bad = append(bad, fmt.Errorf("files[%d] (%s): digest %s does not match the file name", i, f.Path, f.Digest))
		}
		var sum int64
		for j, pt := range f.Parts {
			n := order[pt.Archive]
			wantEntry := f.Path
			if len(f.Parts) > 1 || j > 0 {
				wantEntry = fmt.Sprintf("%s.part-%04d", f.Path, j+1)
			}
			switch {
			case n == 0:
				bad = append(bad, fmt.Errorf("files[%d] (%s): part %d is in %q, which is not listed", i, f.Path, j+1, pt.Archive))
			case n < last || (j > 0 && n != last+1):
				bad = append(bad, fmt.Errorf("files[%d] (%s): part %d is out of archive order", i, f.Path, j+1))
			case pt.Entry != wantEntry || pt.Size < 0:
				bad = append(bad, fmt.Errorf("files[%d] (%s): part %d entry %q, want %q", i, f.Path, j+1, pt.Entry, wantEntry))
			}
			if n > 0 {
				last = n
			}
			sum += pt.Size
		}
		if len(f.Parts) == 0 || sum != f.Size {
			bad = append(bad, fmt.Errorf("files[%d] (%s): parts hold %d bytes, size is %d", i, f.Path, sum, f.Size))
		}
	}
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	return &s, nil
}

// validLayoutPath accepts relative, clean, slash-separated paths that stay
// inside the layout.
func validLayoutPath(p string) bool {
	if p == "" || strings.ContainsAny(p, "\\\x00") || path.Clean(p) != p || !filepath.IsLocal(filepath.FromSlash(p)) {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if strings.HasPrefix(seg, ".") {
			return false
		}
	}
	return true
}

// UnpackStats says what an unpack did.
type UnpackStats struct {
	Archives int
	Files    int
	Bytes    int64

	verified []ArchivedFile // every file, hashed by this unpack
}

// UnpackArchives unpacks the archives in archiveDir into the layout at
// layoutDir (created when absent), verifying every file's digest and every
// archive's sha256. Missing or truncated archives are all reported before
// anything is read. On error the layout must not be pushed: files already
// renamed into it are verified, but others are missing.
func UnpackArchives(ctx context.Context, archiveDir, layoutDir string) (*UnpackStats, error) {
	return UnpackArchivesWith(ctx, archiveDir, layoutDir, UnpackOptions{})
}

// UnpackOptions tune an unpack.
type UnpackOptions struct {
	// Progress, when set, is called as bytes are unpacked and verified:
	// done and total count the bytes of every archive.
	Progress func(done, total int64)
	// streamAboveForTests lowers OpenArchives' streamMin in tests.
	streamAboveForTests int64
}

// UnpackArchivesWith is UnpackArchives with options.
func UnpackArchivesWith(ctx context.Context, archiveDir, layoutDir string, opts UnpackOptions) (*UnpackStats, error) {
	set, err := checkArchives(archiveDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(layoutDir, 0o755); err != nil {
		return nil, err
	}
	// What each archive holds, in order.
	type slot struct {
		file, part int
	}
	byArchive := map[string][]slot{}
	for i, f := range set.Files {
		for j, pt := range f.Parts {
			byArchive[pt.Archive] = append(byArchive[pt.Archive], slot{i, j})
		}
	}
	u := &unpacker{layout: layoutDir, set: set, progress: opts.Progress}
	for _, a := range set.Archives {
		u.total += a.Size
	}
	defer u.abort()
	st := &UnpackStats{}
	for _, a := range set.Archives {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := u.archive(a, archiveDir, func(tr *tar.Reader) error {
			for _, s := range byArchive[a.Name] {
				if err := u.entry(tr, a.Name, s.file, s.part); err != nil {
					return err
				}
				st.Bytes += set.Files[s.file].Parts[s.part].Size
			}
			return nil
		}); err != nil {
			return nil, err
		}
		st.Archives++
	}
	st.Files = len(set.Files)
	st.verified = set.Files
	return st, nil
}

// checkArchives reads the archive manifest of archiveDir and checks that
// every archive it lists is there with its size; every missing or
// truncated one is named before anything is read.
func checkArchives(archiveDir string) (*ArchiveSet, error) {
	mpath := filepath.Join(archiveDir, ArchiveManifestFile)
	mf, err := os.Open(mpath)
	if err != nil {
		return nil, &ArchiveError{Archive: mpath, Err: fmt.Errorf("%w: no archive manifest (written last by --archive-size; was packing interrupted?): %v", ErrArchiveMissing, err)}
	}
	set, err := ReadArchiveSet(mf)
	mf.Close()
	if err != nil {
		return nil, &ArchiveError{Archive: mpath, Err: fmt.Errorf("%w: %v", ErrArchiveCorrupt, err)}
	}
	var problems []error
	for _, a := range set.Archives {
		fi, err := os.Stat(filepath.Join(archiveDir, a.Name))
		switch {
		case err != nil:
			problems = append(problems, &ArchiveError{Archive: a.Name, Err: fmt.Errorf("%w from %s (%d bytes expected)", ErrArchiveMissing, archiveDir, a.Size)})
		case fi.Size() != a.Size:
			problems = append(problems, &ArchiveError{Archive: a.Name, Err: fmt.Errorf("%w: %d bytes, the manifest says %d (truncated or incomplete copy?)", ErrArchiveCorrupt, fi.Size(), a.Size)})
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%d of %d archives cannot be used; nothing was unpacked:\n%w", len(problems), len(set.Archives), errors.Join(problems...))
	}
	return set, nil
}

// OpenUnpacked unpacks like UnpackArchives, then opens the layout trusting
// every blob the unpack just hashed: pushing it reads those blobs without
// hashing them again. A layout unpacked by an earlier process is opened
// with OpenLayout and verified on the way out.
func OpenUnpacked(ctx context.Context, archiveDir, layoutDir string, opts UnpackOptions) (*Layout, *UnpackStats, error) {
	st, err := UnpackArchivesWith(ctx, archiveDir, layoutDir, opts)
	if err != nil {
		return nil, nil, err
	}
	l, err := OpenLayout(layoutDir, false)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range st.verified {
		if d, ok := blobDigestFromPath(f.Path); ok {
			if h, err := v1.NewHash(d); err == nil {
				l.markVerified(h, f.Size)
			}
		}
	}
	return l, st, nil
}

type unpacker struct {
	layout string
	set    *ArchiveSet

	progress    func(done, total int64)
	done, total int64

	// The file being assembled (its parts may span archives).
	out  *os.File
	tmp  string
	hash hash.Hash
}

func (u *unpacker) abort() {
	if u.out != nil {
		u.out.Close()
		os.Remove(u.tmp)
		u.out = nil
	}
}

// archive streams one tar file through read, then checks its sha256.
func (u *unpacker) archive(a ArchiveInfo, dir string, read func(*tar.Reader) error) error {
	f, err := os.Open(filepath.Join(dir, a.Name))
	if err != nil {
		return &ArchiveError{Archive: a.Name, Err: fmt.Errorf("%w: %v", ErrArchiveMissing, err)}
	}
	defer f.Close()
	// The archive's own hash runs on another core than the files' hashes
	// and writes: each byte is hashed twice, and one sha256 stream is
	// slower than the disk on CPUs without SHA instructions.
	h := newAsyncHash()
	defer h.stop()
	tee := io.TeeReader(&progressReader{r: f, u: u}, h)
	if err := read(tar.NewReader(tee)); err != nil {
		var ae *ArchiveError
		if errors.As(err, &ae) {
			return err
		}
		return &ArchiveError{Archive: a.Name, Err: err}
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return &ArchiveError{Archive: a.Name, Err: err}
	}
	if got := "sha256:" + hex.EncodeToString(h.sum()); got != a.Digest {
		return &ArchiveError{Archive: a.Name, Err: fmt.Errorf("%w: the file hashes to %s, the manifest says %s", ErrArchiveCorrupt, got, a.Digest)}
	}
	return nil
}

// entry reads part j of file i from tr into the layout.
func (u *unpacker) entry(tr *tar.Reader, archive string, i, j int) error {
	f := u.set.Files[i]
	pt := f.Parts[j]
	hdr, err := tr.Next()
	if err != nil {
		return &ArchiveError{Archive: archive, Err: fmt.Errorf("%w: reading entry %s: %v", ErrArchiveCorrupt, pt.Entry, err)}
	}
	if hdr.Name != pt.Entry || hdr.Size != pt.Size || hdr.Typeflag != tar.TypeReg {
		return &ArchiveError{Archive: archive, Err: fmt.Errorf("%w: entry %q (%d bytes) where the manifest says %q (%d bytes)", ErrArchiveCorrupt, hdr.Name, hdr.Size, pt.Entry, pt.Size)}
	}
	final := filepath.Join(u.layout, filepath.FromSlash(f.Path))
	if j == 0 {
		if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
			return err
		}
		var rnd [6]byte
		_, _ = rand.Read(rnd[:])
		u.tmp = filepath.Join(filepath.Dir(final), ".tmp-unpack-"+hex.EncodeToString(rnd[:]))
		if u.out, err = os.Create(u.tmp); err != nil {
			return err
		}
		u.hash = sha256.New()
	}
	if _, err := io.Copy(io.MultiWriter(u.out, u.hash), tr); err != nil {
		return &ArchiveError{Archive: archive, Err: fmt.Errorf("%w: reading %s: %v", ErrArchiveCorrupt, pt.Entry, err)}
	}
	if j < len(f.Parts)-1 {
		return nil // continued in the next archive
	}
	err = u.out.Close()
	u.out = nil
	if got := "sha256:" + hex.EncodeToString(u.hash.Sum(nil)); err == nil && got != f.Digest {
		err = &ArchiveError{Archive: archive, Err: fmt.Errorf("%w: %s hashes to %s, the manifest says %s", ErrArchiveCorrupt, f.Path, got, f.Digest)}
	}
	if err == nil {
		err = os.Rename(u.tmp, final)
	}
	if err != nil {
		os.Remove(u.tmp)
	}
	return err
}

// progressReader reports archive bytes read to the unpack's Progress.
type progressReader struct {
	r io.Reader
	u *unpacker
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 && p.u.progress != nil {
		p.u.done += int64(n)
		p.u.progress(p.u.done, p.u.total)
	}
	return n, err
}

// asyncHash is a sha256 fed from another goroutine: Write copies the bytes
// into a pooled buffer and queues them, so hashing overlaps the caller's
// own work.
type asyncHash struct {
	ch      chan []byte
	free    chan []byte
	done    chan struct{}
	result  []byte
	stopped bool
}

const asyncHashBuf = 256 << 10

func newAsyncHash() *asyncHash {
	a := &asyncHash{ch: make(chan []byte, 4), free: make(chan []byte, 6), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		h := sha256.New()
		for b := range a.ch {
			h.Write(b)
			select {
			case a.free <- b[:0]:
			default:
			}
		}
		a.result = h.Sum(nil)
	}()
	return a
}

func (a *asyncHash) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		var b []byte
		select {
		case b = <-a.free:
		default:
			b = make([]byte, 0, asyncHashBuf)
		}
		n := min(len(rest), cap(b))
		a.ch <- append(b, rest[:n]...)
		rest = rest[n:]
	}
	return len(p), nil
}

// sum waits for the queued bytes and returns the digest.
func (a *asyncHash) sum() []byte {
	a.stop()
	return a.result
}

func (a *asyncHash) stop() {
	if !a.stopped {
		a.stopped = true
		close(a.ch)
		<-a.done
	}
}
