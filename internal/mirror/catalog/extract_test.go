package catalog

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"

	"github.com/berth-registry/berth/internal/mirror"
)

// blobSource is a Source over blobs in memory; only OpenBlob is used.
type blobSource map[v1.Hash][]byte

var _ mirror.Source = blobSource(nil)

func (b blobSource) Name() string { return "mem" }
func (b blobSource) GetManifest(context.Context, string, string) (*mirror.Manifest, error) {
	return nil, errors.New("no manifests here")
}
func (b blobSource) OpenBlob(_ context.Context, _ string, d v1.Descriptor) (io.ReadCloser, error) {
	data, ok := b[d.Digest]
	if !ok {
		return nil, errors.New("no such blob")
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}
func (b blobSource) Referrers(context.Context, string, v1.Hash) ([]mirror.Referrer, error) {
	return nil, nil
}

// tarEntry is one entry of a test layer; a name without a leading "/" is
// below /configs.
type tarEntry struct {
	name string
	typ  byte
	data string
	link string
}

func reg(name, data string) tarEntry    { return tarEntry{name: name, typ: tar.TypeReg, data: data} }
func dirEntry(name string) tarEntry     { return tarEntry{name: name, typ: tar.TypeDir} }
func symlink(name, to string) tarEntry  { return tarEntry{name: name, typ: tar.TypeSymlink, link: to} }
func hardlink(name, to string) tarEntry { return tarEntry{name: name, typ: tar.TypeLink, link: to} }

func buildTestLayer(t testing.TB, compression string, entries ...tarEntry) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		name := e.name
		if !strings.HasPrefix(name, "/") {
			name = "configs/" + name
		}
		name = strings.TrimPrefix(name, "/")
		h := &tar.Header{Name: name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.data)), Linkname: e.link}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.data))
		}
	}
	tw.Close()
	switch compression {
	case "gzip":
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(raw.Bytes())
		zw.Close()
		return b.Bytes()
	case "zstd":
		var b bytes.Buffer
		zw, _ := zstd.NewWriter(&b)
		zw.Write(raw.Bytes())
		zw.Close()
		return b.Bytes()
	}
	return raw.Bytes()
}

func TestExtract(t *testing.T) {
	type layer struct {
		compression string
		entries     []tarEntry
	}
	cases := []struct {
		name    string
		layers  []layer
		want    map[string]string
		wantErr string
	}{
		{name: "whiteouts of a file and a directory", layers: []layer{
			{"gzip", []tarEntry{reg("a.json", "A"), reg("b/x.json", "X"), reg("old/y.json", "Y"), reg("/etc/other", "not configs")}},
			{"zstd", []tarEntry{reg(".wh.old", ""), reg("b/.wh.x.json", ""), reg("b/z.json", "Z")}},
		}, want: map[string]string{"a.json": "A", "b/z.json": "Z"}},
		{name: "opaque directory hides lower layers only", layers: []layer{
			{"gzip", []tarEntry{reg("a.json", "A"), reg("b/x.json", "X")}},
			{"none", []tarEntry{reg("c.json", "C"), dirEntry(""), reg(".wh..wh..opq", "")}},
		}, want: map[string]string{"c.json": "C"}},
		{name: "the configs directory whited out and recreated", layers: []layer{
			{"gzip", []tarEntry{reg("a.json", "A")}},
			{"gzip", []tarEntry{reg("/.wh.configs", ""), reg("n.json", "N")}},
		}, want: map[string]string{"n.json": "N"}},
		{name: "a file replaced by a directory", layers: []layer{
			{"gzip", []tarEntry{reg("a", "file")}},
			{"gzip", []tarEntry{dirEntry("a/"), reg("a/x.json", "X")}},
		}, want: map[string]string{"a/x.json": "X"}},
		{name: "links inside the configs", layers: []layer{
			{"gzip", []tarEntry{reg("a/catalog.json", "A")}},
			{"zstd", []tarEntry{symlink("rel.json", "a/catalog.json"), symlink("abs.json", "/configs/a/catalog.json"), hardlink("hard.json", "configs/a/catalog.json")}},
		}, want: map[string]string{"a/catalog.json": "A", "rel.json": "A", "abs.json": "A", "hard.json": "A"}},
		{name: "a symlink out of the configs", layers: []layer{
			{"gzip", []tarEntry{symlink("passwd.json", "../etc/passwd")}},
		}, wantErr: "does not resolve to a file in /configs"},
		{name: "a symlinked configs directory", layers: []layer{
			{"gzip", []tarEntry{symlink("/configs", "/elsewhere")}},
		}, wantErr: "is a symbolic link"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := blobSource{}
			var descs []v1.Descriptor
			for _, l := range tc.layers {
				b := buildTestLayer(t, l.compression, l.entries...)
				d := v1.Descriptor{Digest: sha256Hash(b), Size: int64(len(b))}
				src[d.Digest] = b
				descs = append(descs, d)
			}
			got, err := extract(context.Background(), src, "r", descs, "/configs")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gotS := map[string]string{}
			for p, b := range got {
				gotS[p] = string(b)
			}
			if diff := cmp.Diff(tc.want, gotS); diff != "" {
				t.Errorf("configs (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("a corrupt layer", func(t *testing.T) {
		b := buildTestLayer(t, "gzip", reg("a.json", "A"))
		d := v1.Descriptor{Digest: sha256Hash([]byte("something else")), Size: int64(len(b))}
		if _, err := extract(context.Background(), blobSource{d.Digest: b}, "r", []v1.Descriptor{d}, "/configs"); err == nil || !strings.Contains(err.Error(), "hashes to") {
			t.Fatalf("a layer whose digest does not match: %v", err)
		}
	})
}

func TestServeCacheDir(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"/bin/opm", "serve", "/configs", "--cache-dir=/tmp/cache"}, "/tmp/cache"},
		{[]string{"/bin/opm", "serve", "/configs", "--cache-dir", "tmp/c/"}, "/tmp/c"},
		{[]string{"/bin/opm", "serve", "/configs"}, ""},
		{[]string{"/bin/sh", "-c", "--cache-dir=/x"}, ""},
	} {
		if got := serveCacheDir(tc.args); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
	}
}
