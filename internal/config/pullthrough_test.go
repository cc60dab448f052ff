package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePullThrough(t *testing.T) {
	dir := t.TempDir()
	auth := filepath.Join(dir, "pull-secret.json")
	if err := os.WriteFile(auth, []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      string
		wantErr []string
		check   func(t *testing.T, p *PullThrough)
	}{
		{name: "the issue's example", in: `pullThrough:
  upstreams:
  - prefix: quay.io
    url: https://quay.io
    authFile: ` + auth + `
    tagTTL: 5m
    timeout: 3s
  - prefix: docker.io
    url: https://registry-1.docker.io
  maxSize: 200GiB
  maxUnusedAge: 720h
`, check: func(t *testing.T, p *PullThrough) {
			if len(p.Upstreams) != 2 || p.MaxSize != 200<<30 || p.MaxUnusedAge.D() != 720*time.Hour {
				t.Fatalf("pullThrough = %+v", p)
			}
			q, d := p.Upstreams[0], p.Upstreams[1]
			if q.Prefix != "quay.io" || q.URL != "https://quay.io" || q.AuthFile != auth || q.TagTTL.D() != 5*time.Minute || q.Timeout.D() != 3*time.Second {
				t.Fatalf("quay upstream = %+v", q)
			}
			if d.TagTTL.D() != DefaultTagTTL || d.Timeout.D() != DefaultUpstreamTimeout {
				t.Fatalf("defaults not applied: %+v", d)
			}
		}},
		{name: "sizes in decimal units and bytes", in: "pullThrough:\n  upstreams: [{prefix: a.io, url: 'https://a.io'}]\n  maxSize: 1.5GB\n", check: func(t *testing.T, p *PullThrough) {
			if p.MaxSize != 1500000000 {
				t.Fatalf("maxSize = %d", p.MaxSize)
			}
		}},
		{name: "unknown key names its line", in: "pullThrough:\n  upstreams:\n  - prefix: a.io\n    url: https://a.io\n    ttl: 5m\n", wantErr: []string{"line 5: field ttl not found in pullThrough.upstreams"}},
		{name: "bad duration names its line", in: "pullThrough:\n  upstreams:\n  - prefix: a.io\n    url: https://a.io\n    tagTTL: soon\n", wantErr: []string{`line 5: pullThrough.upstreams[0].tagTTL: "soon" is not a duration`}},
		{name: "bad size", in: "pullThrough:\n  upstreams: [{prefix: a.io, url: 'https://a.io'}]\n  maxSize: 10 parsecs\n", wantErr: []string{`unit "parsecs"`}},
		{name: "every problem at once", in: `pullThrough:
  upstreams:
  - prefix: Quay.io:443
    url: quay.io
    authFile: ` + filepath.Join(dir, "missing.json") + `
  - prefix: local.test
    url: http://127.0.0.1:5000
  - prefix: local.test
    url: https://127.0.0.1:5001/v2/
    timeout: -1s
`, wantErr: []string{
			`upstreams[0].prefix: "Quay.io:443" is not a repository name prefix`,
			`upstreams[0].url: "quay.io" is not a registry base URL`,
			`upstreams[0].authFile:`,
			`upstreams[1].url: "http://127.0.0.1:5000" is plain HTTP; set insecure: true`,
			`upstreams[2].prefix: "local.test" is already the prefix of upstreams[1]`,
			`upstreams[2].url: "https://127.0.0.1:5001/v2/" is not a registry base URL`,
			`upstreams[2].timeout: must not be negative`,
		}},
		{name: "no upstreams", in: "pullThrough: {maxSize: 1GiB}\n", wantErr: []string{"pullThrough.upstreams: at least one upstream is required"}},
		{name: "plain http when insecure", in: "pullThrough:\n  upstreams: [{prefix: lab/cache, url: 'http://10.0.0.1:5000', insecure: true}]\n", check: func(t *testing.T, p *PullThrough) {
			if !p.Upstreams[0].Insecure || p.Upstreams[0].Prefix != "lab/cache" {
				t.Fatalf("upstream = %+v", p.Upstreams[0])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.in))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c.PullThrough)
		})
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"200GiB", "1.5GB", "1048576", "", "10 parsecs", "9999999999TiB", "0.5k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseByteSize(s)
		if err == nil && v < 0 {
			t.Fatalf("ParseByteSize(%q) = %d", s, v)
		}
	})
}

func TestParseImports(t *testing.T) {
	c, err := Parse(strings.NewReader("imports:\n- {from: 'quay.io/org/app:v1', to: team/app}\n- {from: 'registry.corp:5000/x/y', to: y, tags: 'v1\\..*', importMode: PreserveOriginal, schedule: 1h}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := c.Imports[0], c.Imports[1]; a.Schedule.D() != DefaultImportSchedule || a.ImportMode != "Legacy" || b.Schedule.D() != time.Hour || b.ImportMode != "PreserveOriginal" {
		t.Fatalf("imports = %+v", c.Imports)
	}
	_, err = Parse(strings.NewReader("imports:\n- {from: app, to: 'Bad Name', tags: '(', importMode: Newest}\n"))
	for _, want := range []string{"imports[0].from", "imports[0].to", "imports[0].tags", `imports[0].importMode: "Newest"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
