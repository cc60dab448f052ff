package imageset

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-registry/berth/internal/mirror"
)

var planGoldenCases = []struct {
	name, isc, target string
	json, delete      bool
}{
	{name: "plan/mirror-to-mirror", isc: "testdata/plan-isc.yaml", target: "registry.example.com:5000/mirror", json: true},
	{name: "plan/to-directory", isc: "testdata/plan-isc.yaml", target: ""},
	{name: "plan/multi-and-release", isc: "testdata/plan-multi.yaml", target: "docker://mirror.example.com/"},
	{name: "plan/delete", isc: "testdata/delete-isc.yaml", target: "registry.example.com:5000/mirror", delete: true},
}

func planGoldenNames() []string {
	var out []string
	for _, c := range planGoldenCases {
		out = append(out, c.name+".dry-run")
		if c.json {
			out = append(out, c.name+".json")
		}
	}
	return out
}

func readISC(t *testing.T, path string) *ImageSetConfiguration {
	t.Helper()
	c, err := ReadImageSetConfiguration(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPlanGolden: the whole plan of an ISC against a loopback update
// graph, as the dry run prints it, for each destination shape.
func TestPlanGolden(t *testing.T) {
	s := newGraphServer(t)
	plan := func(t *testing.T, isc, target string, del bool) (*Plan, error) {
		if del {
			d, err := ReadDeleteImageSetConfiguration(isc)
			if err != nil {
				t.Fatal(err)
			}
			return NewDeletePlan(context.Background(), d, s.client(), PlanOptions{Target: target})
		}
		return NewPlan(context.Background(), readISC(t, isc), s.client(), PlanOptions{Target: target})
	}
	for _, tc := range planGoldenCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := plan(t, tc.isc, tc.target, tc.delete)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := p.WriteDryRun(&out); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".dry-run", out.Bytes())
			// The same inputs print the same plan.
			p2, err := plan(t, tc.isc, tc.target, tc.delete)
			if err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			if err := p2.WriteDryRun(&again); err != nil {
				t.Fatal(err)
			}
			if again.String() != out.String() {
				t.Errorf("a second plan printed differently:\n%s", again.String())
			}
			if tc.json {
				j, err := json.MarshalIndent(p, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				golden(t, tc.name+".json", append(j, '\n'))
			}
		})
	}
}

