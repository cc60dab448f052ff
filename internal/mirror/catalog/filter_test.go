package catalog

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-registry/berth/internal/golden"
)

// filterCase is one ISC mirror.operators[] entry applied to the fixture.
type filterCase struct {
	name   string
	filter Filter
	// wantErr are substrings of the error; empty means success.
	wantErr []string
}

var filterCases = []filterCase{
	{name: "heads-of-everything", filter: Filter{}},
	{name: "full-catalog", filter: Filter{Full: true}},
	{name: "one-package-heads", filter: Filter{Packages: []PackageFilter{{Name: "foo"}}}},
	{name: "channel-min-version", filter: Filter{Packages: []PackageFilter{{Name: "foo", Channels: []ChannelFilter{{Name: "stable", MinVersion: "1.1.0"}}}}}},
	{name: "dependency-fills-the-chain", filter: Filter{Packages: []PackageFilter{{Name: "etcd"}, {Name: "foo", Channels: []ChannelFilter{{Name: "stable", MinVersion: "1.1.0"}}}}}},
	{name: "package-range", filter: Filter{Packages: []PackageFilter{{Name: "etcd", MinVersion: "0.9.2", MaxVersion: "0.9.4"}}}},
	{name: "full-package-gvk-dependency", filter: Filter{Full: true, Packages: []PackageFilter{{Name: "bar"}}}},
	{name: "skip-dependencies", filter: Filter{SkipDependencies: true, Packages: []PackageFilter{{Name: "foo"}, {Name: "bar"}}}},
	{name: "default-channel-override", filter: Filter{Packages: []PackageFilter{{Name: "baz", DefaultChannel: "candidate", Channels: []ChannelFilter{{Name: "candidate"}}}}}},
	{name: "yaml-package-with-deprecations", filter: Filter{Packages: []PackageFilter{{Name: "baz", MinVersion: "0.1.0"}, {Name: "qux"}}}},

	{name: "unknown-package", filter: Filter{Packages: []PackageFilter{{Name: "nope"}}},
		wantErr: []string{`packages[0]: package "nope" is not in the catalog`, "bar, baz, etcd, foo, qux"}},
	{name: "unknown-channel", filter: Filter{Packages: []PackageFilter{{Name: "foo", Channels: []ChannelFilter{{Name: "beta"}}}}},
		wantErr: []string{`package "foo" has no channel "beta" (it has fast, stable)`}},
	{name: "impossible-range", filter: Filter{Packages: []PackageFilter{{Name: "foo", MinVersion: "9.0.0"}}},
		wantErr: []string{`package "foo" has no bundle in the range >=9.0.0`, "1.0.0, 1.1.0"}},
	{name: "impossible-channel-range", filter: Filter{Packages: []PackageFilter{{Name: "etcd", Channels: []ChannelFilter{{Name: "alpha", MinVersion: "0.9.7"}}}}},
		wantErr: []string{`packages[0].channels[0]: package "etcd" channel "alpha" has no bundle in the range >=0.9.7`}},
	{name: "two-heads", filter: Filter{Packages: []PackageFilter{{Name: "bar", MaxVersion: "2.9.9"}}},
		wantErr: []string{`package "bar" channel "stable": the filter leaves 2 heads (bar.v2.0.0, bar.v2.1.0)`}},
	{name: "default-channel-filtered-out", filter: Filter{Packages: []PackageFilter{{Name: "baz", Channels: []ChannelFilter{{Name: "candidate"}}}}},
		wantErr: []string{`package "baz": its default channel "stable" is filtered out; set packages[0].defaultChannel`}},
	{name: "bad-override", filter: Filter{Packages: []PackageFilter{{Name: "baz", DefaultChannel: "beta"}}},
		wantErr: []string{`packages[0].defaultChannel: package "baz": channel "beta" is not among the kept channels (candidate, stable)`}},
	{name: "invalid-filter", filter: Filter{Full: true, Packages: []PackageFilter{{Name: "foo", MinVersion: "x", Channels: []ChannelFilter{{Name: "stable", MaxVersion: "2.0.0"}}}}},
		wantErr: []string{`packages[0].minVersion "x" is not a semantic version`, "full: true cannot be combined", "packages[0].channels[0]: a version range on both"}},
}

func fixtureConfig(t *testing.T) *Config {
	t.Helper()
	c, err := LoadFiles(fixtureFiles())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFilter(t *testing.T) {
	c := fixtureConfig(t)
	for _, tc := range filterCases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.filter
			f.Catalog = "example.com/catalog:v1"
			res, err := c.Apply(f)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want an error with %q, got none", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q\ndoes not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "filter", tc.name+".golden"), renderResult(res))
			// The filtered catalog reads back as itself.
			again, err := LoadFiles(res.Config.Files())
			if err != nil {
				t.Fatalf("filtered catalog does not load: %v", err)
			}
			if diff := cmp.Diff(res.Config.Files(), again.Files()); diff != "" {
				t.Errorf("filtered catalog changes when read back (-want +got):\n%s", diff)
			}
		})
	}
}

// renderResult is the reviewable text of a filter result.
func renderResult(res *Result) []byte {
	var b strings.Builder
	b.WriteString("# decisions\n")
	for _, d := range res.Decisions {
		b.WriteString(d.String() + "\n")
	}
	b.WriteString("# images\n")
	for _, im := range res.Images {
		fmt.Fprintf(&b, "%s %s (%s)\n", im.Kind, im.Ref, im.Bundle)
	}
	files := res.Config.Files()
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "# %s\n%s", n, files[n])
	}
	return []byte(b.String())
}

var goldenSeen = map[string]bool{}

func checkGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	goldenSeen[filepath.ToSlash(file)] = true
	golden.Check(t, file, got)
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		f                 Filter
		srcRepo, srcRef   string
		wantRepo, wantTag string
	}{
		{Filter{}, "redhat/redhat-operator-index", "v4.18", "redhat/redhat-operator-index", "v4.18"},
		{Filter{TargetCatalog: "/mine/ops/", TargetTag: "v1"}, "redhat/index", "v4.18", "mine/ops", "v1"},
		{Filter{}, "redhat/index", "sha256:" + strings.Repeat("a", 64), "redhat/index", ""},
	} {
		if repo, tag := tc.f.Target(tc.srcRepo, tc.srcRef); repo != tc.wantRepo || tag != tc.wantTag {
			t.Errorf("%+v.Target(%q, %q) = %q, %q; want %q, %q", tc.f, tc.srcRepo, tc.srcRef, repo, tag, tc.wantRepo, tc.wantTag)
		}
	}
}
