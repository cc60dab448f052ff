package mirror_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/mirrortest"
	"github.com/berth-registry/berth/internal/testpeer"
)

func peer(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(testpeer.Need(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// CNCF Distribution as destination: digests kept, a second repository on
// the same registry gets its blobs by cross-repository mount.
func TestDistributionTarget(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dist := testpeer.StartDistribution(t)
	rel, err := mirrortest.PushRelease(context.Background(), src, mirrortest.ReleaseSpec{Components: 8, MultiArchEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	var pairs []string
	for _, comp := range rel.Components {
		pairs = append(pairs, comp.Ref, dist+"/ocp/release:"+comp.Name)
	}
	s := run(t, c, mirror.Options{}, pairs...)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	for _, comp := range rel.Components {
		if got := headDigest(t, dist+"/ocp/release:"+comp.Name); got.String() != comp.Digest {
			t.Errorf("%s: %s, want %s", comp.Name, got, comp.Digest)
		}
	}
	// Distribution to itself, another repository: nothing is uploaded.
	pairs = pairs[:0]
	for _, comp := range rel.Components {
		pairs = append(pairs, dist+"/ocp/release:"+comp.Name, dist+"/copy/release:"+comp.Name)
	}
	s = run(t, c, mirror.Options{}, pairs...)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if s.Bytes != 0 || s.BlobsMounted == 0 {
		t.Errorf("same-registry copy moved %d bytes, mounted %d blobs; want 0 bytes, all mounted", s.Bytes, s.BlobsMounted)
	}
}

// A directory Berth wrote is read by skopeo (oci:) and regctl (ocidir://),
// and Berth pushes a layout skopeo wrote, digests equal throughout.
func TestLayoutPeers(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dist := testpeer.StartDistribution(t)
	single := pushImage(t, src+"/app/single:v1", 71, 72)
	multi := pushIndex(t, src+"/team/multi:v2", 73)
	c := newClient(t)
	dir := t.TempDir()
	jobs := layoutJobs(t, c, dir, single.ref, multi.ref)
	if err := mirror.NewCopier(mirror.Options{}).Run(context.Background(), jobs).Err(); err != nil {
		t.Fatal(err)
	}

	t.Run("skopeo reads berth's layout", func(t *testing.T) {
		for name, p := range map[string]pushed{"app/single:v1": single, "team/multi:v2": multi} {
			peer(t, "skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
				"oci:"+dir+":"+name, "docker://"+dist+"/skopeo/"+name)
			if got := headDigest(t, dist+"/skopeo/"+name); got != p.digest {
				t.Errorf("%s via skopeo: %s, want %s", name, got, p.digest)
			}
		}
	})
	t.Run("regctl reads berth's layout", func(t *testing.T) {
		for tag, p := range map[string]pushed{"v1": single, "v2": multi} {
			if got := peer(t, "regctl", "image", "digest", "ocidir://"+dir+":"+tag); got != p.digest.String() {
				t.Errorf("regctl ocidir://DIR:%s = %s, want %s", tag, got, p.digest)
			}
		}
	})
	t.Run("berth pushes skopeo's layout", func(t *testing.T) {
		sdir := t.TempDir()
		peer(t, "skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false",
			"docker://"+multi.ref, "oci:"+sdir+":v2")
		sl, err := mirror.OpenLayout(sdir, false)
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := c.LayoutJobs(sl, dist+"/from-skopeo")
		if err != nil {
			t.Fatal(err)
		}
		if err := mirror.NewCopier(mirror.Options{}).Run(context.Background(), jobs).Err(); err != nil {
			t.Fatal(err)
		}
		if got := headDigest(t, dist+"/from-skopeo:v2"); got != multi.digest {
			t.Errorf("%s, want %s", got, multi.digest)
		}
	})
}
