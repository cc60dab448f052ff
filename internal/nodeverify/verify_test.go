//go:build containers_image_openpgp

package nodeverify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/internal/mirror/mirrortest"
	"github.com/berth-registry/berth/internal/testpeer"
)

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A root by hand: registries.conf sends source.invalid/org to a mirror on
// a real Distribution; policy.json admits everything but one repository;
// team-a's CRI-O policy admits nothing.
func TestVerifyAgainstDistribution(t *testing.T) {
	reg := testpeer.StartDistribution(t)
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	dgst, _ := img.Digest()
	for _, r := range []string{"mirror/org/app:v1", "mirror/org/denied:v1"} {
		ref, _ := name.ParseReference(reg+"/"+r, name.Insecure)
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc/containers/registries.conf"), `unqualified-search-registries = []
[[registry]]
prefix = ""
location = "source.invalid/org"
[[registry.mirror]]
location = "`+reg+`/mirror/org"
insecure = true
`)
	writeFile(t, filepath.Join(root, "etc/containers/policy.json"), `{"default":[{"type":"insecureAcceptAnything"}],
 "transports":{"docker":{"source.invalid/org/denied":[{"type":"reject"}]}}}`)
	writeFile(t, filepath.Join(root, "etc/crio/policies/team-a.json"), `{"default":[{"type":"reject"}]}`)

	byDigest := "source.invalid/org/app@" + dgst.String()
	for _, c := range []struct {
		name, namespace, ref string
		accepted             bool
		policy               string
		stage                Stage
		reason               string
	}{
		{"served by the mirror, admitted", "", byDigest, true, "etc/containers/policy.json", "", ""},
		{"a tag through the mirror", "", "source.invalid/org/app:v1", true, "etc/containers/policy.json", "", ""},
		{"fetched, then refused by policy.json", "", "source.invalid/org/denied:v1", false, "etc/containers/policy.json", StagePolicy, "Running image docker://source.invalid/org/denied:v1 is rejected by policy."},
		{"no source serves it", "", "source.invalid/org/missing:v1", false, "etc/containers/policy.json", StageFetch, "source.invalid/org/missing:v1"},
		{"not a reference", "", "UPPER/Case::x", false, "etc/containers/policy.json", StageReference, "invalid reference format"},
		{"the namespace's CRI-O policy", "team-a", byDigest, false, "etc/crio/policies/team-a.json", StagePolicy, "is rejected by policy"},
		{"a namespace without its own policy falls back to policy.json", "team-b", byDigest, true, "etc/containers/policy.json", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			vs, err := Verify(context.Background(), Options{Root: root, Namespace: c.namespace}, []string{c.ref})
			if err != nil {
				t.Fatal(err)
			}
			v := vs[0]
			if v.Accepted != c.accepted || v.Policy != c.policy || v.Stage != c.stage || !strings.Contains(v.Reason, c.reason) {
				t.Fatalf("verdict %+v; want accepted %v by %s, stage %q, reason containing %q", v, c.accepted, c.policy, c.stage, c.reason)
			}
			if c.accepted && v.Digest != dgst.String() {
				t.Fatalf("judged %s, want %s", v.Digest, dgst)
			}
		})
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Fatalf("verify wrote into the root: %v", entries)
	}
}

func TestVerifyRefusesWhatIsNotARoot(t *testing.T) {
	dir := t.TempDir()
	if _, err := Verify(context.Background(), Options{Root: dir}, []string{"quay.io/a/b:c"}); err == nil || !strings.Contains(err.Error(), "is not a node root written by berth policy render") {
		t.Fatalf("err = %v", err)
	}
	writeFile(t, filepath.Join(dir, "etc/containers/registries.conf"), "")
	writeFile(t, filepath.Join(dir, "etc/containers/policy.json"), `{"default":[{"type":"nonsense"}]}`)
	if _, err := Verify(context.Background(), Options{Root: dir}, []string{"quay.io/a/b:c"}); err == nil || !strings.Contains(err.Error(), "the runtime library refuses") || !strings.Contains(err.Error(), "nonsense") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Verify(context.Background(), Options{Root: dir, Namespace: "../x"}, []string{"quay.io/a/b:c"}); err == nil || !strings.Contains(err.Error(), "not a Kubernetes namespace name") {
		t.Fatalf("err = %v", err)
	}
}

// A manifest list is judged, as copy.Image judges it, by the instance for
// the node's platform.
func TestVerifyChoosesThePlatformsInstance(t *testing.T) {
	reg := testpeer.StartDistribution(t)
	imgs := map[string]v1.Image{}
	for i, arch := range []string{"amd64", "arm64"} {
		l, err := mirrortest.Layer(uint64(i+1), 512)
		if err != nil {
			t.Fatal(err)
		}
		if imgs[arch], err = mirrortest.Image([]v1.Layer{l}, arch, nil); err != nil {
			t.Fatal(err)
		}
	}
	idx := mirrortest.MultiArch(imgs)
	ref, _ := name.ParseReference(reg+"/multi/app:v1", name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc/containers/registries.conf"), "[[registry]]\nlocation = \""+reg+"\"\ninsecure = true\n")
	writeFile(t, filepath.Join(root, "etc/containers/policy.json"), `{"default":[{"type":"insecureAcceptAnything"}]}`)
	for arch, img := range imgs {
		want, _ := img.Digest()
		vs, err := Verify(context.Background(), Options{Root: root, Arch: arch}, []string{reg + "/multi/app:v1"})
		if err != nil {
			t.Fatal(err)
		}
		if !vs[0].Accepted || vs[0].Digest != want.String() {
			t.Errorf("%s: %+v, want the %s instance accepted", arch, vs[0], want)
		}
	}
	vs, err := Verify(context.Background(), Options{Root: root, Arch: "s390x"}, []string{reg + "/multi/app:v1"})
	if err != nil || vs[0].Accepted || vs[0].Stage != StageFetch || !strings.Contains(vs[0].Reason, "s390x") {
		t.Errorf("a platform the list lacks: %v %+v", err, vs)
	}
}
