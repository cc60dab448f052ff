package metadatatest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/metadata"
	"github.com/google/go-cmp/cmp"
)

// maintenanceRuns: no run reads as ErrNotFound; the last run of each kind
// is the one that finished last, whatever the order of recording, with
// every field kept (nanosecond times, dry run, counts, error); kinds do not
// mix, and an unknown kind is refused.
func maintenanceRuns(t *testing.T, open NewStore) {
	ctx := context.Background()
	s := open(t)
	for _, kind := range []string{metadata.RunGC, metadata.RunPrune} {
		if r, err := s.LastRun(ctx, kind); !errors.Is(err, metadata.ErrNotFound) {
			t.Fatalf("LastRun(%s) on an empty store = %+v, %v; want ErrNotFound", kind, r, err)
		}
	}
	t0 := time.Unix(1_700_000_000, 123_456_789)
	runs := []metadata.MaintenanceRun{
		{Kind: metadata.RunGC, Started: t0, Finished: t0.Add(2 * time.Second), Blobs: 3, Bytes: 4 << 20},
		// Recorded after, finished before: not the last.
		{Kind: metadata.RunGC, Started: t0.Add(-time.Minute), Finished: t0.Add(-time.Second), DryRun: true, Blobs: 9, Bytes: 1},
		{Kind: metadata.RunPrune, Started: t0, Finished: t0.Add(time.Second), Manifests: 7},
		{Kind: metadata.RunPrune, Started: t0.Add(time.Hour), Finished: t0.Add(time.Hour + 1500*time.Millisecond), DryRun: true, Manifests: 2, Error: "prune: listing repositories: disk I/O error"},
	}
	for _, r := range runs {
		if err := s.RecordRun(ctx, r); err != nil {
			t.Fatalf("RecordRun(%+v): %v", r, err)
		}
	}
	if err := s.RecordRun(ctx, metadata.MaintenanceRun{Kind: "scrub", Started: t0, Finished: t0}); err == nil {
		t.Error("RecordRun took a run of kind scrub")
	}
	for kind, want := range map[string]metadata.MaintenanceRun{metadata.RunGC: runs[0], metadata.RunPrune: runs[3]} {
		got, err := s.LastRun(ctx, kind)
		if err != nil {
			t.Fatalf("LastRun(%s): %v", kind, err)
		}
		if diff := cmp.Diff(want, *got); diff != "" {
			t.Errorf("LastRun(%s) (-want +got):\n%s", kind, diff)
		}
		if got.Duration() != want.Finished.Sub(want.Started) {
			t.Errorf("LastRun(%s).Duration() = %v", kind, got.Duration())
		}
	}
}
