package mirror

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// streamMin is the size above which OpenArchives leaves a blob in the
// archives and streams it from there; smaller files (manifests, which are
// at most this size, configs, small layers) and
// every non-blob file are extracted.
const streamMin = 4 << 20

// archiveSection is a run of a blob's bytes inside one archive file.
type archiveSection struct {
	archive string // path of the tar file
	offset  int64
	size    int64
}

// OpenArchives opens a directory of archives for pushing without unpacking
// it: the layout's small files are extracted into metaDir (each verified
// against the archive manifest), and every larger blob is read straight
// from the archives when it is pushed, its bytes hashed on the way (the
// engine verifies what it did not hash itself), so the disconnected side
// needs no second copy of the image set on disk and reads each byte once.
//
// As with an unpack, every archive must be present with its size before
// anything is read. A large blob whose bytes were damaged in transit fails
// its image's push with a digest mismatch (the destination never accepts
// it); the other images are pushed, and a rerun with a good copy of the
// archive completes the set.
func OpenArchives(ctx context.Context, archiveDir, metaDir string, opts UnpackOptions) (*Layout, *UnpackStats, error) {
	set, err := checkArchives(archiveDir)
	if err != nil {
		return nil, nil, err
	}
	above := int64(streamMin)
	if opts.streamAboveForTests > 0 {
		above = opts.streamAboveForTests
	}
	if err := os.MkdirAll(metaDir, 0o755); err != nil {
		return nil, nil, err
	}
	type slot struct{ file, part int }
	byArchive := map[string][]slot{}
	for i, f := range set.Files {
		for j, pt := range f.Parts {
			byArchive[pt.Archive] = append(byArchive[pt.Archive], slot{i, j})
		}
	}
	var total, done int64
	for _, a := range set.Archives {
		total += a.Size
	}
	external := map[v1.Hash][]archiveSection{}
	st := &UnpackStats{}
	var verified []ArchivedFile
	// Parts of an extracted file may span archives: its writer stays open.
	var out *os.File
	var tmp string
	var h = sha256.New()
	defer func() {
		if out != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	for _, a := range set.Archives {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		path := filepath.Join(archiveDir, a.Name)
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, &ArchiveError{Archive: a.Name, Err: fmt.Errorf("%w: %v", ErrArchiveMissing, err)}
		}
		tr := tar.NewReader(f)
		for _, s := range byArchive[a.Name] {
			af := set.Files[s.file]
			pt := af.Parts[s.part]
			hdr, err := tr.Next()
			if err != nil {
				f.Close()
				return nil, nil, &ArchiveError{Archive: a.Name, Err: fmt.Errorf("%w: reading entry %s: %v", ErrArchiveCorrupt, pt.Entry, err)}
			}
			if hdr.Name != pt.Entry || hdr.Size != pt.Size || hdr.Typeflag != tar.TypeReg {
				f.Close()
				return nil, nil, &ArchiveError{Archive: a.Name, Err: fmt.Errorf("%w: entry %q (%d bytes) where the manifest says %q (%d bytes)", ErrArchiveCorrupt, hdr.Name, hdr.Size, pt.Entry, pt.Size)}
			}
			d, isBlob := blobDigestFromPath(af.Path)
			if isBlob && af.Size > above {
				// tar reads headers block by block, unbuffered: the
				// file offset is where this entry's bytes start.
				off, err := f.Seek(0, io.SeekCurrent)
				if err != nil {
					f.Close()
					return nil, nil, err
				}
				hh, _ := v1.NewHash(d)
				external[hh] = append(external[hh], archiveSection{archive: path, offset: off, size: pt.Size})
				continue // Next seeks past the bytes
			}
			final := filepath.Join(metaDir, filepath.FromSlash(af.Path))
			if s.part == 0 {
				if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
					f.Close()
					return nil, nil, err
				}
				var rnd [6]byte
				_, _ = rand.Read(rnd[:])
				tmp = filepath.Join(filepath.Dir(final), ".tmp-unpack-"+hex.EncodeToString(rnd[:]))
				if out, err = os.Create(tmp); err != nil {
					f.Close()
					return nil, nil, err
				}
				h.Reset()
			}
			if _, err := io.Copy(io.MultiWriter(out, h), tr); err != nil {
				f.Close()
				return nil, nil, &ArchiveError{Archive: a.Name, Err: fmt.Errorf("%w: reading %s: %v", ErrArchiveCorrupt, pt.Entry, err)}
			}
			if s.part < len(af.Parts)-1 {
				continue
			}
			err = out.Close()
			out = nil
			if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); err == nil && got != af.Digest {
				err = &ArchiveError{Archive: a.Name, Err: fmt.Errorf("%w: %s hashes to %s, the manifest says %s", ErrArchiveCorrupt, af.Path, got, af.Digest)}
			}
			if err == nil {
				err = os.Rename(tmp, final)
			}
			if err != nil {
				os.Remove(tmp)
				f.Close()
				return nil, nil, err
			}
			verified = append(verified, af)
			st.Bytes += af.Size
		}
		f.Close()
		done += a.Size
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
		st.Archives++
	}
	st.Files = len(set.Files)
	l, err := OpenLayout(metaDir, false)
	if err != nil {
		return nil, nil, err
	}
	for _, af := range verified {
		if d, ok := blobDigestFromPath(af.Path); ok {
			if hh, err := v1.NewHash(d); err == nil {
				l.markVerified(hh, af.Size)
			}
		}
	}
	l.mu.Lock()
	l.external = external
	l.mu.Unlock()
	return l, st, nil
}

// sectionsReader reads a blob's archive sections in order.
type sectionsReader struct {
	secs []archiveSection
	f    *os.File
	r    io.Reader
}

func (s *sectionsReader) Read(p []byte) (int, error) {
	for {
		if s.r == nil {
			if len(s.secs) == 0 {
				return 0, io.EOF
			}
			f, err := os.Open(s.secs[0].archive)
			if err != nil {
				return 0, err
			}
			s.f, s.r = f, io.NewSectionReader(f, s.secs[0].offset, s.secs[0].size)
			s.secs = s.secs[1:]
		}
		n, err := s.r.Read(p)
		if err == io.EOF {
			s.f.Close()
			s.f, s.r = nil, nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (s *sectionsReader) Close() error {
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}
