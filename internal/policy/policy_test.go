package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPolicyNestedScope(t *testing.T) {
	for _, c := range []struct {
		sub, super string
		want       bool
	}{
		{"quay.io", "quay.io", true},
		{"quay.io/ns", "quay.io", true},
		{"quay.io:443", "quay.io", false},
		{"quay.io2", "quay.io", false},
		{"foo.example.com:443/bar/baz", "*.example.com", true},
		{"*.foo.example.com", "*.example.com", true},
		{"quay.io/bar.example.com", "*.example.com", false},
		{"example.com", "*.example.com", false},
	} {
		if got := nestedScope(c.sub, c.super); got != c.want {
			t.Errorf("nestedScope(%q, %q) = %v, want %v", c.sub, c.super, got, c.want)
		}
	}
}

func TestPolicyRefMatchingPrefix(t *testing.T) {
	for _, c := range []struct {
		ref, prefix string
		want        int
	}{
		{"example.com/app", "example.com", 11},
		{"example.com:5000/app", "example.com", 11}, // the runtime's own quirk
		{"example.com2/app", "example.com", -1},
		{"a.b.example.com/x", "*.example.com", 15},
		{"example.com/x", "*.example.com", -1},
		{"quay.io/a.example.com/x", "*.example.com", -1},
	} {
		if got := refMatchingPrefix(c.ref, c.prefix); got != c.want {
			t.Errorf("refMatchingPrefix(%q, %q) = %d, want %d", c.ref, c.prefix, got, c.want)
		}
	}
}

func TestPolicyValidateScope(t *testing.T) {
	for _, c := range []struct {
		s     string
		valid bool
	}{
		{"quay.io", true}, {"quay.io:5000/ns/repo", true}, {"*.example.com", true}, {"localhost", true},
		{"", false}, {"*.example.com/foo", false}, {"**.example.com", false}, {"example.*.com", false},
		{"*example.com", false}, {"*.example.com:5000", false}, {"quay.io/ns/img:latest", false},
		{"quay.io/ns@sha256:abc", false}, {"quay.io/NS", false}, {"quay.io/ns ", false},
		{strings.Repeat("a", 257), false},
	} {
		if got := ValidateScope(ScopeBlocked, c.s) == ""; got != c.valid {
			t.Errorf("ValidateScope(%q) valid = %v, want %v", c.s, got, c.valid)
		}
	}
}

func TestPolicyMergeIsIndependentOfObjectOrder(t *testing.T) {
	a := ImageDigestMirrorSet{}
	a.Spec.ImageDigestMirrors = []MirrorSet{{Source: "s.io", Mirrors: []string{"registry1.vendor2.com", "registry2.vendor2.com"}}}
	b := ImageDigestMirrorSet{}
	b.Spec.ImageDigestMirrors = []MirrorSet{{Source: "s.io", Mirrors: []string{"local-mirror2.example.com", "registry2.vendor2.com", "registry1.vendor2.com"}}}
	want := []string{"local-mirror2.example.com", "registry1.vendor2.com", "registry2.vendor2.com"}
	for _, order := range [][]ImageDigestMirrorSet{{a, b}, {b, a}} {
		got := mergeMirrorSets(mirrorEntries(&Inputs{IDMSs: order}), "digest")
		if len(got) != 1 || !cmp.Equal(got[0].mirrors, want) {
			t.Errorf("merged %v, want %v", got, want)
		}
	}
}

func TestPolicyParseProblemsNameFileDocumentAndField(t *testing.T) {
	src := `apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata: {name: ok}
spec: {imageDigestMirrors: [{source: a.io, mirrors: [b.io]}]}
---
# a comment-only line before the object
apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata: {name: typo}
spec: {imageDigestMirrors: [{source: a.io, mirror: [b.io]}]}
---
apiVersion: config.openshift.io/v2
kind: ImageTagMirrorSet
---
kind: Image
---
: not yaml : [
---
apiVersion: apps/v1
kind: Deployment
`
	var in Inputs
	ps := in.Parse("mirrors.yaml", []byte(src))
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	want := []string{
		`mirrors.yaml: document 1 (line 6): mirror: config.openshift.io/v1 ImageDigestMirrorSet: json: unknown field "mirror"`,
		`mirrors.yaml: document 2 (line 12): apiVersion: kind ImageTagMirrorSet has apiVersion "config.openshift.io/v2"; expected config.openshift.io/v1`,
		`mirrors.yaml: document 3 (line 15): missing apiVersion or kind`,
	}
	if len(got) < 4 {
		t.Fatalf("got %d problems, want at least 4: %q", len(got), got)
	}
	if diff := cmp.Diff(want, got[:3]); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(got[3], "mirrors.yaml: document 4 (line 17): not a YAML object") {
		t.Errorf("problem 4 = %q", got[3])
	}
	if len(in.IDMSs) != 1 || len(in.Ignored) != 1 {
		t.Errorf("kept %d IDMS and ignored %v; want 1 and the Deployment", len(in.IDMSs), in.Ignored)
	}
}

