package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/internal/testpeer"
)

// TestPolicyE2ESkopeoPullsThroughRenderedFiles renders registries.conf and
// policy.json with berth policy render and has skopeo — the container
// runtime's own client — use them: a pull by the source's name is served by
// the mirror on loopback, a blocked scope is refused by the runtime, and a
// reference outside allowedRegistries is refused by the runtime's policy even
// when it names the mirror directly.
func TestPolicyE2ESkopeoPullsThroughRenderedFiles(t *testing.T) {
	skopeo := testpeer.Need(t, "skopeo")
	reg := testpeer.StartDistribution(t) // 127.0.0.1:PORT, plain HTTP

	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"mirror/org/app:v1", "private/app:v1"} {
		ref, err := name.ParseReference(reg+"/"+repo, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatalf("seeding %s: %v", ref, err)
		}
	}

	dir := t.TempDir()
	// The source host does not exist (.invalid never resolves): only the mirror can serve.
	writeFile(t, filepath.Join(dir, "blocked", "image.yaml"), `apiVersion: config.openshift.io/v1
kind: Image
metadata: {name: cluster}
spec:
  registrySources:
    insecureRegistries: ["`+reg+`"]
    blockedRegistries: ["`+reg+`/private"]
---
apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata: {name: org}
spec:
  imageDigestMirrors:
  - source: source.invalid/org
    mirrors: ["`+reg+`/mirror/org"]
---
apiVersion: config.openshift.io/v1
kind: ImageTagMirrorSet
metadata: {name: org-tags}
spec:
  imageTagMirrors:
  - source: tags.invalid/org
    mirrors: ["`+reg+`/mirror/org"]
`)
	rootBlocked := filepath.Join(dir, "root-blocked")
	if _, _, err := runBerth(t, "policy", "render", "--out", rootBlocked, filepath.Join(dir, "blocked")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "allowed", "image.yaml"), `apiVersion: config.openshift.io/v1
kind: Image
metadata: {name: cluster}
spec:
  registrySources:
    insecureRegistries: ["`+reg+`"]
    allowedRegistries: [source.invalid]
---
apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata: {name: org}
spec:
  imageDigestMirrors:
  - source: source.invalid/org
    mirrors: ["`+reg+`/mirror/org"]
`)
	rootAllowed := filepath.Join(dir, "root-allowed")
	if _, _, err := runBerth(t, "policy", "render", "--out", rootAllowed, filepath.Join(dir, "allowed")); err != nil {
		t.Fatal(err)
	}

	copyWith := func(root, src string) (string, error) {
		cmd := exec.Command(skopeo,
			"--registries-conf", filepath.Join(root, "etc/containers/registries.conf"),
			"--policy", filepath.Join(root, "etc/containers/policy.json"),
			"copy", "--retry-times", "0", "docker://"+src, "oci:"+filepath.Join(t.TempDir(), "layout")+":x")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	explain := func(root, ref string) string {
		out, _, err := runBerth(t, "policy", "explain", "--root", root, ref)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	byDigest := "source.invalid/org/app@" + digest.String()
	for _, c := range []struct {
		name, root, ref string
		ok              bool
		refusal         string // the runtime's own words
		explain         string // what berth policy explain says about it
	}{
		{"digest pull by the source's name is served by the mirror", rootBlocked, byDigest, true, "", "result: pullable"},
		{"tag pull by the source's name through a tag mirror", rootBlocked, "tags.invalid/org/app:v1", true, "", "result: pullable"},
		{"tag pull skips the digest-only mirror and fails at the unreachable source", rootBlocked, "source.invalid/org/app:v1", false, "pinging container registry source.invalid", "skipped, digest-only mirror; the reference is by tag"},
		{"blocked scope is refused by the runtime", rootBlocked, reg + "/private/app:v1", false, "is blocked in", "result: refused — every source that would be tried is blocked"},
		{"allowed source is served by the mirror", rootAllowed, byDigest, true, "", "result: pullable"},
		{"the mirror named directly is not allowed", rootAllowed, reg + "/mirror/org/app:v1", false, "rejected by policy", "result: refused by policy.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if ex := explain(c.root, c.ref); !strings.Contains(ex, c.explain) {
				t.Errorf("explain does not say %q:\n%s", c.explain, ex)
			}
			out, err := copyWith(c.root, c.ref)
			switch {
			case c.ok && err != nil:
				t.Fatalf("skopeo copy %s failed: %v\n%s", c.ref, err, out)
			case !c.ok && err == nil:
				t.Fatalf("skopeo copy %s succeeded; want refusal %q\n%s", c.ref, c.refusal, out)
			case !c.ok && !strings.Contains(out, c.refusal):
				t.Fatalf("skopeo copy %s: refusal does not say %q:\n%s", c.ref, c.refusal, out)
			}
		})
	}
}
