package imageset

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const head = "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\n"

func TestParseFull(t *testing.T) {
	data, err := os.ReadFile("testdata/isc-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseImageSetConfiguration("testdata/isc-full.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	want := &ImageSetConfiguration{
		APIVersion: APIVersion, Kind: KindImageSetConfiguration, ArchiveSize: 4,
		Mirror: Mirror{
			Platform: Platform{
				Graph:         true,
				Architectures: []string{"amd64", "multi"},
				Channels: []ReleaseChannel{
					{Name: "stable-4.16", MinVersion: "4.16.1", MaxVersion: "4.16.3", ShortestPath: true},
					{Name: "fast-4.17", Type: "ocp"},
					{Name: "stable-4.15", Full: true, MinVersion: "4.15.2"},
				},
			},
			Operators: []Operator{
				{
					Catalog: "registry.redhat.io/redhat/redhat-operator-index:v4.16", TargetCatalog: "my/redhat-operators", TargetTag: "v4.16-filtered", SkipDependencies: true,
					Packages: []IncludePackage{
						{Name: "aws-load-balancer-operator", DefaultChannel: "stable-v1", Channels: []IncludeChannel{{Name: "stable-v1", MinVersion: "1.1.0", MaxVersion: "1.2.0"}}},
						{Name: "3scale-operator", MinVersion: "0.11"},
					},
				},
				{Catalog: "oci:///srv/catalogs/community", Full: true, Platforms: []InstancePlatform{{OS: "linux", Architecture: "arm64"}}},
			},
			AdditionalImages: []AdditionalImage{
				{Name: "registry.example.com/team/tool:1.2"},
				{Name: "docker.io/library/nginx@sha256:0000000000000000000000000000000000000000000000000000000000000001"},
				{Name: "quay.io/org/app:v2@sha256:0000000000000000000000000000000000000000000000000000000000000002", TargetRepo: "apps/app"},
				{Name: "nginx", TargetTag: "stable", Platforms: []InstancePlatform{{OS: "linux", Architecture: "amd64"}}},
			},
			BlockedImages: []BlockedImage{{Name: "^docker.io/library/busybox"}, {Name: ".*/debug-.*"}},
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(ImageSetConfiguration{})); diff != "" {
		t.Errorf("parsed (-want +got):\n%s", diff)
	}
	if w := got.Where("mirror.platform.channels[1]"); w != "testdata/isc-full.yaml:16:9" {
		t.Errorf("Where(channels[1]) = %s", w)
	}
}

// TestParseAccepts: shapes oc-mirror accepts parse, with the values it reads.
func TestParseAccepts(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want Mirror
	}{
		{"empty mirror", head + "mirror: {}\n", Mirror{}},
		{"null mirror", head + "mirror:\n", Mirror{}},
		{"comments and a leading separator", "# isc\n---\n" + head + "mirror:\n  # nothing yet\n  additionalImages: []\n", Mirror{AdditionalImages: []AdditionalImage{}}},
		{"flow style", head + "mirror: {additionalImages: [{name: 'quay.io/a/b:1'}]}\n", Mirror{AdditionalImages: []AdditionalImage{{Name: "quay.io/a/b:1"}}}},
		{"YAML 1.1 booleans, as oc-mirror's reader takes them", head + "mirror:\n  platform:\n    graph: yes\n    channels:\n    - {name: stable-4.16, full: on}\n",
			Mirror{Platform: Platform{Graph: true, Channels: []ReleaseChannel{{Name: "stable-4.16", Full: true}}}}},
		{"quoted version strings", head + "mirror:\n  operators:\n  - catalog: quay.io/c/i:v1\n    packages:\n    - name: p\n      minVersion: \"1.2\"\n      maxVersion: '1.10'\n",
			Mirror{Operators: []Operator{{Catalog: "quay.io/c/i:v1", Packages: []IncludePackage{{Name: "p", MinVersion: "1.2", MaxVersion: "1.10"}}}}}},
		{"anchors and aliases", head + "mirror:\n  additionalImages:\n  - &img {name: quay.io/a/b:1}\n  - *img\n",
			Mirror{AdditionalImages: []AdditionalImage{{Name: "quay.io/a/b:1"}, {Name: "quay.io/a/b:1"}}}},
		{"okd channel and platform.release", head + "mirror:\n  platform:\n    release: quay.io/openshift/okd:4.15.0-0.okd-2024-01-27-070424\n    channels:\n    - {name: stable-4, type: okd}\n",
			Mirror{Platform: Platform{Release: "quay.io/openshift/okd:4.15.0-0.okd-2024-01-27-070424", Channels: []ReleaseChannel{{Name: "stable-4", Type: "okd"}}}}},
		{"empty helm", head + "mirror:\n  helm: {}\n", Mirror{}},
		{"a date-like tag stays a string", head + "mirror:\n  additionalImages:\n  - name: quay.io/a/b:1\n    targetTag: 2024-01-02\n",
			Mirror{AdditionalImages: []AdditionalImage{{Name: "quay.io/a/b:1", TargetTag: "2024-01-02"}}}},
		{"docker:// references", head + "mirror:\n  additionalImages:\n  - name: docker://quay.io/a/b:1\n", Mirror{AdditionalImages: []AdditionalImage{{Name: "docker://quay.io/a/b:1"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseImageSetConfiguration("isc.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.Mirror); diff != "" {
				t.Errorf("mirror (-want +got):\n%s", diff)
			}
		})
	}
}

type wantProblem struct {
	line  int
	field string
	msg   string // a substring of the message
}

// TestParseRejects: every bad input names file, line and field, and all
// problems of a file come back at once.
func TestParseRejects(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []wantProblem
	}{
		{"unknown top-level field", head + "mirror: {}\nstorageConfig:\n  local: {path: /x}\n",
			[]wantProblem{{4, "storageConfig", "oc-mirror v1"}}},
		{"unknown nested field with the valid ones", head + "mirror:\n  platform:\n    channels:\n    - name: stable-4.16\n      minversion: 4.16.1\n      color: blue\n",
			[]wantProblem{{7, "mirror.platform.channels[0].minversion", `did you mean "minVersion"`}, {8, "mirror.platform.channels[0].color", "valid fields here: full, maxVersion, minVersion, name, shortestPath, type"}}},
		{"bundles from v1", head + "mirror:\n  operators:\n  - catalog: quay.io/c/i:v1\n    packages:\n    - name: p\n      bundles: [{name: p.v1}]\n",
			[]wantProblem{{8, "mirror.operators[0].packages[0].bundles", "minVersion/maxVersion"}}},
		{"metadata", head + "metadata: {name: x}\nmirror: {}\n", []wantProblem{{3, "metadata", "no metadata"}}},
		{"wrong types", head + "mirror:\n  platform:\n    graph: \"true\"\n    channels: stable-4.16\n  additionalImages:\n  - name: [a]\narchiveSize: big\n",
			[]wantProblem{{5, "mirror.platform.graph", "want true or false"}, {6, "mirror.platform.channels", "want a list"}, {8, "mirror.additionalImages[0].name", "want a string"}, {9, "archiveSize", "whole number"}}},
		{"unquoted number as a version", head + "mirror:\n  platform:\n    channels:\n    - name: stable-4.16\n      maxVersion: 4.16\n",
			[]wantProblem{{7, "mirror.platform.channels[0].maxVersion", `quote it: "4.16"`}}},
		{"duplicate key", head + "mirror:\n  platform: {}\n  platform: {}\n", []wantProblem{{5, "mirror.platform", "given twice"}}},
		{"missing mirror", head, []wantProblem{{1, "mirror", "needs a mirror: stanza"}}},
		{"delete stanza", head + "mirror: {}\ndelete: {}\n", []wantProblem{{4, "delete", "not allowed"}}},
		{"wrong kind", "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete: {}\n", []wantProblem{{1, "kind", "berth mirror delete"}}},
		{"wrong apiVersion", "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v1alpha2\nmirror: {}\n", []wantProblem{{2, "apiVersion", "want mirror.openshift.io/v2alpha1"}}},
		{"no kind", "apiVersion: mirror.openshift.io/v2alpha1\nmirror: {}\n", []wantProblem{{1, "kind", "missing"}}},
		{"not a mapping", "- a\n- b\n", []wantProblem{{1, "", "want a ImageSetConfiguration"}}},
		{"empty file", "# nothing\n", []wantProblem{{1, "", "no YAML document"}}},
		{"two documents", head + "mirror: {}\n---\n" + head + "mirror: {}\n", []wantProblem{{5, "", "one ImageSetConfiguration per file"}}},
		{"YAML syntax", head + "mirror:\n  platform: [\n", []wantProblem{{0, "", "not valid YAML"}}},
		{"merge key", head + "mirror:\n  platform:\n    <<: {graph: true}\n", []wantProblem{{5, "mirror.platform", "merge keys"}}},
		{"channel values", head + "mirror:\n  platform:\n    architectures: [x86_64, sparc, amd64, amd64]\n    channels:\n    - name: stable-4.16\n      type: rhel\n      minVersion: 4.16.5\n      maxVersion: 4.16.1\n    - name: stable-4.16\n      minVersion: \"4.16\"\n    - minVersion: v4.1.0\n",
			[]wantProblem{
				{5, "mirror.platform.architectures[0]", `spells it "amd64"`},
				{5, "mirror.platform.architectures[1]", "not a release architecture"},
				{5, "mirror.platform.architectures[3]", "listed twice"},
				{8, "mirror.platform.channels[0].type", "want ocp (the default) or okd"},
				{9, "mirror.platform.channels[0].minVersion", "above maxVersion"},
				{11, "mirror.platform.channels[1].name", "already listed"},
				{12, "mirror.platform.channels[1].minVersion", "not a release version"},
				{13, "mirror.platform.channels[2].name", "required"},
				{13, "mirror.platform.channels[2].minVersion", "not a release version"},
			}},
		{"operator values", head + "mirror:\n  operators:\n  - catalog: \"Quay.io/UPPER:tag\"\n  - catalog: quay.io/c/i:v1\n    targetCatalog: Bad/Path:tag\n    targetTag: -bad\n    targetCatalogSourceTemplate: /x.yaml\n    packages:\n    - name: p\n      minVersion: 2.0.0\n      maxVersion: 1.0.0\n      channels:\n      - name: stable\n        minVersion: 1.0.0\n      - name: stable\n    - name: p\n    - minVersion: one\n  - catalog: quay.io/c/i:v1\n    targetCatalog: Bad/Path:tag\n    targetTag: -bad\n  - catalog: oci://\n  - {}\n",
			[]wantProblem{
				{5, "mirror.operators[0].catalog", "not an image reference"},
				{7, "mirror.operators[1].targetCatalog", "not a repository path"},
				{8, "mirror.operators[1].targetTag", "not a tag"},
				{9, "mirror.operators[1].targetCatalogSourceTemplate", "not supported yet"},
				{12, "mirror.operators[1].packages[0].minVersion", "above maxVersion"},
				{15, "mirror.operators[1].packages[0].channels[0]", "one or the other"},
				{17, "mirror.operators[1].packages[0].channels[1].name", "already listed"},
				{18, "mirror.operators[1].packages[1].name", "already listed"},
				{19, "mirror.operators[1].packages[2].name", "required"},
				{19, "mirror.operators[1].packages[2].minVersion", "not a semantic version"},
				{20, "mirror.operators[2].catalog", "already listed at mirror.operators[1]"},
				{21, "mirror.operators[2].targetCatalog", "not a repository path"},
				{22, "mirror.operators[2].targetTag", "not a tag"},
				{23, "mirror.operators[3].catalog", "names no OCI layout"},
				{24, "mirror.operators[4].catalog", "required"},
			}},
		{"additional and blocked images", head + "mirror:\n  additionalImages:\n  - name: quay.io/a/b@sha256:123\n  - name: oci:///tmp/x\n  - name: quay.io/a/b:1\n    targetRepo: /Abs\n    targetTag: a:b\n    platforms:\n    - os: linux\n    - {}\n  blockedImages:\n  - name: \"(unclosed\"\n  - name: \"\"\n",
			[]wantProblem{
				{5, "mirror.additionalImages[0].name", "bad digest"},
				{6, "mirror.additionalImages[1].name", "not supported yet"},
				{8, "mirror.additionalImages[2].targetRepo", "not a repository path"},
				{9, "mirror.additionalImages[2].targetTag", "not a tag"},
				{11, "mirror.additionalImages[2].platforms[0].architecture", "required"},
				{12, "mirror.additionalImages[2].platforms[1].os", "required"},
				{12, "mirror.additionalImages[2].platforms[1].architecture", "required"},
				{14, "mirror.blockedImages[0].name", "not a regular expression"},
				{15, "mirror.blockedImages[1].name", "required"},
			}},
		{"refused features", head + "mirror:\n  platform:\n    kubeVirtContainer: true\n    platforms:\n    - {os: linux, architecture: arm64}\n  helm:\n    repositories:\n    - name: r\n      url: https://charts.example.com\n      charts: [{name: c, version: 1.0.0}]\n  samples:\n  - name: s\n",
			[]wantProblem{
				{6, "mirror.platform.platforms", "not supported yet"},
				{5, "mirror.platform.kubeVirtContainer", "not supported yet"},
				{8, "mirror.helm", "helm is not supported yet"},
				{13, "mirror.samples", "not implemented"},
			}},
		{"negative archive size", head + "mirror: {}\narchiveSize: -1\n", []wantProblem{{4, "archiveSize", "negative"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseImageSetConfiguration("bad.yaml", []byte(tc.yaml))
			checkProblems(t, err, tc.want)
		})
	}
}

func checkProblems(t *testing.T, err error, want []wantProblem) {
	t.Helper()
	if err == nil {
		t.Fatal("parsed; want an error")
	}
	got := Problems(err)
	if len(got) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for _, w := range want {
		found := false
		for _, p := range got {
			if p.Field == w.field && strings.Contains(p.Message, w.msg) && (w.line == 0 || p.Line == w.line) {
				found = true
				if p.File != "bad.yaml" || p.Line < 1 {
					t.Errorf("%v: want file bad.yaml and a line", p)
				}
				prefix := "bad.yaml:"
				if !strings.HasPrefix(p.Error(), prefix) || (w.field != "" && !strings.Contains(p.Error(), " "+w.field+": ")) {
					t.Errorf("%q does not name file, line and field", p.Error())
				}
			}
		}
		if !found {
			t.Errorf("no problem at line %d, field %q, containing %q; got:\n%v", w.line, w.field, w.msg, err)
		}
	}
}

func TestParseDelete(t *testing.T) {
	data, err := os.ReadFile("testdata/delete-isc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDeleteImageSetConfiguration("testdata/delete-isc.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	want := Delete{
		Platform:         Platform{Architectures: []string{"amd64"}, Channels: []ReleaseChannel{{Name: "stable-4.14", MinVersion: "4.14.1", MaxVersion: "4.14.3"}}},
		Operators:        []Operator{{Catalog: "registry.redhat.io/redhat/redhat-operator-index:v4.14", Packages: []IncludePackage{{Name: "aws-load-balancer-operator"}}}},
		AdditionalImages: []AdditionalImage{{Name: "registry.example.com/team/tool:1.1"}},
	}
	if diff := cmp.Diff(want, got.Delete); diff != "" {
		t.Errorf("delete (-want +got):\n%s", diff)
	}

	bad := []struct {
		name string
		yaml string
		want []wantProblem
	}{
		{"blockedImages is not a delete field", "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  blockedImages: [{name: x}]\n",
			[]wantProblem{{4, "delete.blockedImages", "unknown field"}}},
		{"mirror stanza", "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete: {}\nmirror: {}\n",
			[]wantProblem{{4, "mirror", "not allowed in a DeleteImageSetConfiguration"}}},
		{"an ImageSetConfiguration", head + "mirror: {}\n", []wantProblem{{1, "kind", "berth mirror apply"}}},
		{"validated like an ISC", "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  platform:\n    channels:\n    - {name: stable-4.14, minVersion: 4.14}\n",
			[]wantProblem{{6, "delete.platform.channels[0].minVersion", "quote it"}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDeleteImageSetConfiguration("bad.yaml", []byte(tc.yaml))
			checkProblems(t, err, tc.want)
		})
	}
}
