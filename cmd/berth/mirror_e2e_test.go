package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/mirror/mirrortest"
	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/berth-registry/berth/internal/testpeer"
)

// The disconnected story, end to end: mirror a release into a directory,
// push the directory to a berth serve on the "disconnected" side, render
// node policy from the printed ImageDigestMirrorSet with berth policy
// render, take the source registry down, and have skopeo pull every
// component by its original reference — which only the mirror can serve.
func TestMirrorDisconnectedStory(t *testing.T) {
	skopeo := testpeer.Need(t, "skopeo")
	src := mirrortest.StartCountingRegistry(t)
	rel, err := mirrortest.PushRelease(context.Background(), src.Host, mirrortest.ReleaseSpec{Version: "4.17.2", Components: 8, MultiArchEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	dst := servertest.Start(t, servertest.Options{})
	work := t.TempDir()
	usb := filepath.Join(work, "usb")
	to := dst + "/ocp/release"

	// Connected side: registry → directory.
	if _, errOut, err := runBerth(t, "mirror", "release", "--from", rel.Ref, "--to", to, "--to-dir", usb, "--progress", "none"); err != nil {
		t.Fatalf("to-dir: %v\n%s", err, errOut)
	}
	// The source is unreachable from now on.
	src.SetFail(func(*http.Request) (int, bool) { return http.StatusServiceUnavailable, true })

	// Disconnected side: directory → berth serve.
	manifests := filepath.Join(work, "cluster")
	out, errOut, err := runBerth(t, "mirror", "release", "--from-dir", usb, "--to", to, "--manifests-dir", manifests, "--progress", "none", "--dest-insecure")
	if err != nil {
		t.Fatalf("from-dir: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "imageContentSources:") {
		t.Fatalf("no install-config snippet printed:\n%s", out)
	}
	if got := mustDigest(t, to+":4.17.2-x86_64"); got != rel.Digest {
		t.Fatalf("release image at the mirror: %s, want %s", got, rel.Digest)
	}

	// Node policy from the printed IDMS; the mirror speaks plain HTTP.
	imageCfg := filepath.Join(work, "image.yaml")
	os.WriteFile(imageCfg, []byte("apiVersion: config.openshift.io/v1\nkind: Image\nmetadata:\n  name: cluster\nspec:\n  registrySources:\n    insecureRegistries:\n    - "+dst+"\n"), 0o644)
	root := filepath.Join(work, "node")
	if _, errOut, err := runBerth(t, "policy", "render", "--out", root, filepath.Join(manifests, "idms.yaml"), imageCfg); err != nil {
		t.Fatalf("policy render: %v\n%s", err, errOut)
	}
	conf := filepath.Join(root, "etc", "containers", "registries.conf")
	pol := filepath.Join(root, "etc", "containers", "policy.json")

	refs := []string{strings.Replace(rel.Ref, ":4.17.2-x86_64", "@"+rel.Digest, 1)}
	for _, c := range rel.Components {
		refs = append(refs, c.Ref)
	}
	for i, ref := range refs {
		dir := filepath.Join(work, "pulled", strings.ReplaceAll(ref[strings.LastIndex(ref, "@")+1:], ":", "-"))
		os.MkdirAll(filepath.Dir(dir), 0o755)
		cmd := exec.Command(skopeo, "--registries-conf", conf, "--policy", pol, "copy", "--all", "--preserve-digests",
			"--src-tls-verify=false", "docker://"+ref, "oci:"+dir+":pulled")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pull %d %s: %v\n%s", i, ref, err, b)
		}
	}
}