// TestPlanNaming checks the destinations oc-mirror v2 would use, one kind
// at a time, so a golden refresh cannot hide a naming change.
func TestPlanNaming(t *testing.T) {
	s := newGraphServer(t)
	p, err := NewPlan(context.Background(), readISC(t, "testdata/plan-isc.yaml"), s.client(), PlanOptions{Target: "reg.example.com/mirror"})
	if err != nil {
		t.Fatal(err)
	}
	var releases []string
	for _, r := range p.Releases {
		releases = append(releases, r.Version+" "+strings.Join(r.Channels, ",")+" "+r.Source+" -> "+r.Destination+" + "+r.Components)
	}
	wantReleases := []string{
		"4.16.1 stable-4.16 " + payload("4.16.1", "amd64") + " -> reg.example.com/mirror/openshift/release-images:4.16.1-x86_64 + reg.example.com/mirror/openshift/release",
		"4.16.3 stable-4.16 " + payload("4.16.3", "amd64") + " -> reg.example.com/mirror/openshift/release-images:4.16.3-x86_64 + reg.example.com/mirror/openshift/release",
		"4.16.4 fast-4.16,stable-4.16 " + payload("4.16.4", "amd64") + " -> reg.example.com/mirror/openshift/release-images:4.16.4-x86_64 + reg.example.com/mirror/openshift/release",
		"4.16.5 fast-4.16 " + payload("4.16.5", "amd64") + " -> reg.example.com/mirror/openshift/release-images:4.16.5-x86_64 + reg.example.com/mirror/openshift/release",
		"4.16.6 fast-4.16 " + payload("4.16.6", "amd64") + " -> reg.example.com/mirror/openshift/release-images:4.16.6-x86_64 + reg.example.com/mirror/openshift/release",
	}
	if diff := cmp.Diff(wantReleases, releases); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
	var images []string
	for _, im := range p.Images {
		images = append(images, im.Source+" -> "+im.Destination)
	}
	wantImages := []string{
		"registry.example.com/team/tool:1.2 -> reg.example.com/mirror/team/tool:1.2",
		"docker.io/library/nginx@sha256:0000000000000000000000000000000000000000000000000000000000000001 -> reg.example.com/mirror/library/nginx:sha256-0000000000000000000000000000000000000000000000000000000000000001",
		"quay.io/org/app@sha256:0000000000000000000000000000000000000000000000000000000000000002 -> reg.example.com/mirror/apps/app:v2",
		"docker.io/library/nginx:latest -> reg.example.com/mirror/library/nginx:stable",
	}
	if diff := cmp.Diff(wantImages, images); diff != "" {
		t.Errorf("additional images (-want +got):\n%s", diff)
	}
	var catalogs []string
	for _, c := range p.Catalogs {
		catalogs = append(catalogs, c.Source+" -> "+c.Destination)
	}
	wantCatalogs := []string{
		"registry.redhat.io/redhat/redhat-operator-index:v4.16 -> reg.example.com/mirror/redhat/redhat-operator-index:v4.16",
		"quay.io/example/catalog@sha256:00000000000000000000000000000000000000000000000000000000000000cc -> reg.example.com/mirror/catalogs/example:sha256-00000000000000000000000000000000000000000000000000000000000000cc",
		"oci:///srv/catalogs/community-operators/ -> reg.example.com/mirror/community-operators:v1",
	}
	if diff := cmp.Diff(wantCatalogs, catalogs); diff != "" {
		t.Errorf("catalogs (-want +got):\n%s", diff)
	}
	if p.Catalogs[0].Operator.Packages[1].DefaultChannel != "threescale-2.14" {
		t.Errorf("the catalog entry is not passed through: %+v", p.Catalogs[0].Operator)
	}
	wantGraph := &GraphImage{Source: DefaultGraphImage, Destination: "reg.example.com/mirror/openshift/graph-image:latest", Releases: "reg.example.com/mirror/openshift/release-images"}
	if diff := cmp.Diff(wantGraph, p.Graph, cmpopts.IgnoreUnexported(GraphImage{})); diff != "" {
		t.Errorf("graph (-want +got):\n%s", diff)
	}
	wantBlocked := []Blocked{
		{Source: "docker.io/library/busybox:1.36", Destination: "reg.example.com/mirror/library/busybox:1.36", Reason: `mirror.blockedImages[0] "^docker.io/library/busybox" (testdata/plan-isc.yaml:44:7)`},
		{Source: "registry.example.com/team/debug-tools:1", Destination: "reg.example.com/mirror/team/debug-tools:1", Reason: `mirror.blockedImages[1] ".*/debug-.*" (testdata/plan-isc.yaml:45:7)`},
	}
	if diff := cmp.Diff(wantBlocked, p.Blocked); diff != "" {
		t.Errorf("blocked (-want +got):\n%s", diff)
	}
}

// TestReleaseTarget: a planned release, read and planned by package
// mirror, lands where oc-mirror v2 puts releases.
func TestReleaseTarget(t *testing.T) {
	p := &Plan{Target: "reg.example.com/mirror"}
	comp, err := name.NewDigest("quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:" + strings.Repeat("1", 64))
	if err != nil {
		t.Fatal(err)
	}
	pl := &mirror.Payload{Version: "4.16.3", Arch: "x86_64", Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)},
		Components: []mirror.PayloadComponent{{Name: "cli", Ref: comp}}}
	tgt, err := p.ReleaseTarget(pl)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := name.ParseReference(payload("4.16.3", "amd64"))
	rp := mirror.PlanRelease(pl, src, tgt)
	var got []string
	for _, im := range rp.Images {
		got = append(got, im.Destination)
	}
	want := []string{
		"reg.example.com/mirror/openshift/release-images:4.16.3-x86_64",
		"reg.example.com/mirror/openshift/release:4.16.3-x86_64-cli",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("release destinations (-want +got):\n%s", diff)
	}
	if _, err := (&Plan{}).ReleaseTarget(pl); err == nil {
		t.Error("a plan into a directory has no registry release target; want an error")
	}
}

