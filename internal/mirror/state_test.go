package mirror_test

import (
	"context"
	"testing"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/mirrortest"
)

// The state of a registry lists every blob and manifest of what it holds
// (referrers included), and --since with it ships only what is missing.
func TestRegistryStateSince(t *testing.T) {
	ctx := context.Background()
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	c := newClient(t)
	spec := mirrortest.ReleaseSpec{Components: 6, MultiArchEvery: 3, Seed: 21}
	v1rel, err := mirrortest.PushRelease(ctx, src, spec)
	if err != nil {
		t.Fatal(err)
	}
	signed := pushImage(t, src+"/app/signed:v1", 211, 212)
	sign(t, &signed)
	pairs := []string{v1rel.Ref, dst + "/ocp/release:release"}
	for _, comp := range v1rel.Components {
		pairs = append(pairs, comp.Ref, dst+"/ocp/release:"+comp.Name)
	}
	pairs = append(pairs, signed.ref, dst+"/app/signed:v1")
	if err := run(t, c, mirror.Options{}, pairs...).Err(); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		refs []string
		want []string
		not  []string
	}{
		{"empty repository", []string{dst + "/nothing/here"}, nil, []string{v1rel.Components[0].Digest}},
		{"one tag", []string{dst + "/app/signed:v1"}, []string{signed.digest.String(), signed.sig.String()}, []string{v1rel.Components[0].Digest}},
		{"whole repositories", []string{dst + "/ocp/release", dst + "/app/signed"}, func() []string {
			out := []string{signed.sig.String(), v1rel.Digest}
			for d := range v1rel.Blobs {
				out = append(out, d)
			}
			for _, comp := range v1rel.Components {
				out = append(out, comp.Digest)
			}
			return out
		}(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := c.RegistryState(ctx, tc.refs)
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, d := range st.Blobs {
				have[d] = true
			}
			for _, d := range tc.want {
				if !have[d] {
					t.Errorf("state lacks %s", d)
				}
			}
			for _, d := range tc.not {
				if have[d] {
					t.Errorf("state lists %s", d)
				}
			}
		})
	}

	// The next release through a directory, since the registry's state.
	state, err := c.RegistryState(ctx, []string{dst + "/ocp/release"})
	if err != nil {
		t.Fatal(err)
	}
	spec.Components, spec.Version = 9, "4.99.2"
	v2rel, err := mirrortest.PushRelease(ctx, src, spec)
	if err != nil {
		t.Fatal(err)
	}
	l, err := mirror.OpenLayout(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	l.AssumePresent(state)
	var jobs []mirror.Job
	for _, comp := range v2rel.Components {
		j, err := c.DirJob(comp.Ref, l, "ocp/release:"+comp.Name)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	if err := mirror.NewCopier(mirror.Options{}).Run(ctx, jobs).Err(); err != nil {
		t.Fatal(err)
	}
	shipped, _ := l.State()
	for _, d := range shipped.Blobs {
		if _, old := v1rel.Blobs[d]; old {
			t.Errorf("blob %s shipped again though the registry has it", d)
		}
	}
	jobs, err = c.LayoutJobs(l, dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := mirror.NewCopier(mirror.Options{}).Run(ctx, jobs).Err(); err != nil {
		t.Fatal(err)
	}
	for _, comp := range v2rel.Components {
		if got := headDigest(t, dst+"/ocp/release:"+comp.Name); got.String() != comp.Digest {
			t.Errorf("%s: %s, want %s", comp.Name, got, comp.Digest)
		}
	}
	t.Logf("registry state %d digests; second directory %d files", len(state.Blobs), len(shipped.Blobs))
}
