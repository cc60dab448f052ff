package metadatatest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/metadata"
	"github.com/opencontainers/go-digest"
)

// eventQueue checks that events commit and roll back with the change they
// describe, come out of each endpoint's queue in order, leave it only when
// acknowledged, and that one holder at a time leases an endpoint.
func eventQueue(t *testing.T, open NewStore) {
	ctx := context.Background()
	s := open(t)
	ev := func(endpoint, repo, body string) metadata.Event {
		return metadata.Event{Endpoint: endpoint, Repo: repo, Body: []byte(body)}
	}
	pending := func(endpoint string) []string {
		t.Helper()
		q, err := s.PendingEvents(ctx, endpoint, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range q {
			out = append(out, string(e.Body))
		}
		return out
	}
	blob := digest.FromString("layer")
	man := metadata.Manifest{Repo: "a/b", Digest: digest.FromString("m"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 3}

	// A refused change queues nothing.
	var missing *metadata.MissingError
	if err := s.PutManifest(ctx, man, []digest.Digest{blob}, nil, "v1", ev("hook", "a/b", `"refused push"`)); !errors.As(err, &missing) {
		t.Fatalf("PutManifest with a missing blob: %v", err)
	}
	if err := s.DeleteManifest(ctx, "a/b", man.Digest, ev("hook", "a/b", `"refused delete"`)); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("DeleteManifest of nothing: %v", err)
	}
	if err := s.DeleteTag(ctx, "a/b", "nope", ev("hook", "a/b", `"refused tag delete"`)); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("DeleteTag of nothing: %v", err)
	}
	if err := s.UnlinkBlob(ctx, "a/b", blob, ev("hook", "a/b", `"refused unlink"`)); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("UnlinkBlob of nothing: %v", err)
	}
	if got := pending("hook"); len(got) != 0 {
		t.Fatalf("refused changes queued events: %q", got)
	}

	// Changes queue their events, per endpoint, in order; a push that
	// changes nothing still queues its event.
	steps := []func(evs ...metadata.Event) error{
		func(evs ...metadata.Event) error { return s.LinkBlob(ctx, "a/b", blob, 5, evs...) },
		func(evs ...metadata.Event) error {
			return s.PutManifest(ctx, man, []digest.Digest{blob}, nil, "v1", evs...)
		},
		func(evs ...metadata.Event) error {
			return s.PutManifest(ctx, man, []digest.Digest{blob}, nil, "v1", evs...)
		},
		func(evs ...metadata.Event) error { return s.DeleteTag(ctx, "a/b", "v1", evs...) },
		func(evs ...metadata.Event) error { return s.DeleteManifest(ctx, "a/b", man.Digest, evs...) },
		func(evs ...metadata.Event) error { return s.UnlinkBlob(ctx, "a/b", blob, evs...) },
		func(evs ...metadata.Event) error { return s.Enqueue(ctx, evs...) },
	}
	var want []string
	for i, step := range steps {
		body := fmt.Sprintf(`{"n":%d}`, i)
		want = append(want, body)
		if err := step(ev("hook", "a/b", body), ev("other", "a/b", body)); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if got := pending("hook"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("hook's queue = %q, want %q", got, want)
	}
	if n, err := s.PendingCount(ctx, "other"); err != nil || n != int64(len(want)) {
		t.Fatalf("PendingCount(other) = %d, %v; want %d", n, err, len(want))
	}
	if q, err := s.QueuedEndpoints(ctx); err != nil || len(q) != 2 || q["hook"] != int64(len(want)) {
		t.Fatalf("QueuedEndpoints = %v, %v", q, err)
	}

	// Acknowledging removes exactly the events named, from one endpoint.
	head, err := s.PendingEvents(ctx, "hook", 3)
	if err != nil || len(head) != 3 {
		t.Fatalf("PendingEvents(hook, 3) = %d events, %v", len(head), err)
	}
	if head[0].Seq >= head[1].Seq || head[1].Seq >= head[2].Seq || head[0].Created.IsZero() || head[0].Repo != "a/b" {
		t.Fatalf("queue head out of order or incomplete: %+v", head)
	}
	if err := s.AckEvents(ctx, "hook", []int64{head[0].Seq, head[2].Seq}); err != nil {
		t.Fatal(err)
	}
	wantAfter := append([]string{want[1]}, want[3:]...)
	if got := pending("hook"); fmt.Sprint(got) != fmt.Sprint(wantAfter) {
		t.Fatalf("after ack: hook's queue = %q, want %q", got, wantAfter)
	}
	if n, _ := s.PendingCount(ctx, "other"); n != int64(len(want)) {
		t.Fatalf("acknowledging hook's events removed other's: %d left", n)
	}

	// Dropping a queue removes that endpoint's events only.
	if n, err := s.DropEvents(ctx, "other"); err != nil || n != int64(len(want)) {
		t.Fatalf("DropEvents(other) = %d, %v; want %d", n, err, len(want))
	}
	if n, _ := s.PendingCount(ctx, "other"); n != 0 {
		t.Fatalf("%d events left after DropEvents", n)
	}
	if got := pending("hook"); fmt.Sprint(got) != fmt.Sprint(wantAfter) {
		t.Fatalf("dropping other's queue changed hook's: %q", got)
	}

	// Leases: one holder at a time, renewable, released, expiring.
	lease := func(holder string, ttl time.Duration) bool {
		t.Helper()
		ok, err := s.LeaseEvents(ctx, "hook", holder, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lease("a:5000", time.Minute) {
		t.Fatal("the first holder did not get the lease")
	}
	if lease("b:5000", time.Minute) {
		t.Fatal("a second holder got a running lease")
	}
	if !lease("a:5000", time.Minute) {
		t.Fatal("the holder could not renew its lease")
	}
	if ok, _ := s.LeaseEvents(ctx, "other", "b:5000", time.Minute); !ok {
		t.Fatal("leases of different endpoints collide")
	}
	if err := s.ReleaseEvents(ctx, "hook", "b:5000"); err != nil {
		t.Fatal(err)
	}
	if lease("b:5000", time.Minute) {
		t.Fatal("another holder's release ended a's lease")
	}
	if err := s.ReleaseEvents(ctx, "hook", "a:5000"); err != nil {
		t.Fatal(err)
	}
	if !lease("b:5000", time.Millisecond) {
		t.Fatal("a released lease was not free")
	}
	time.Sleep(20 * time.Millisecond)
	if !lease("a:5000", time.Minute) {
		t.Fatal("an expired lease was not free")
	}
}
