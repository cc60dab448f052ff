package imageset

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzParseImageSetConfiguration: the parser never panics; every problem
// names the file and a line; what it accepts, written back out (as JSON,
// which is YAML), parses again to the same value.
func FuzzParseImageSetConfiguration(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		head + "mirror: {}\n",
		head + "mirror:\n  additionalImages:\n  - &a {name: quay.io/a/b:1}\n  - *a\n",
		head + "mirror:\n  platform: {channels: [{name: stable-4.16, minVersion: 4.16.1, maxVersion: 4.16.3}]}\n",
		head + "mirror:\n  operators:\n  - catalog: oci://x\n    packages: [{name: p, channels: [{name: c, minVersion: '1.0'}]}]\n",
		"a: &a [*a]\n",
		"kind: [\n",
		"---\n---\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("parse took over 10s on %q", data)) })
		defer watchdog.Stop()
		c, err := ParseImageSetConfiguration("fuzz.yaml", data)
		if err != nil {
			ps := Problems(err)
			if len(ps) == 0 {
				t.Fatalf("error without problems: %v", err)
			}
			for _, p := range ps {
				if p.File != "fuzz.yaml" || p.Line < 1 || p.Message == "" {
					t.Fatalf("problem without file, line or message: %#v", p)
				}
			}
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseImageSetConfiguration("again.yaml", out)
		if err != nil {
			t.Fatalf("accepted %q, but not its own rendering %s: %v", data, out, err)
		}
		if diff := cmp.Diff(c, again, cmpopts.IgnoreUnexported(ImageSetConfiguration{}), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +again):\n%s", diff)
		}
	})
}

// FuzzParseGraph: an update-graph answer (untrusted, from the network)
// never panics the parser or the selection; a selection is ascending and a
// shortest path follows edges from its start to its end.
func FuzzParseGraph(f *testing.F) {
	for _, g := range []*Graph{
		testGraph("amd64", []string{"4.16.2", "4.16.0", "4.16.1"}, "4.16.0>4.16.1", "4.16.1>4.16.2", "4.16.0>4.16.2"),
		testGraph("multi", []string{"4.16.0"}),
		{},
	} {
		b, err := json.Marshal(g)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "4.16.0", "4.16.2", true)
	}
	f.Add([]byte(`{"nodes":[{"version":"1.0.0","payload":"a/b@sha256:`+strings.Repeat("0", 64)+`"}],"edges":[[0,0]]}`), "", "", false)
	f.Fuzz(func(t *testing.T, data []byte, min, max string, shortest bool) {
		g, err := ParseGraph(data)
		if err != nil {
			return
		}
		sel, err := g.SelectReleases(ReleaseChannel{Name: "c", MinVersion: min, MaxVersion: max, ShortestPath: shortest}, "amd64")
		if err != nil {
			return
		}
		for i := 1; i < len(sel); i++ {
			if !g.version(sel[i-1]).LT(g.version(sel[i])) {
				t.Fatalf("selection not ascending: %v", sel)
			}
		}
		if len(g.Nodes) > 0 {
			from, to := g.sorted()[0], g.sorted()[len(g.Nodes)-1]
			if path := g.ShortestPath(from, to); path != nil {
				edge := map[[2]int]bool{}
				for _, e := range g.Edges {
					edge[e] = true
				}
				if path[0] != from || path[len(path)-1] != to {
					t.Fatalf("path %v does not run from %d to %d", path, from, to)
				}
				for i := 1; i < len(path); i++ {
					if !edge[[2]int{path[i-1], path[i]}] {
						t.Fatalf("path %v steps off the edges", path)
					}
				}
			}
		}
	})
}
