package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/metadata"
	"github.com/opencontainers/go-digest"
)

// Defaults for PruneOptions fields left at zero (those of oc adm prune
// images).
const (
	DefaultKeepTagRevisions = 3
	DefaultKeepYoungerThan  = time.Hour
)

// PruneOptions configure Prune. The zero value keeps the newest 3 revisions
// of every tag and everything younger than an hour.
type PruneOptions struct {
	// KeepTagRevisions is how many of the newest distinct manifests in each
	// tag's history are kept (the one the tag points at always is); zero
	// means DefaultKeepTagRevisions.
	KeepTagRevisions int
	// KeepYoungerThan spares manifests pushed less than this long ago;
	// zero means DefaultKeepYoungerThan.
	KeepYoungerThan time.Duration
	// Repositories limits the run to these repositories; empty means all.
	Repositories []string
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// Log receives one line per run; nil discards it.
	Log *slog.Logger
}

// Pruned is one manifest a prune deleted (or would delete).
type Pruned struct {
	Repo   string        `json:"repository"`
	Digest digest.Digest `json:"digest"`
	// Reason says why it was not kept.
	Reason string `json:"reason"`
}

// PruneResult tells what a Prune run did (or, with DryRun, would do).
type PruneResult struct {
	DryRun  bool     `json:"dryRun"`
	Deleted []Pruned `json:"deleted"`
	// Kept counts the manifests kept.
	Kept int `json:"kept"`
	// Skipped lists manifests planned for deletion that a concurrent push
	// tagged or referenced before their turn came; they stay.
	Skipped  []Pruned      `json:"skipped"`
	Duration time.Duration `json:"duration"`
}

// Prune deletes old image revisions from the metadata store (see rule 5 in
// the package comment). Their bytes go at a later Collect.
func Prune(ctx context.Context, meta *metadata.Store, opts PruneOptions) (*PruneResult, error) {
	start := time.Now()
	if opts.KeepTagRevisions < 0 || opts.KeepYoungerThan < 0 {
		return nil, errors.New("prune: keep-tag-revisions and keep-younger-than must not be negative")
	}
	if opts.KeepTagRevisions == 0 {
		opts.KeepTagRevisions = DefaultKeepTagRevisions
	}
	if opts.KeepYoungerThan == 0 {
		opts.KeepYoungerThan = DefaultKeepYoungerThan
	}
	repos := opts.Repositories
	if len(repos) == 0 {
		var err error
		if repos, _, err = meta.ListRepositories(ctx, "", -1); err != nil {
			return nil, fmt.Errorf("prune: listing repositories: %w", err)
		}
	}
	res := &PruneResult{DryRun: opts.DryRun, Deleted: []Pruned{}, Skipped: []Pruned{}}
	cutoff := start.Add(-opts.KeepYoungerThan)
	for _, repo := range repos {
		g, err := meta.ReadRepoGraph(ctx, repo)
		if err != nil {
			return res, fmt.Errorf("prune: reading %s: %w", repo, err)
		}
		plan := planPrune(repo, g, opts.KeepTagRevisions, cutoff)
		res.Kept += len(g.Manifests) - len(plan)
		if opts.DryRun {
			res.Deleted = append(res.Deleted, plan...)
			continue
		}
		deleted, skipped, err := deletePlan(ctx, meta, plan)
		res.Deleted = append(res.Deleted, deleted...)
		res.Skipped = append(res.Skipped, skipped...)
		res.Kept += len(skipped)
		if err != nil {
			return res, fmt.Errorf("prune: %s: %w", repo, err)
		}
	}
	res.Duration = time.Since(start)
	if opts.Log != nil {
		opts.Log.Info("prune run", "dryRun", opts.DryRun, "keepTagRevisions", opts.KeepTagRevisions,
			"keepYoungerThan", opts.KeepYoungerThan, "repositories", len(repos), "manifestsDeleted", len(res.Deleted),
			"kept", res.Kept, "skipped", len(res.Skipped), "duration", res.Duration)
	}
	return res, nil
}

// planPrune marks from the roots (tagged, newest revisions, young, and
// standalone never-tagged manifests) through index children and referrers,
// and returns every unmarked manifest, in digest order.
func planPrune(repo string, g *metadata.RepoGraph, keepRevisions int, cutoff time.Time) []Pruned {
	isChild := map[digest.Digest]bool{}
	for _, cs := range g.Children {
		for _, c := range cs {
			isChild[c] = true
		}
	}
	referrers := map[digest.Digest][]digest.Digest{}
	for d, m := range g.Manifests {
		if _, ok := g.Manifests[m.Subject]; ok {
			referrers[m.Subject] = append(referrers[m.Subject], d)
		}
	}
	inHistory := map[digest.Digest]bool{}
	var roots []digest.Digest
	for _, d := range g.Tags {
		roots = append(roots, d)
	}
	for _, hist := range g.History {
		seen := map[digest.Digest]bool{}
		for i := len(hist) - 1; i >= 0; i-- {
			d := hist[i]
			inHistory[d] = true
			if _, ok := g.Manifests[d]; !ok || seen[d] {
				continue
			}
			seen[d] = true
			if len(seen) <= keepRevisions {
				roots = append(roots, d)
			}
		}
	}
	for d, m := range g.Manifests {
		_, subjectHere := g.Manifests[m.Subject]
		switch {
		case !m.Created.Before(cutoff):
			roots = append(roots, d)
		case !inHistory[d] && !isChild[d] && !subjectHere:
			roots = append(roots, d) // a digest-only push: not a revision of anything
		}
	}
	keep := map[digest.Digest]bool{}
	for len(roots) > 0 {
		d := roots[len(roots)-1]
		roots = roots[:len(roots)-1]
		if keep[d] {
			continue
		}
		keep[d] = true
		roots = append(roots, g.Children[d]...)
		roots = append(roots, referrers[d]...)
	}
	var out []Pruned
	for d, m := range g.Manifests {
		if keep[d] {
			continue
		}
		reason := "older than the kept revisions of its tags"
		switch {
		case isChild[d]:
			reason = "child of pruned indexes only"
		case m.Subject != "" && !inHistory[d]:
			reason = "referrer of pruned subject " + string(m.Subject)
		}
		out = append(out, Pruned{Repo: repo, Digest: d, Reason: reason})
	}
	slices.SortFunc(out, func(a, b Pruned) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out
}

// deletePlan deletes the planned manifests, each under the re-check of
// metadata.DeleteManifestIfUnused. A manifest still referenced by another
// planned one is retried after it; what stays in use is skipped.
func deletePlan(ctx context.Context, meta *metadata.Store, plan []Pruned) (deleted, skipped []Pruned, err error) {
	pending := plan
	for len(pending) > 0 {
		var next []Pruned
		for _, p := range pending {
			err := meta.DeleteManifestIfUnused(ctx, p.Repo, p.Digest)
			switch {
			case err == nil:
				deleted = append(deleted, p)
			case errors.Is(err, metadata.ErrInUse):
				next = append(next, p)
			case errors.Is(err, metadata.ErrNotFound):
				// deleted meanwhile by someone else
			default:
				return deleted, skipped, err
			}
		}
		if len(next) == len(pending) {
			return deleted, append(skipped, next...), nil
		}
		pending = next
	}
	return deleted, skipped, nil
}
