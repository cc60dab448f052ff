package mirror_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/mirrortest"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushed is a test image: its reference and digest at the source.
type pushed struct {
	ref    string
	digest v1.Hash
	sig    v1.Hash // the referrer pushed for it, if any
}

// pushImage pushes a single-platform image built from seeds to ref.
func pushImage(t *testing.T, ref string, seeds ...uint64) pushed {
	t.Helper()
	var layers []v1.Layer
	for _, s := range seeds {
		l, err := mirrortest.Layer(s, 4<<10)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mirrortest.Image(layers, "amd64", nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return pushed{ref: ref, digest: d}
}

// pushIndex pushes a linux/amd64+arm64 index to ref.
func pushIndex(t *testing.T, ref string, seed uint64) pushed {
	t.Helper()
	imgs := map[string]v1.Image{}
	for i, arch := range []string{"amd64", "arm64"} {
		l, err := mirrortest.Layer(seed+uint64(i), 4<<10)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mirrortest.Image([]v1.Layer{l}, arch, nil)
		if err != nil {
			t.Fatal(err)
		}
		imgs[arch] = img
	}
	idx := mirrortest.MultiArch(imgs)
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return pushed{ref: ref, digest: d}
}

func sign(t *testing.T, p *pushed) {
	t.Helper()
	r, err := name.ParseReference(p.ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(r)
	if err != nil {
		t.Fatal(err)
	}
	p.sig, err = mirrortest.Signature(context.Background(), r.Context(), *desc, "signed "+p.ref)
	if err != nil {
		t.Fatal(err)
	}
}

func headDigest(t *testing.T, ref string) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r)
	if err != nil {
		t.Fatalf("HEAD %s: %v", ref, err)
	}
	return d.Digest
}

func newClient(t *testing.T) *mirror.Client {
	t.Helper()
	c, err := mirror.NewClient(mirror.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func run(t *testing.T, c *mirror.Client, opts mirror.Options, pairs ...string) *mirror.Summary {
	t.Helper()
	var jobs []mirror.Job
	for i := 0; i < len(pairs); i += 2 {
		j, err := c.ImageJob(pairs[i], pairs[i+1])
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	s := mirror.NewCopier(opts).Run(context.Background(), jobs)
	return s
}

func TestCopyRegistryToRegistry(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	single := pushImage(t, src+"/app/single:v1", 1, 2, 3)
	sign(t, &single)
	multi := pushIndex(t, src+"/app/multi:v2", 10)
	sign(t, &multi)

	tests := []struct {
		name     string
		src, dst string
		want     v1.Hash
		wantRef  string // where to look at the destination
		sig      v1.Hash
		subject  v1.Hash
	}{
		{"single by tag", single.ref, dst + "/mirror/single", single.digest, dst + "/mirror/single:v1", single.sig, single.digest},
		{"index by digest keeps its digest", src + "/app/multi@" + multi.digest.String(), dst + "/mirror/multi:pinned", multi.digest, dst + "/mirror/multi:pinned", multi.sig, multi.digest},
		{"index by tag, tag renamed", multi.ref, dst + "/other/multi:renamed", multi.digest, dst + "/other/multi:renamed", multi.sig, multi.digest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t)
			s := run(t, c, mirror.Options{}, tc.src, tc.dst)
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			if got := headDigest(t, tc.wantRef); got != tc.want {
				t.Errorf("destination digest %s, want %s", got, tc.want)
			}
			if s.Results[0].Digest != tc.want.String() {
				t.Errorf("result digest %s, want %s", s.Results[0].Digest, tc.want)
			}
			// The signature travels both ways it was attached.
			repo := tc.wantRef[:strings.LastIndex(tc.wantRef, ":")]
			if got := headDigest(t, repo+"@"+tc.sig.String()); got != tc.sig {
				t.Errorf("referrer %s not copied", tc.sig)
			}
			if got := headDigest(t, repo+":sha256-"+tc.subject.Hex+".sig"); got != tc.sig {
				t.Errorf("cosign-style tag not copied")
			}
			r, _ := name.NewRepository(repo)
			idx, err := remote.Referrers(r.Digest(tc.subject.String()))
			if err != nil {
				t.Fatal(err)
			}
			im, _ := idx.IndexManifest()
			if len(im.Manifests) != 1 || im.Manifests[0].Digest != tc.sig {
				t.Errorf("destination referrers API lists %v, want [%s]", im.Manifests, tc.sig)
			}
			// A second run finds everything in place and moves nothing.
			again := run(t, c, mirror.Options{}, tc.src, tc.dst)
			if err := again.Err(); err != nil {
				t.Fatal(err)
			}
			if again.Bytes != 0 || again.BlobsCopied != 0 || !again.Results[0].UpToDate {
				t.Errorf("second run moved %d bytes, %d blobs (upToDate=%v); want nothing", again.Bytes, again.BlobsCopied, again.Results[0].UpToDate)
			}
		})
	}
}

func TestNoReferrers(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	p := pushImage(t, src+"/app/x:v1", 7)
	sign(t, &p)
	s := run(t, newClient(t), mirror.Options{NoReferrers: true}, p.ref, dst+"/app/x")
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if s.Referrers != 0 {
		t.Errorf("copied %d referrers with NoReferrers", s.Referrers)
	}
	r, _ := name.ParseReference(dst + "/app/x@" + p.sig.String())
	if _, err := remote.Head(r); err == nil {
		t.Error("referrer copied with NoReferrers")
	}
}

func TestPlatformFilterSaysNewDigest(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	p := pushIndex(t, src+"/app/multi:v1", 30)
	arm, _ := mirror.ParsePlatform("linux/arm64")
	s := run(t, newClient(t), mirror.Options{Platforms: []v1.Platform{arm}}, p.ref, dst+"/app/multi")
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	r := s.Results[0]
	if r.Digest == p.digest.String() || r.SourceDigest != p.digest.String() {
		t.Fatalf("digest %s source %s; want a new digest and source %s", r.Digest, r.SourceDigest, p.digest)
	}
	if len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "NEW digest") {
		t.Errorf("notes %q do not warn about the new digest", r.Notes)
	}
	if got := headDigest(t, dst+"/app/multi:v1"); got.String() != r.Digest {
		t.Errorf("destination has %s, result says %s", got, r.Digest)
	}
}

// Every unique blob crosses the wire once, however many images share it.
func TestReleaseSharedBlobsMoveOnce(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartCountingRegistry(t)
	rel, err := mirrortest.PushRelease(context.Background(), src, mirrortest.ReleaseSpec{Components: 12, LayersPerImage: 4, MultiArchEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	var pairs []string
	for _, comp := range rel.Components {
		pairs = append(pairs, comp.Ref, dst.Host+"/ocp/release:"+comp.Name)
	}
	pairs = append(pairs, rel.Ref, dst.Host+"/ocp/release:release")
	s := run(t, c, mirror.Options{Jobs: 6, BlobJobs: 8}, pairs...)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if got := dst.Uploaded(); got != rel.UniqueBytes {
		t.Errorf("destination received %d blob bytes, unique content is %d", got, rel.UniqueBytes)
	}
	if s.BlobsCopied != rel.UniqueBlobs {
		t.Errorf("copied %d blobs, %d unique", s.BlobsCopied, rel.UniqueBlobs)
	}
	if s.BlobsShared == 0 {
		t.Error("no blob was shared between images")
	}
	for _, comp := range rel.Components {
		if got := headDigest(t, dst.Host+"/ocp/release:"+comp.Name); got.String() != comp.Digest {
			t.Errorf("%s: %s, want %s", comp.Name, got, comp.Digest)
		}
	}
}

// Transient failures (503 with Retry-After, dropped connections) are
// retried; the run succeeds without the user doing anything.
func TestRetriesTransientFailures(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartCountingRegistry(t)
	p := pushImage(t, src+"/app/r:v1", 41, 42, 43)
	var fails atomic.Int32
	dst.SetFail(func(r *http.Request) (int, bool) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && fails.Add(1) <= 3 {
			return http.StatusServiceUnavailable, true
		}
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") && fails.Add(1) <= 5 {
			return http.StatusTooManyRequests, true
		}
		return 0, false
	})
	start := time.Now()
	s := run(t, newClient(t), mirror.Options{Retry: mirror.RetryPolicy{Attempts: 6, Base: time.Millisecond, Max: 10 * time.Millisecond}}, p.ref, dst.Host+"/app/r")
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if fails.Load() < 4 {
		t.Errorf("only %d requests were failed; the injector did not run", fails.Load())
	}
	if got := headDigest(t, dst.Host+"/app/r:v1"); got != p.digest {
		t.Errorf("digest %s, want %s", got, p.digest)
	}
	t.Logf("with retries: %s", time.Since(start))
}

// A permanent failure fails that image only and names it.
func TestFailureIsPerImage(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	ok := pushImage(t, src+"/app/ok:v1", 51)
	s := run(t, newClient(t), mirror.Options{}, ok.ref, dst+"/app/ok", src+"/app/missing:v1", dst+"/app/missing")
	if s.Failed != 1 {
		t.Fatalf("failed=%d, want 1", s.Failed)
	}
	err := s.Err()
	if err == nil || !strings.Contains(err.Error(), "app/missing:v1") {
		t.Errorf("error %v does not name the failed image", err)
	}
	if got := headDigest(t, dst+"/app/ok:v1"); got != ok.digest {
		t.Errorf("the good image was not copied")
	}
}

// layoutJobs opens (creating) an OCI layout in dir and returns the jobs that
// copy refs into it.
func layoutJobs(t *testing.T, c *mirror.Client, dir string, refs ...string) []mirror.Job {
	t.Helper()
	l, err := mirror.OpenLayout(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	var jobs []mirror.Job
	for _, ref := range refs {
		j, err := c.DirJob(ref, l, "")
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	return jobs
}