func TestBlockedBy(t *testing.T) {
	p := &Plan{}
	for i, re := range []string{"^docker.io/library/busybox", "debug", `@sha256:0{64}$`} {
		c := readISCString(t, head+"mirror:\n  blockedImages:\n  - name: '"+re+"'\n")
		np, err := NewPlan(context.Background(), c, nil, PlanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		np.rules[0].reason = string(rune('a' + i))
		p.rules = append(p.rules, np.rules...)
	}
	cases := []struct {
		name, src, dst, want string
	}{
		{"source matches", "docker.io/library/busybox:1", "reg/x:1", "a"},
		{"transport stripped", "docker://docker.io/library/busybox:1", "", "a"},
		{"destination matches", "quay.io/a/b:1", "reg/debug/b:1", "b"},
		{"unanchored, as oc-mirror", "quay.io/team/my-debug-image:1", "", "b"},
		{"digest", "quay.io/a/b@sha256:" + strings.Repeat("0", 64), "", "c"},
		{"no match", "quay.io/a/b:1", "reg/a/b:1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, blocked := p.BlockedBy(tc.src, tc.dst)
			if blocked != (tc.want != "") || got != tc.want {
				t.Errorf("BlockedBy = %q, %v; want %q", got, blocked, tc.want)
			}
		})
	}
}

