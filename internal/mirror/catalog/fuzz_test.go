package catalog

import (
	"bytes"
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzParseStream feeds arbitrary files to the FBC parser and the model
// builder: they may refuse them, never panic, and what they accept
// renders and reads back to the same files.
func FuzzParseStream(f *testing.F) {
	for _, b := range fixtureFiles() {
		f.Add(b)
	}
	f.Add([]byte(`{"schema":"olm.package","name":"a","defaultChannel":"s"}{"schema":"olm.channel","package":"a","name":"s","entries":[{"name":"a.v1"}]}{"schema":"olm.bundle","package":"a","name":"a.v1","image":"x","properties":[{"type":"olm.package","value":{"packageName":"a","version":"1.0.0"}}]}`))
	f.Add([]byte("schema: olm.package\nname: a\n---\n---\nschema: olm.bundle\npackage: a\nname: b\nproperties: [{type: olm.package.required, value: {packageName: a, versionRange: '>=1 <2'}}]\n"))
	f.Add([]byte("\xef\xbb\xbf{\"schema\":\"x\"}"))
	f.Add([]byte("- 1\n- 2\n"))
	f.Add([]byte(`{"schema":1}`))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		metas, err := ParseStream("fuzz.json", bytes.NewReader(data))
		if err != nil {
			return
		}
		c, err := Build(metas)
		if err != nil {
			return
		}
		files := c.Files()
		again, err := LoadFiles(files)
		if err != nil {
			t.Fatalf("the parser's own output does not load: %v", err)
		}
		for p, b := range again.Files() {
			if !bytes.Equal(b, files[p]) {
				t.Fatalf("%s changes when read back:\n%s\n%s", p, files[p], b)
			}
		}
		if _, err := c.Apply(Filter{Catalog: "fuzz"}); err != nil {
			return
		}
	})
}

// FuzzExtract feeds arbitrary layer bytes (any compression) to the layer
// walker: it may refuse them, never panic.
func FuzzExtract(f *testing.F) {
	f.Add(buildTestLayer(f, "none", reg("a.json", `{"schema":"olm.package","name":"a"}`), reg(".wh.b", ""), symlink("c", "a.json")))
	f.Add(buildTestLayer(f, "gzip", dirEntry(""), reg(".wh..wh..opq", ""), hardlink("d", "configs/a.json")))
	f.Add(buildTestLayer(f, "zstd", reg("/configs", "")))
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := v1.Descriptor{Digest: sha256Hash(data), Size: int64(len(data))}
		files, err := extract(context.Background(), blobSource{d.Digest: data}, "r", []v1.Descriptor{d}, "/configs")
		if err != nil {
			return
		}
		for p := range files {
			if strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") || strings.Contains(p, "/../") {
				t.Fatalf("extracted path %q escapes the configs directory", p)
			}
		}
	})
}