func TestPolicyRenderRefusesInvalidInputsWithEveryProblem(t *testing.T) {
	in := &Inputs{ReleaseImage: "not a reference", Image: &Image{}}
	in.Image.Spec.RegistrySources.BlockedRegistries = []string{"", "*.x.com/ns"}
	in.Image.Spec.RegistrySources.AllowedRegistries = []string{"a.io"}
	r, err := Render(in, StockBase())
	var ve *ValidationError
	if !errors.As(err, &ve) || r != nil {
		t.Fatalf("Render = %v, %v; want a ValidationError and no files", r, err)
	}
	if len(ve.Problems) != 4 {
		t.Errorf("got %d problems, want 4 (release, two scopes, allowed+blocked): %v", len(ve.Problems), ve)
	}
}

func TestPolicyBaseFilesAreKeptWhenNothingIsConfigured(t *testing.T) {
	base := Base{
		RegistriesConf: []byte("unqualified-search-registries = ['example.org']\nshort-name-mode = \"enforcing\"\n"),
		PolicyJSON:     []byte(`{"default":[{"type":"reject"}]}`),
	}
	r, err := Render(&Inputs{Image: &Image{}}, base)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Files[RegistriesConfPath]) != string(base.RegistriesConf) || string(r.Files[PolicyJSONPath]) != string(base.PolicyJSON) {
		t.Errorf("base files were rewritten: %q / %q", r.Files[RegistriesConfPath], r.Files[PolicyJSONPath])
	}
	if _, err := Render(&Inputs{}, Base{RegistriesConf: []byte("[registries.search]\nregistries = ['a']\n"), PolicyJSON: base.PolicyJSON}); err == nil || !strings.Contains(err.Error(), "v1") {
		t.Errorf("a v1 base registries.conf was accepted: %v", err)
	}
	if _, err := Render(&Inputs{}, Base{RegistriesConf: base.RegistriesConf, PolicyJSON: []byte(`{"default":[{"type":"reject"}],"extra":1}`)}); err == nil {
		t.Errorf("a policy.json with an unknown field was accepted")
	}
}

// V33: what a node does for each kind of registries.conf change.
func TestPolicyRolloutDrainOrReload(t *testing.T) {
	const src = "[[registry]]\n  location = \"a.io\"\n  [[registry.mirror]]\n    location = \"m1.io\"\n    pull-from-mirror = \"digest-only\"\n"
	for _, c := range []struct {
		name     string
		old, new string
		want     NodeAction
	}{
		{"add a digest mirror to a source", src, src + "  [[registry.mirror]]\n    location = \"m2.io\"\n    pull-from-mirror = \"digest-only\"\n", ActionReload},
		{"add a new source with digest mirrors", src, src + "[[registry]]\n  location = \"b.io\"\n  [[registry.mirror]]\n    location = \"m.io\"\n    pull-from-mirror = \"digest-only\"\n", ActionReload},
		{"add a tag mirror", src, src + "  [[registry.mirror]]\n    location = \"t.io\"\n    pull-from-mirror = \"tag-only\"\n", ActionDrain},
		{"remove a mirror", src, "[[registry]]\n  location = \"a.io\"\n", ActionDrain},
		{"remove a registry", src, "", ActionDrain},
		{"block (NeverContactSource)", src, strings.Replace(src, "location = \"a.io\"\n", "location = \"a.io\"\n  blocked = true\n", 1), ActionDrain},
		{"append a search registry", "unqualified-search-registries = ['a']\n", "unqualified-search-registries = ['a', 'b']\n", ActionReload},
		{"reorder search registries", "unqualified-search-registries = ['a', 'b']\n", "unqualified-search-registries = ['b', 'a']\n", ActionDrain},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := Summarize(map[string][]byte{RegistriesConfPath: []byte(c.old)}, map[string][]byte{RegistriesConfPath: []byte(c.new)})
			if s.Action != c.want {
				t.Errorf("action = %v, want %v\n%s", s.Action, c.want, s)
			}
		})
	}
	s := Summarize(map[string][]byte{PolicyJSONPath: []byte("{}")}, map[string][]byte{PolicyJSONPath: []byte("{ }"), SearchDropInPath: []byte("x")})
	if s.Changes[0].Action != ActionReload || s.Changes[1].Action != ActionReboot || s.Action != ActionReboot {
		t.Errorf("drop-in and policy.json actions: %s", s)
	}
}

func TestPolicyExplainImportDockerHubAliases(t *testing.T) {
	in := &Inputs{Image: &Image{}}
	in.Image.Spec.AllowedRegistriesForImport = []RegistryLocation{{DomainName: "docker.io"}}
	for _, ref := range []string{"busybox", "docker.io/library/busybox", "index.docker.io/library/busybox"} {
		v, err := ExplainImport(in, ref, ImportSecure)
		if err != nil || !v.Allowed {
			t.Errorf("%s: %+v %v; want admitted", ref, v, err)
		}
	}
	if v, _ := ExplainImport(in, "quay.io/x", ImportSecure); v.Allowed || !strings.Contains(v.Reason, `registry "quay.io" not allowed by whitelist: "docker.io:443"`) {
		t.Errorf("quay.io: %+v", v)
	}
}

func TestPolicyWildcardMatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{{"*.mydomain.com", "foo.mydomain.com", true}, {"*.mydomain.com", "mydomain.com", false}, {"reg?.io", "reg1.io", true}, {"*", "", true}, {"a*b*c", "aXXbYc", true}, {"a*b", "ac", false}} {
		if got := wildcardMatch(c.p, c.s); got != c.want {
			t.Errorf("wildcardMatch(%q, %q) = %v", c.p, c.s, got)
		}
	}
}
