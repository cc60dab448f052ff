package mirror_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/mirrortest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"sigs.k8s.io/yaml"

	goldenfile "github.com/berth-registry/berth/internal/golden"
)

func TestReadPayloadAndPlan(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	rel, err := mirrortest.PushRelease(context.Background(), src, mirrortest.ReleaseSpec{Version: "4.20.1", Components: 5, MultiArchEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := mirror.NewRegistry(src, mirror.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := mirror.ReadPayload(context.Background(), reg, "openshift-release-dev/ocp-release", "4.20.1-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != "4.20.1" || p.Arch != "x86_64" || p.Digest.String() != rel.Digest || len(p.Components) != 5 {
		t.Fatalf("payload %+v", p)
	}
	relRef, _ := name.ParseReference(rel.Ref)
	to, _ := name.NewRepository("mirror.example.com:5000/ocp/release")
	plan := mirror.PlanRelease(p, relRef, mirror.ReleaseTarget{Repo: to})
	if got, want := plan.Images[0].Destination, "mirror.example.com:5000/ocp/release:4.20.1-x86_64"; got != want {
		t.Errorf("release image goes to %s, want %s", got, want)
	}
	if got, want := plan.Images[1].Destination, "mirror.example.com:5000/ocp/release:4.20.1-x86_64-component-000"; got != want {
		t.Errorf("component goes to %s, want %s", got, want)
	}
	want := []mirror.MirrorSource{
		{Source: src + "/openshift-release-dev/ocp-release", Mirrors: []string{"mirror.example.com:5000/ocp/release"}},
		{Source: src + "/openshift-release-dev/ocp-v4.0-art-dev", Mirrors: []string{"mirror.example.com:5000/ocp/release"}},
	}
	if d := cmp.Diff(want, plan.Mirrors); d != "" {
		t.Errorf("mirrors (-want +got):\n%s", d)
	}
}

func TestImageReferencesMustPinDigests(t *testing.T) {
	refs := []byte(`{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","metadata":{"name":"4.1.0"},
"spec":{"tags":[
 {"name":"ok","from":{"kind":"DockerImage","name":"quay.io/a/b@sha256:0123456789012345678901234567890123456789012345678901234567890123"}},
 {"name":"cli","from":{"kind":"DockerImage","name":"quay.io/a/cli:latest"}},
 {"name":"tools","from":{"kind":"DockerImage","name":"quay.io/a/tools"}}]}}`)
	_, _, err := mirror.ParseImageReferences(refs)
	if !errors.Is(err, mirror.ErrNotPinned) {
		t.Fatalf("err = %v, want ErrNotPinned", err)
	}
	for _, s := range []string{"cli", "tools", "quay.io/a/cli:latest"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not name %q: %v", s, err)
		}
	}
	if strings.Contains(err.Error(), "(ok)") {
		t.Errorf("error names the pinned component: %v", err)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", name+".golden"), got)
}

func TestMirrorSetRendering(t *testing.T) {
	ms := []mirror.MirrorSource{
		{Source: "quay.io/openshift-release-dev/ocp-v4.0-art-dev", Mirrors: []string{"mirror.example.com/ocp/release"}},
		{Source: "quay.io/openshift-release-dev/ocp-release", Mirrors: []string{"mirror.example.com/ocp/release", "mirror.example.com/ocp/release"}},
		{Source: "quay.io/openshift-release-dev/ocp-v4.0-art-dev", Mirrors: []string{"backup.example.com/ocp/release", "mirror.example.com/ocp/release"}},
		{Source: "quay.io/self", Mirrors: []string{"quay.io/self"}},
	}
	idms, err := mirror.ImageDigestMirrorSets("release-4.16.0", ms)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "idms", idms)
	icsp, err := mirror.ImageContentSourcePolicies("release-4.16.0", ms)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "icsp", icsp)
	itms, err := mirror.ImageTagMirrorSets("release-4.16.0", ms)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "itms", itms)
	golden(t, "install-config", []byte(mirror.InstallConfigSnippet(ms, false)))
}

// Many sources split into several objects, each under the size limit, and
// every source appears exactly once.
func TestMirrorSetsSplitUnderLimit(t *testing.T) {
	var ms []mirror.MirrorSource
	for i := 0; i < 3000; i++ {
		ms = append(ms, mirror.MirrorSource{Source: fmt.Sprintf("registry.example.com/team-%04d/some-rather-long-repository-name-%04d", i, i), Mirrors: []string{"mirror.example.com/disconnected/all"}})
	}
	out, err := mirror.ImageDigestMirrorSets("big", ms)
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(out, []byte("---\n"))
	if len(docs) < 2 {
		t.Fatalf("%d bytes in one object; want a split", len(out))
	}
	seen := map[string]int{}
	for i, d := range docs {
		if len(d) > mirror.MaxObjectBytes {
			t.Errorf("object %d is %d bytes", i, len(d))
		}
		var o struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct{ Name string }
			Spec       struct {
				ImageDigestMirrors []mirror.MirrorSource `json:"imageDigestMirrors"`
			}
		}
		if err := yaml.UnmarshalStrict(d, &o); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("big-%d", i); o.Metadata.Name != want {
			t.Errorf("object %d named %q, want %q", i, o.Metadata.Name, want)
		}
		for _, m := range o.Spec.ImageDigestMirrors {
			seen[m.Source]++
		}
	}
	if len(seen) != len(ms) {
		t.Errorf("%d sources rendered, want %d", len(seen), len(ms))
	}
}

func TestParseMappings(t *testing.T) {
	in := `# release components
quay.io/a/b:1 mirror.local/a/b
quay.io/a/c@sha256:0123456789012345678901234567890123456789012345678901234567890123=mirror.local/a/c:pinned   # trailing comment

`
	got, err := mirror.ParseMappings("map.txt", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []mirror.Mapping{
		{Src: "quay.io/a/b:1", Dst: "mirror.local/a/b", Line: 2},
		{Src: "quay.io/a/c@sha256:0123456789012345678901234567890123456789012345678901234567890123", Dst: "mirror.local/a/c:pinned", Line: 3},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	_, err = mirror.ParseMappings("map.txt", strings.NewReader("only-one\nquay.io/x:1 mirror/y extra\nquay.io/ok:1 mirror.local/ok\nBAD//:ref mirror/z\n"))
	if err == nil {
		t.Fatal("bad lines accepted")
	}
	for _, s := range []string{"map.txt:1", "map.txt:2", "map.txt:4"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not point at %s: %v", s, err)
		}
	}
}

func FuzzParseMappings(f *testing.F) {
	f.Add("quay.io/a/b:1 mirror.local/a/b\n# c\n")
	f.Add("a=b\n")
	f.Add("x@sha256:zz y\n")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := mirror.ParseMappings("f", strings.NewReader(s))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.Src == "" || m.Dst == "" || m.Line < 1 {
				t.Errorf("accepted an empty mapping %+v", m)
			}
		}
	})
}

func FuzzParseImageReferences(f *testing.F) {
	f.Add([]byte(`{"kind":"ImageStream","metadata":{"name":"4.1"},"spec":{"tags":[{"name":"a","from":{"kind":"DockerImage","name":"q.io/a@sha256:0123456789012345678901234567890123456789012345678901234567890123"}}]}}`))
	f.Add([]byte(`{"kind":"ImageStream"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, comps, err := mirror.ParseImageReferences(data)
		if err != nil {
			return
		}
		if v == "" {
			t.Error("accepted an empty version")
		}
		for _, c := range comps {
			if c.Name == "" || c.Ref.DigestStr() == "" {
				t.Errorf("accepted %+v", c)
			}
		}
	})
}
