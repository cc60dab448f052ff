package gc_test

import (
	"context"
	"github.com/berth-registry/berth/internal/gc"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/berth-registry/berth/internal/storage"
	"github.com/opencontainers/go-digest"
)

const grace = 100 * time.Millisecond

func digests(bs []gc.Blob) []digest.Digest {
	var out []digest.Digest
	for _, b := range bs {
		out = append(out, b.Digest)
	}
	slices.Sort(out)
	return out
}

func sorted(ds ...digest.Digest) []digest.Digest {
	slices.Sort(ds)
	return ds
}

func exists(t *testing.T, e *env, d digest.Digest) bool {
	t.Helper()
	_, err := e.blobs.Stat(context.Background(), d)
	if err != nil && err != storage.ErrNotFound {
		t.Fatal(err)
	}
	return err == nil
}

// TestCollect removes stale links and unreferenced bytes (deleted
// manifests, orphan uploads, crash leftovers), keeps everything reachable,
// deletes nothing in a dry run, and leaves the images pullable over HTTP.
func TestCollect(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	img := e.image(t, "a", "v1", "config-a", "", "layer-shared", "layer-a")
	e.blob(t, "b", "layer-shared") // linked in b, referenced only in a
	orphan := e.blob(t, "a", "orphan upload")
	gone := e.image(t, "a", "", "config-gone", "", "layer-gone")
	if err := e.reg.DeleteManifest(ctx, "a", string(gone)); err != nil {
		t.Fatal(err)
	}
	crash := e.leftover(t, "crash leftover")
	time.Sleep(2 * grace)

	wantLinks := []string{"a " + string(digest.FromString("config-gone")), "a " + string(digest.FromString("layer-gone")),
		"a " + string(orphan), "b " + string(digest.FromString("layer-shared"))}
	slices.Sort(wantLinks)
	wantDeleted := sorted(orphan, crash, gone, digest.FromString("config-gone"), digest.FromString("layer-gone"))

	for _, dry := range []bool{true, false} {
		res, err := gc.Collect(ctx, e.blobs, e.meta, gc.Options{Grace: grace, DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		var links []string
		for _, l := range res.Links {
			links = append(links, l.Repo+" "+string(l.Digest))
		}
		slices.Sort(links)
		if !slices.Equal(links, wantLinks) {
			t.Errorf("dry=%v links = %v\nwant %v", dry, links, wantLinks)
		}
		if got := digests(res.Deleted); !slices.Equal(got, wantDeleted) {
			t.Errorf("dry=%v deleted = %v\nwant %v", dry, got, wantDeleted)
		}
		if res.BytesFreed == 0 || res.Scanned != 9 {
			t.Errorf("dry=%v bytesFreed = %d, scanned = %d (want 9)", dry, res.BytesFreed, res.Scanned)
		}
		for _, d := range wantDeleted {
			if exists(t, e, d) == !dry {
				t.Errorf("dry=%v: %s exists = %v", dry, d, !dry)
			}
		}
	}
	if err := e.pullable(t, "a", img); err != nil {
		t.Fatalf("kept image not pullable: %v", err)
	}
	again, err := gc.Collect(ctx, e.blobs, e.meta, gc.Options{Grace: grace})
	if err != nil || len(again.Links)+len(again.Deleted) != 0 {
		t.Fatalf("second run = %+v, %v; want a no-op", again, err)
	}

	// The same root served over HTTP still answers every pull of the image.
	addr := servertest.Start(t, servertest.Options{Root: e.root})
	for _, path := range []string{"/v2/a/manifests/v1", "/v2/a/blobs/" + string(digest.FromString("layer-a")), "/v2/a/blobs/" + string(digest.FromString("layer-shared"))} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d after gc", path, resp.StatusCode)
		}
	}
	resp, err := http.Head("http://" + addr + "/v2/b/blobs/" + string(digest.FromString("layer-shared")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("stale link of b still served: %d", resp.StatusCode)
	}
}

func TestCollectFreshRootIsNoop(t *testing.T) {
	e := newEnv(t)
	res, err := gc.Collect(context.Background(), e.blobs, e.meta, gc.Options{})
	if err != nil || res.Scanned != 0 || len(res.Links)+len(res.Deleted) != 0 {
		t.Fatalf("fresh root: %+v, %v", res, err)
	}
}

// TestCollectGrace: young bytes and links survive, and so do old ones that
// are re-pushed just before a run or re-pushed or linked (a mount) between
// its mark and its sweep.
func TestCollectGrace(t *testing.T) {
	ctx := context.Background()
	// Longer than the others': the re-push before the run must still be
	// within the grace when the run starts, even on a loaded machine.
	const grace = time.Second
	e := newEnv(t)
	repushedBefore := e.blob(t, "r", "re-pushed before")
	repushedDuring := e.leftover(t, "re-pushed during")
	mountedDuring := e.leftover(t, "linked during")
	old := e.leftover(t, "old")
	time.Sleep(2 * grace)
	e.blob(t, "r", "re-pushed before")
	young := e.blob(t, "r", "young")

	res, err := gc.Collect(ctx, e.blobs, e.meta, gc.WithAfterMark(gc.Options{Grace: grace}, func() {
		e.blob(t, "r", "re-pushed during")
		if err := e.meta.LinkBlob(ctx, "r", mountedDuring, 13); err != nil {
			t.Error(err)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := digests(res.Deleted); !slices.Equal(got, []digest.Digest{old}) {
		t.Fatalf("deleted %v, want only %s", got, old)
	}
	if res.Rescued != 2 || res.Young != 0 {
		t.Errorf("rescued = %d (want 2), young = %d", res.Rescued, res.Young)
	}
	for _, d := range []digest.Digest{repushedBefore, repushedDuring, mountedDuring, young} {
		if !exists(t, e, d) {
			t.Errorf("%s was deleted", d)
		}
	}
	if len(res.Links) != 0 {
		t.Errorf("fresh links removed: %v", res.Links)
	}
	// Unreferenced but young: spared, and counted.
	res, err = gc.Collect(ctx, e.blobs, e.meta, gc.Options{Grace: time.Hour})
	if err != nil || len(res.Deleted) != 0 {
		t.Fatalf("with a long grace: %+v, %v", res, err)
	}
	if _, err := gc.Collect(ctx, e.blobs, e.meta, gc.Options{Grace: -1}); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("negative grace: %v", err)
	}
}