func readISCString(t *testing.T, s string) *ImageSetConfiguration {
	t.Helper()
	c, err := ParseImageSetConfiguration("isc.yaml", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPlanErrors: what only the update graph or the destination can show
// is reported at once, each naming the ISC line it is about.
func TestPlanErrors(t *testing.T) {
	s := newGraphServer(t)
	cases := []struct {
		name   string
		isc    string
		target string
		want   []string
	}{
		{"channels", head + "mirror:\n  platform:\n    channels:\n    - name: stable-4.99\n    - name: stable-4.16\n      maxVersion: 4.16.9\n    - name: unavailable\n    - name: stable-4.16x\n      type: okd\n",
			"reg.example.com", []string{
				`isc.yaml:6:7: mirror.platform.channels[0]: channel "stable-4.99" has no releases for architecture amd64: is the channel name right?`,
				`isc.yaml:7:7: mirror.platform.channels[1]: channel "stable-4.16" (amd64) holds 4.16.0 to 4.16.5: maxVersion 4.16.9 is outside it`,
				`isc.yaml:9:7: mirror.platform.channels[2]: channel "unavailable" (amd64): update service`,
				`isc.yaml:10:7: mirror.platform.channels[3]: channel "stable-4.16x" has no releases`,
			}},
		{"multi is another graph", head + "mirror:\n  platform:\n    architectures: [amd64, multi]\n    channels:\n    - name: fast-4.16\n",
			"reg.example.com", []string{`channel "fast-4.16" has no releases for architecture multi`}},
		{"two images, one destination", head + "mirror:\n  additionalImages:\n  - name: quay.io/a/tool:1\n  - name: quay.io/b/tool:1\n    targetRepo: a/tool\n",
			"reg.example.com", []string{`isc.yaml:6:5: mirror.additionalImages[1].name: quay.io/b/tool:1 and quay.io/a/tool:1 (mirror.additionalImages[0]) both go to reg.example.com/a/tool:1`}},
		{"bad target", head + "mirror: {}\n", "Reg.Example.com/UPPER", []string{`destination "Reg.Example.com/UPPER": want REGISTRY[/PREFIX]`}},
		{"channels without a graph service", head + "mirror:\n  platform:\n    channels: [{name: stable-4.16}]\n", "reg.example.com", []string{"need an update-graph service"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var graphs GraphSource = s.client()
			if strings.HasPrefix(tc.name, "channels without") {
				graphs = nil
			}
			_, err := NewPlan(context.Background(), readISCString(t, tc.isc), graphs, PlanOptions{Target: tc.target})
			if err == nil {
				t.Fatal("planned; want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestCrossChannel: two listed OCP channels bring the releases on the
// update path between them, as oc-mirror mirrors them.
func TestCrossChannel(t *testing.T) {
	s := newGraphServer(t)
	cases := []struct {
		name     string
		channels string
		want     []string
		notes    []string
		err      string
	}{
		{"through the channel in between", "    - {name: eus-4.14, minVersion: 4.14.8}\n    - {name: eus-4.16}\n",
			[]string{"4.14.8 eus-4.14", "4.14.9 eus-4.14", "4.15.1 eus-4.15 (path)", "4.16.1 eus-4.16"}, nil, ""},
		{"listed in any order", "    - {name: eus-4.16}\n    - {name: eus-4.14, minVersion: 4.14.8}\n",
			[]string{"4.14.8 eus-4.14", "4.14.9 eus-4.14", "4.15.1 eus-4.15 (path)", "4.16.1 eus-4.16"}, nil, ""},
		{"the same minor: a path inside the higher channel", "    - {name: eus-4.16, minVersion: 4.15.1, maxVersion: 4.15.1}\n    - {name: candidate-4.16}\n",
			[]string{"4.15.1 eus-4.16", "4.16.0 candidate-4.16 (path)", "4.16.1 candidate-4.16"}, nil, ""},
		{"cannot enter the next channel", "    - {name: eus-4.14}\n    - {name: stable-4.16, maxVersion: 4.16.2}\n",
			[]string{"4.14.9 eus-4.14", "4.15.1 eus-4.15 (path)", "4.16.0 stable-4.16", "4.16.1 stable-4.16", "4.16.2 stable-4.16"},
			[]string{"amd64: no update path from 4.15.1 into channel stable-4.16 (4.15.1 is not in it): the update path between the listed channels stops there"}, ""},
		{"a channel in between is missing", "    - {name: gap-4.14}\n    - {name: gap-4.16}\n",
			nil, nil, `channel "gap-4.15" (amd64), on the update path between the listed channels, has no releases`},
		{"okd channels are left out", "    - {name: eus-4.14}\n    - {name: stable-4, type: okd}\n",
			[]string{"4.14.9 eus-4.14", "4.15.0-0.okd-2024-01-27-070424 stable-4"}, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseImageSetConfiguration("isc.yaml", []byte(head+"mirror:\n  platform:\n    channels:\n"+tc.channels))
			if err != nil {
				if tc.err != "" && strings.Contains(err.Error(), tc.err) {
					return
				}
				t.Fatal(err)
			}
			p, err := NewPlan(context.Background(), c, s.client(), PlanOptions{Target: "reg.example.com"})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range p.Releases {
				s := r.Version + " " + strings.Join(r.Channels, ",")
				if r.UpgradePath {
					s += " (path)"
				}
				got = append(got, s)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("releases (-want +got):\n%s", diff)
			}
			if len(p.Notes) != len(tc.notes) {
				t.Errorf("notes %q, want %q", p.Notes, tc.notes)
			}
			for i := range tc.notes {
				if i < len(p.Notes) && !strings.HasPrefix(p.Notes[i], tc.notes[i]) {
					t.Errorf("note %q, want %q", p.Notes[i], tc.notes[i])
				}
			}
		})
	}
}

// TestPlanConstructed: a configuration built in code (not parsed) plans
// too, and its problems carry no made-up location.
func TestPlanConstructed(t *testing.T) {
	c := &ImageSetConfiguration{APIVersion: APIVersion, Kind: KindImageSetConfiguration, Mirror: Mirror{
		AdditionalImages: []AdditionalImage{{Name: "quay.io/a/b:1"}, {Name: "quay.io/a/debug:1"}},
		BlockedImages:    []BlockedImage{{Name: "debug"}},
		Platform:         Platform{Channels: []ReleaseChannel{{Name: "stable-4.99"}}},
	}}
	_, err := NewPlan(context.Background(), c, newGraphServer(t).client(), PlanOptions{Target: "reg.example.com"})
	if err == nil || !strings.HasPrefix(err.Error(), `mirror.platform.channels[0]: channel "stable-4.99" has no releases`) {
		t.Errorf("err = %v", err)
	}
	c.Mirror.Helm = Helm{Local: []HelmChart{{Name: "c"}}}
	if _, err := NewPlan(context.Background(), c, nil, PlanOptions{}); err == nil || err.Error() != "mirror.helm: helm is not supported yet: list the charts' images under additionalImages instead" {
		t.Errorf("an invalid configuration built in code: err = %v", err)
	}
	c.Mirror.Platform, c.Mirror.Helm = Platform{}, Helm{}
	p, err := NewPlan(context.Background(), c, nil, PlanOptions{Target: "reg.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Images) != 1 || len(p.Blocked) != 1 || p.Blocked[0].Reason != `mirror.blockedImages[0] "debug"` {
		t.Errorf("images %v, blocked %v", p.Images, p.Blocked)
	}
}
