package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/storage"
	"github.com/opencontainers/go-digest"
)

// DefaultGrace is how long fresh bytes and links are spared when Options
// leaves Grace unset.
const DefaultGrace = time.Hour

// Options configure Collect. The zero value is a real, online-safe run with
// the default grace period.
type Options struct {
	// Grace spares bytes committed and links made less than this long ago;
	// zero means DefaultGrace. It must outlast the longest push (first blob
	// upload to manifest upload) that should survive a concurrent run.
	Grace time.Duration
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
	// Log receives one line per run; nil discards it.
	Log *slog.Logger

	// afterMark, for tests, runs between the mark and the sweep.
	afterMark func()
}

// Blob is one blob (or stale link) a run removed or would remove.
type Blob struct {
	Repo   string        `json:"repository,omitempty"`
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
}

// Result tells what a Collect run did (or, with DryRun, would do).
type Result struct {
	DryRun bool `json:"dryRun"`
	// Links are the repository links removed: no manifest of their
	// repository referenced them and they were older than the grace.
	Links []Blob `json:"links"`
	// Deleted are the blob-store entries deleted.
	Deleted []Blob `json:"deleted"`
	// BytesFreed is the total size of Deleted.
	BytesFreed int64 `json:"bytesFreed"`
	// Scanned counts every entry the blob store walk saw.
	Scanned int `json:"scanned"`
	// Young counts unreferenced entries spared because they were committed
	// within the grace period.
	Young int `json:"young"`
	// Rescued counts candidates that a push, mount or manifest referenced
	// (or re-committed) between the mark and the delete.
	Rescued  int           `json:"rescued"`
	Duration time.Duration `json:"duration"`
}

// Collect removes stale blob links, then deletes blob-store bytes nothing
// references, keeping the invariants in the package comment.
func Collect(ctx context.Context, blobs storage.Backend, meta *metadata.Store, opts Options) (*Result, error) {
	start := time.Now()
	grace := opts.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	if grace < 0 {
		return nil, fmt.Errorf("gc: grace period %v is negative", grace)
	}
	cutoff := start.Add(-grace)
	res := &Result{DryRun: opts.DryRun, Links: []Blob{}, Deleted: []Blob{}}

	// Phase 1: links no manifest of their repository references.
	var links []metadata.Link
	var err error
	if opts.DryRun {
		links, err = meta.StaleLinks(ctx, cutoff)
	} else {
		links, err = meta.RemoveStaleLinks(ctx, cutoff)
	}
	if err != nil {
		return nil, fmt.Errorf("gc: stale links: %w", err)
	}
	// In a dry run the links are still there; remember which would go so
	// phase 2 can foresee the bytes they leave unreferenced.
	staleIn := map[digest.Digest][]string{}
	for _, l := range links {
		res.Links = append(res.Links, Blob{Repo: l.Repo, Digest: l.Digest, Size: l.Size})
		staleIn[l.Digest] = append(staleIn[l.Digest], l.Repo)
	}
	referenced := func(d digest.Digest) (bool, error) {
		if !opts.DryRun {
			return meta.BlobReferenced(ctx, d)
		}
		repos, inManifests, err := meta.BlobUsage(ctx, d)
		if err != nil || inManifests {
			return inManifests, err
		}
		for _, r := range repos {
			if !slices.Contains(staleIn[d], r) {
				return true, nil
			}
		}
		return false, nil
	}

	// Phase 2, mark: old bytes nothing references now.
	var marked []digest.Digest
	err = blobs.Walk(ctx, func(d digest.Digest, _ int64, committed time.Time) error {
		res.Scanned++
		ref, err := referenced(d)
		if err != nil {
			return err
		}
		switch {
		case ref:
		case !committed.Before(cutoff):
			res.Young++
		default:
			marked = append(marked, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gc: walking the blob store: %w", err)
	}

	if opts.afterMark != nil {
		opts.afterMark()
	}

	// Phase 2, sweep: re-check each candidate, metadata first, then its
	// commit time, and delete it only if both still say garbage.
	for _, d := range marked {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		ref, err := referenced(d)
		if err != nil {
			return res, fmt.Errorf("gc: re-checking %s: %w", d, err)
		}
		if ref {
			res.Rescued++
			continue
		}
		info, err := blobs.Stat(ctx, d)
		if errors.Is(err, storage.ErrNotFound) {
			continue // deleted meanwhile (another gc)
		}
		if err != nil {
			return res, fmt.Errorf("gc: re-checking %s: %w", d, err)
		}
		size := info.Size
		if !info.Committed.Before(cutoff) {
			res.Rescued++
			continue
		}
		if !opts.DryRun {
			if cd, ok := blobs.(storage.ConditionalDeleter); ok {
				// Closes the last window: a commit between the re-check
				// above and the delete is seen by the delete itself.
				deleted, err := cd.DeleteIfCommittedBefore(ctx, d, cutoff)
				if err != nil {
					return res, fmt.Errorf("gc: deleting %s: %w", d, err)
				}
				if !deleted {
					res.Rescued++
					continue
				}
			} else if err := blobs.Delete(ctx, d); err != nil {
				return res, fmt.Errorf("gc: deleting %s: %w", d, err)
			}
		}
		res.Deleted = append(res.Deleted, Blob{Digest: d, Size: size})
		res.BytesFreed += size
	}
	res.Duration = time.Since(start)
	if opts.Log != nil {
		opts.Log.Info("gc run", "dryRun", opts.DryRun, "grace", grace, "linksRemoved", len(res.Links),
			"blobsDeleted", len(res.Deleted), "bytesFreed", res.BytesFreed, "scanned", res.Scanned,
			"young", res.Young, "rescued", res.Rescued, "duration", res.Duration)
	}
	return res, nil
}
