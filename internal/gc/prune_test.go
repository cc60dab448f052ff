package gc_test

import (
	"context"
	"fmt"
	"github.com/berth-registry/berth/internal/gc"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func prunedDigests(ps []gc.Pruned) []digest.Digest {
	var out []digest.Digest
	for _, p := range ps {
		out = append(out, p.Digest)
	}
	slices.Sort(out)
	return out
}

// TestPrune keeps the newest revisions of each tag, the tagged manifests,
// children of kept indexes, referrers of kept subjects and digest-only
// pushes; it deletes older revisions, their exclusive children and their
// referrers; a dry run deletes nothing; and gc then frees their bytes.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var rev []digest.Digest
	for i := range 5 {
		rev = append(rev, e.image(t, "app", "latest", fmt.Sprintf("config %d", i), "", fmt.Sprintf("layer %d", i), "base"))
	}
	pinned := rev[0]
	e.manifest(t, "app", "stable", "application/vnd.oci.image.manifest.v1+json", mustBody(t, e, "app", pinned))
	sigOld := e.image(t, "app", "", "sig of rev1", rev[1], "sig layer 1")
	sigNew := e.image(t, "app", "", "sig of rev4", rev[4], "sig layer 4")
	digestOnly := e.image(t, "app", "", "mirrored", "", "mirrored layer")

	childOld := e.image(t, "app", "", "old amd64", "", "old amd64 layer")
	shared := e.image(t, "app", "", "arm64", "", "arm64 layer")
	idxOld := e.index(t, "app", "multi", childOld, shared)
	idxMid := e.index(t, "app", "multi", shared)
	childNew := e.image(t, "app", "", "new amd64", "", "new amd64 layer")
	idxNew := e.index(t, "app", "multi", childNew, shared)

	time.Sleep(50 * time.Millisecond)
	young := e.image(t, "app", "latest", "config young", "", "layer young")

	opts := gc.PruneOptions{KeepTagRevisions: 2, KeepYoungerThan: 40 * time.Millisecond}
	want := sorted(rev[1], rev[2], rev[3], sigOld, idxOld, childOld)
	names := map[digest.Digest]string{sigOld: "sigOld", sigNew: "sigNew", digestOnly: "digestOnly", childOld: "childOld", shared: "shared", idxOld: "idxOld", childNew: "childNew", idxNew: "idxNew", idxMid: "idxMid", young: "young"}
	for i, d := range rev {
		names[d] = fmt.Sprint("rev", i)
	}
	named := func(ds []digest.Digest) (out []string) {
		for _, d := range ds {
			out = append(out, names[d])
		}
		return out
	}
	for _, dry := range []bool{true, false} {
		opts.DryRun = dry
		res, err := gc.Prune(ctx, e.meta, opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := prunedDigests(res.Deleted); !slices.Equal(got, want) {
			t.Fatalf("dry=%v deleted %v\nwant %v", dry, named(got), named(want))
		}
		if res.Kept != 9 || len(res.Skipped) != 0 {
			t.Errorf("dry=%v kept = %d (want 9), skipped = %v", dry, res.Kept, res.Skipped)
		}
		for _, d := range want {
			_, err := e.meta.GetManifest(ctx, "app", d)
			if (err == nil) != dry {
				t.Errorf("dry=%v: manifest %s present = %v", dry, d, err == nil)
			}
		}
	}
	for _, d := range []digest.Digest{pinned, rev[4], sigNew, digestOnly, shared, idxMid, idxNew, childNew, young} {
		if err := e.pullable(t, "app", d); err != nil {
			t.Errorf("kept %s not pullable: %v", d, err)
		}
	}
	// The pruned revisions' own bytes go at the next gc.
	time.Sleep(2 * grace)
	res, err := gc.Collect(ctx, e.blobs, e.meta, gc.Options{Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range append(want, digest.FromString("layer 1"), digest.FromString("sig layer 1"), digest.FromString("old amd64 layer")) {
		if !slices.Contains(digests(res.Deleted), d) {
			t.Errorf("gc after prune kept %s", d)
		}
	}
	if slices.Contains(digests(res.Deleted), digest.FromString("base")) {
		t.Error("gc deleted a layer kept revisions share")
	}
	again, err := gc.Prune(ctx, e.meta, opts)
	if err != nil || len(again.Deleted) != 0 {
		t.Fatalf("second prune = %+v, %v", again, err)
	}
}

// TestPruneDefaults: with the defaults everything just pushed is young.
func TestPruneDefaults(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.image(t, "r", "t", fmt.Sprintf("c%d", i), "")
	}
	res, err := gc.Prune(context.Background(), e.meta, gc.PruneOptions{})
	if err != nil || len(res.Deleted) != 0 || res.Kept != 5 {
		t.Fatalf("prune with defaults = %+v, %v", res, err)
	}
}

// TestPruneRecheck: a manifest tagged between the plan and its deletion
// stays (the plan is made from a snapshot; the delete re-checks).
func TestPruneRecheck(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	old := e.image(t, "r", "t", "old", "")
	e.image(t, "r", "t", "new", "")
	time.Sleep(20 * time.Millisecond)
	g, err := e.meta.ReadRepoGraph(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	plan := gc.PlanPrune("r", g, 1, time.Now())
	if got := prunedDigests(plan); !slices.Equal(got, []digest.Digest{old}) {
		t.Fatalf("plan = %v", got)
	}
	e.manifest(t, "r", "again", "application/vnd.oci.image.manifest.v1+json", mustBody(t, e, "r", old))
	deleted, skipped, err := gc.DeletePlan(ctx, e.meta, plan)
	if err != nil || len(deleted) != 0 || len(skipped) != 1 {
		t.Fatalf("deleted %v skipped %v err %v", deleted, skipped, err)
	}
	if err := e.pullable(t, "r", old); err != nil {
		t.Fatal(err)
	}
}

func mustBody(t *testing.T, e *env, repo string, d digest.Digest) string {
	t.Helper()
	_, raw, err := e.reg.GetManifest(context.Background(), repo, string(d))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
