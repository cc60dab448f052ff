package catalog

import (
	"archive/tar"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// tree is a small in-memory directory tree: what the new layer writes and
// what opm's cache digest is computed over.
type tree struct {
	files map[string][]byte // slash paths relative to the root
}

func newTree(files map[string][]byte) *tree {
	t := &tree{files: map[string][]byte{}}
	for p, b := range files {
		t.files[path.Clean(p)] = b
	}
	return t
}

// dirs returns every directory below the root that holds a file.
func (t *tree) dirs() map[string]bool {
	out := map[string]bool{}
	for p := range t.files {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			out[d] = true
		}
	}
	return out
}

// Modes of everything the rebuild writes: readable by any user, since
// catalog pods run as an arbitrary uid.
const (
	dirMode  = fs.ModeDir | 0o755
	fileMode = 0o644
)

// walk visits the root (".") and everything below it in fs.WalkDir order:
// depth first, each directory's entries sorted by name.
func (t *tree) walk(fn func(p string, isDir bool, data []byte) error) error {
	dirs := t.dirs()
	children := map[string][]string{}
	for p := range t.files {
		children[path.Dir(p)] = append(children[path.Dir(p)], path.Base(p))
	}
	for d := range dirs {
		children[path.Dir(d)] = append(children[path.Dir(d)], path.Base(d))
	}
	var visit func(p string, isDir bool) error
	visit = func(p string, isDir bool) error {
		if !isDir {
			return fn(p, false, t.files[p])
		}
		if err := fn(p, true, nil); err != nil {
			return err
		}
		names := children[p]
		sort.Strings(names)
		for _, n := range names {
			child := n
			if p != "." {
				child = p + "/" + n
			}
			if err := visit(child, dirs[child]); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(".", true)
}

// fileInfo is what tar.FileInfoHeader reads.
type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) Mode() fs.FileMode  { return f.mode }
func (f fileInfo) ModTime() time.Time { return time.Time{} }
func (f fileInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fileInfo) Sys() any           { return nil }

// opmTar writes the tree as opm's cache package serialises a directory to
// hash it: every entry from the root down, headers from the file info with
// owner and times cleared, named by their path relative to the root.
func (t *tree) opmTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	err := t.walk(func(p string, isDir bool, data []byte) error {
		fi := fileInfo{name: path.Base(p), mode: fileMode, size: int64(len(data))}
		if isDir {
			fi.mode, fi.size = dirMode, 0
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		h.AccessTime, h.ChangeTime, h.ModTime = time.Time{}, time.Time{}, time.Time{}
		h.Name = p
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !isDir {
			_, err = tw.Write(data)
		}
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// layerEpoch is the modification time of everything the rebuild writes,
// so the same input always gives the same layer digest.
var layerEpoch = time.Unix(0, 0).UTC()

// writeLayer writes the tree under prefix (a slash path without leading
// slash) into tw: an opaque directory first, so nothing of the lower
// layers' copy of it shows through, then its content in walk order.
func (t *tree) writeLayer(tw *tar.Writer, prefix string) error {
	prefix = strings.Trim(path.Clean("/"+prefix), "/")
	hdr := func(name string, typ byte, mode int64, size int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, ModTime: layerEpoch, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(prefix+"/", tar.TypeDir, 0o755, 0)); err != nil {
		return err
	}
	if err := tw.WriteHeader(hdr(prefix+"/.wh..wh..opq", tar.TypeReg, 0o644, 0)); err != nil {
		return err
	}
	return t.walk(func(p string, isDir bool, data []byte) error {
		if p == "." {
			return nil
		}
		if isDir {
			return tw.WriteHeader(hdr(prefix+"/"+p+"/", tar.TypeDir, 0o755, 0))
		}
		if err := tw.WriteHeader(hdr(prefix+"/"+p, tar.TypeReg, fileMode, int64(len(data)))); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	})
}
