package mirror_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/mirrortest"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// registry → dir → registry keeps every digest, referrers included.
func TestLayoutRoundTrip(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	single := pushImage(t, src+"/app/single:v1", 61, 62)
	sign(t, &single)
	multi := pushIndex(t, src+"/team/multi:v2", 63)
	sign(t, &multi)
	c := newClient(t)
	dir := t.TempDir()
	jobs := layoutJobs(t, c, dir, single.ref, multi.ref)
	s := mirror.NewCopier(mirror.Options{}).Run(context.Background(), jobs)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if s.Referrers != 2 {
		t.Errorf("%d referrers written to the directory, want 2", s.Referrers)
	}
	for _, f := range []string{"oci-layout", "index.json", mirror.CatalogFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}

	back, err := mirror.OpenLayout(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err = c.LayoutJobs(back, dst+"/mirror")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 {
		t.Fatalf("%d jobs from the layout, want 2 (referrers travel with their subjects)", len(jobs))
	}
	s = mirror.NewCopier(mirror.Options{}).Run(context.Background(), jobs)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]v1.Hash{
		dst + "/mirror/app/single:v1":                                  single.digest,
		dst + "/mirror/team/multi:v2":                                  multi.digest,
		dst + "/mirror/app/single@" + single.sig.String():              single.sig,
		dst + "/mirror/team/multi:sha256-" + multi.digest.Hex + ".sig": multi.sig,
	} {
		if got := headDigest(t, ref); got != want {
			t.Errorf("%s: %s, want %s", ref, got, want)
		}
	}
	r, _ := name.NewRepository(dst + "/mirror/app/single")
	idx, err := remote.Referrers(r.Digest(single.digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	if im, _ := idx.IndexManifest(); len(im.Manifests) != 1 {
		t.Errorf("referrers at destination: %v", im.Manifests)
	}
}

// cancelAfter cancels the run once n blobs finished: an interrupted copy.
type cancelAfter struct {
	n      int64
	done   atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Observe(e mirror.Event) {
	if e.Kind == mirror.BlobDone && c.done.Add(1) == c.n {
		c.cancel()
	}
}

// An interrupted run, rerun, moves only what is missing — into a directory
// and into a registry.
func TestInterruptedRunResumes(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	rel, err := mirrortest.PushRelease(context.Background(), src, mirrortest.ReleaseSpec{Components: 16, LayersPerImage: 4, LayerSize: 32 << 10, MultiArchEvery: 5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	dstReg := mirrortest.StartCountingRegistry(t)
	dir := t.TempDir()

	tests := []struct {
		name    string
		target  func(t *testing.T) (mirror.Target, string)
		present func(t *testing.T, digest string) bool
	}{
		{"directory", func(t *testing.T) (mirror.Target, string) {
			l, err := mirror.OpenLayout(dir, true)
			if err != nil {
				t.Fatal(err)
			}
			return l, "ocp/release"
		}, func(t *testing.T, d string) bool {
			h, _ := v1.NewHash(d)
			_, err := os.Stat(filepath.Join(dir, "blobs", h.Algorithm, h.Hex))
			return err == nil
		}},
		{"registry", func(t *testing.T) (mirror.Target, string) {
			r, err := c.Registry(dstReg.Host)
			if err != nil {
				t.Fatal(err)
			}
			return r, "ocp/release"
		}, func(t *testing.T, d string) bool {
			return blobExists(t, dstReg.Host, "ocp/release", d)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jobsFor := func() []mirror.Job {
				tgt, repo := tc.target(t)
				var jobs []mirror.Job
				for _, comp := range rel.Components {
					srepo, sref, _ := mirror.ParseRef(comp.Ref, false)
					s, _ := c.Registry(srepo.RegistryStr())
					jobs = append(jobs, mirror.Job{Source: s, SrcRepo: srepo.RepositoryStr(), SrcRef: sref, Target: tgt, DstRepo: repo, DstTag: comp.Name})
				}
				srepo, sref, _ := mirror.ParseRef(rel.Ref, false)
				s, _ := c.Registry(srepo.RegistryStr())
				return append(jobs, mirror.Job{Source: s, SrcRepo: srepo.RepositoryStr(), SrcRef: sref, Target: tgt, DstRepo: repo, DstTag: "release"})
			}
			ctx, cancel := context.WithCancel(context.Background())
			obs := &cancelAfter{n: int64(rel.UniqueBlobs / 2), cancel: cancel}
			first := mirror.NewCopier(mirror.Options{Jobs: 2, BlobJobs: 2, Observer: obs}).Run(ctx, jobsFor())
			cancel()
			if first.Failed == 0 {
				t.Fatal("the first run was not interrupted")
			}
			var have, missingBytes int64
			compBlobs := rel.Blobs
			for d, n := range compBlobs {
				if tc.present(t, d) {
					have++
				} else {
					missingBytes += n
				}
			}
			if have == 0 || have == int64(len(compBlobs)) {
				t.Fatalf("after the interruption %d of %d blobs are present; want some", have, len(compBlobs))
			}
			second := mirror.NewCopier(mirror.Options{}).Run(context.Background(), jobsFor())
			if err := second.Err(); err != nil {
				t.Fatal(err)
			}
			// An upload cancelled after its last byte may still be committed
			// by the destination after the count above, so the rerun may
			// find one more blob present; it must never move more than was
			// missing, nor nothing at all.
			if second.Bytes > missingBytes || second.Bytes == 0 {
				t.Errorf("rerun moved %d bytes; %d were missing", second.Bytes, missingBytes)
			}
			for d := range compBlobs {
				if !tc.present(t, d) {
					t.Errorf("blob %s still missing after the rerun", d)
				}
			}
			t.Logf("interrupted after %d of %d blobs; rerun moved %d bytes (%d blobs)", have, len(compBlobs), second.Bytes, second.BlobsCopied)
		})
	}
}

func blobExists(t *testing.T, host, repo, d string) bool {
	t.Helper()
	resp, err := http.Head("http://" + host + "/v2/" + repo + "/blobs/" + d)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// --since: the second directory carries only what the receiver lacks, and
// pushing it completes every image at the receiver.
func TestIncrementalSince(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	c := newClient(t)
	toDir := func(rel *mirrortest.Release, dir string, since *mirror.State) *mirror.Layout {
		l, err := mirror.OpenLayout(dir, true)
		if err != nil {
			t.Fatal(err)
		}
		if since != nil {
			l.AssumePresent(since)
		}
		var jobs []mirror.Job
		for _, comp := range rel.Components {
			j, err := c.DirJob(comp.Ref, l, "ocp/release:"+comp.Name)
			if err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, j)
		}
		if err := mirror.NewCopier(mirror.Options{}).Run(context.Background(), jobs).Err(); err != nil {
			t.Fatal(err)
		}
		return l
	}
	push := func(l *mirror.Layout) {
		jobs, err := c.LayoutJobs(l, dst)
		if err != nil {
			t.Fatal(err)
		}
		if err := mirror.NewCopier(mirror.Options{}).Run(context.Background(), jobs).Err(); err != nil {
			t.Fatal(err)
		}
	}
	spec := mirrortest.ReleaseSpec{Components: 6, MultiArchEvery: 4, Seed: 9}
	v1rel, err := mirrortest.PushRelease(context.Background(), src, spec)
	if err != nil {
		t.Fatal(err)
	}
	first := toDir(v1rel, t.TempDir(), nil)
	push(first)
	state, err := first.State()
	if err != nil {
		t.Fatal(err)
	}
	spec.Components, spec.Version = 9, "4.99.1"
	v2rel, err := mirrortest.PushRelease(context.Background(), src, spec)
	if err != nil {
		t.Fatal(err)
	}
	second := toDir(v2rel, t.TempDir(), state)
	st2, _ := second.State()
	for _, d := range st2.Blobs {
		for _, old := range state.Blobs {
			if d == old {
				if _, isBlob := v1rel.Blobs[d]; isBlob {
					t.Errorf("blob %s shipped again", d)
				}
			}
		}
	}
	push(second)
	for _, comp := range v2rel.Components {
		if got := headDigest(t, dst+"/ocp/release:"+comp.Name); got.String() != comp.Digest {
			t.Errorf("%s: %s, want %s", comp.Name, got, comp.Digest)
		}
	}
	t.Logf("first directory %d files, second %d", len(state.Blobs), len(st2.Blobs))
}
