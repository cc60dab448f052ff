package catalog

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseStream(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // Raw of each object
		wantErr  string
	}{
		{name: "json stream", in: " {\"schema\":\"a\", \"name\": \"x\"}\n{\"schema\":\"b\"}",
			want: []string{`{"schema":"a","name":"x"}`, `{"schema":"b"}`}},
		{name: "yaml documents, read as opm reads them", in: "---\nschema: a\nflag: yes\nversion: 1.10\nrange: '>=1.0.0 <2.0.0'\n---\n---\nschema: b\n",
			want: []string{`{"flag":true,"range":">=1.0.0 <2.0.0","schema":"a","version":1.1}`, `{"schema":"b"}`}},
		{name: "byte order mark", in: "\xef\xbb\xbf{\"schema\":\"a\"}", want: []string{`{"schema":"a"}`}},
		{name: "empty", in: " \n"},
		{name: "no schema", in: `{"name":"x"}{"schema":"a"}`, wantErr: `f.json#0: object has no "schema"`},
		{name: "bad json", in: `{"schema":"a"} {"schema":`, wantErr: "f.json#1:"},
		{name: "not an object", in: "- 1\n- 2\n", wantErr: "f.json#0: not a JSON object"},
		{name: "schema not a string", in: `{"schema":1}`, wantErr: `field "schema": want a string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := ParseStream("f.json", strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, string(m.Raw))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{}
	for p, b := range fixtureFiles() {
		fsys["configs/"+p] = &fstest.MapFile{Data: b}
	}
	fsys["configs/.indexignore"] = &fstest.MapFile{Data: []byte("# not catalog content\n*.md\nextra/\n")}
	fsys["configs/README.md"] = &fstest.MapFile{Data: []byte("# not FBC")}
	fsys["configs/extra/notes.txt"] = &fstest.MapFile{Data: []byte("not FBC either")}
	sub, _ := fstestSub(fsys, "configs")
	c, err := Load(sub)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Packages) != 5 || len(c.Packages["foo"].Bundles) != 5 || c.Packages["baz"].DefaultChannel != "stable" {
		t.Errorf("loaded %d packages", len(c.Packages))
	}
	if _, err := LoadFiles(map[string][]byte{}); !errors.Is(err, ErrNoConfigs) {
		t.Errorf("no files: %v", err)
	}
	bad := map[string][]byte{"a.json": []byte(`{"schema":"olm.package","name":"a","defaultChannel":"s"}
{"schema":"olm.channel","package":"a","name":"s","entries":[{"name":"a.v1"},{"name":"a.v2","replaces":"a.v1"}]}
{"schema":"olm.bundle","package":"a","name":"a.v1","properties":[]}
{"schema":"olm.bundle","package":"b","name":"b.v1"}
`)}
	_, err = LoadFiles(bad)
	for _, w := range []string{
		`a.json#2: bundle "a.v1": want exactly one olm.package property`,
		`a.json#3: bundle "b.v1" belongs to unknown package "b"`,
		`a.json#1: package "a" channel "s": entry "a.v2" has no olm.bundle`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v\nwant it to say %q", err, w)
		}
	}
}

func fstestSub(fsys fstest.MapFS, dir string) (fstest.MapFS, error) {
	out := fstest.MapFS{}
	for p, f := range fsys {
		if strings.HasPrefix(p, dir+"/") {
			out[strings.TrimPrefix(p, dir+"/")] = f
		}
	}
	return out, nil
}
