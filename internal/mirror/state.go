package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// RegistryState asks a registry what it holds, for --since on the sending
// side when the receiving side is a registry rather than a directory. Each
// of refs is HOST[:PORT]/REPO (every tag of the repository) or
// HOST[:PORT]/REPO:TAG or @DIGEST (that image only). Every manifest
// reachable from those tags (index entries and referrers included) is
// listed with the config and layers it references: a registry accepts a
// manifest only once everything it references is present, so listing is
// enough, no blob is probed.
//
// Digests are per registry, not per repository: push the next directory
// into the repositories that were queried, so a skipped blob is found
// there. A tag or repository that does not exist contributes nothing.
func (c *Client) RegistryState(ctx context.Context, refs []string) (*State, error) {
	// Walks start walks, so the group is unbounded; sem bounds requests.
	w := &stateWalker{seen: map[string]bool{}, digests: map[string]bool{}, sem: make(chan struct{}, 8)}
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range refs {
		repo, ref, err := c.parseRef(s, RoleDestination)
		if err != nil {
			return nil, fmt.Errorf("registry reference %q: want HOST[:PORT]/REPO[:TAG]: %w", s, err)
		}
		reg, err := c.endpoint(repo.RegistryStr(), RoleDestination)
		if err != nil {
			return nil, err
		}
		rp := repo.RepositoryStr()
		if ref != "" {
			g.Go(func() error { return w.walk(gctx, g, reg, rp, ref, true) })
			continue
		}
		g.Go(func() error {
			var tags []string
			err := w.request(gctx, func() error {
				var err error
				tags, err = reg.Tags(gctx, rp)
				return err
			})
			if err != nil {
				return fmt.Errorf("listing tags of %s/%s: %w", reg.Name(), rp, err)
			}
			for _, t := range tags {
				g.Go(func() error { return w.walk(gctx, g, reg, rp, t, true) })
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	st := &State{Blobs: make([]string, 0, len(w.digests))}
	for d := range w.digests {
		st.Blobs = append(st.Blobs, d)
	}
	sort.Strings(st.Blobs)
	return st, nil
}

type stateWalker struct {
	mu      sync.Mutex
	seen    map[string]bool // registry/repo@manifest digest walked
	digests map[string]bool
	sem     chan struct{}
}

// request runs f holding one of the request slots.
func (w *stateWalker) request(ctx context.Context, f func() error) error {
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.sem }()
	return retry(ctx, defaultRetry, f)
}

func (w *stateWalker) add(ds ...string) {
	w.mu.Lock()
	for _, d := range ds {
		w.digests[d] = true
	}
	w.mu.Unlock()
}

// first reports whether key is new, marking it seen.
func (w *stateWalker) first(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[key] {
		return false
	}
	w.seen[key] = true
	return true
}

// walk lists the manifest repo@ref and what it references; withReferrers
// also follows the referrers API for it (tagged referrers are found as
// tags).
func (w *stateWalker) walk(ctx context.Context, g *errgroup.Group, reg *Registry, repo, ref string, withReferrers bool) error {
	if strings.Contains(ref, ":") && !w.first(reg.Name()+"/"+repo+"@"+ref) {
		return nil
	}
	var m *Manifest
	err := w.request(ctx, func() error {
		var err error
		m, err = reg.GetManifest(ctx, repo, ref)
		return err
	})
	var he *HTTPError
	if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
		return nil // gone, or never there: the receiver does not have it
	}
	if err != nil {
		return fmt.Errorf("state of %s/%s:%s: %w", reg.Name(), repo, ref, err)
	}
	if !strings.Contains(ref, ":") && !w.first(reg.Name()+"/"+repo+"@"+m.Digest.String()) {
		return nil
	}
	w.add(m.Digest.String())
	var subjects []v1.Hash
	if withReferrers {
		subjects = append(subjects, m.Digest)
	}
	if isIndex(m.MediaType) {
		var idx v1.IndexManifest
		if err := json.Unmarshal(m.Raw, &idx); err != nil {
			return fmt.Errorf("index %s/%s@%s: %w", reg.Name(), repo, m.Digest, err)
		}
		for _, d := range idx.Manifests {
			g.Go(func() error { return w.walk(ctx, g, reg, repo, d.Digest.String(), withReferrers) })
		}
	} else {
		var im v1.Manifest
		if err := json.Unmarshal(m.Raw, &im); err != nil {
			return fmt.Errorf("manifest %s/%s@%s: %w", reg.Name(), repo, m.Digest, err)
		}
		for _, d := range append([]v1.Descriptor{im.Config}, im.Layers...) {
			if d.Digest.Hex != "" && len(d.URLs) == 0 {
				w.add(d.Digest.String())
			}
		}
	}
	for _, s := range subjects {
		var refs []Referrer
		err := w.request(ctx, func() error {
			var err error
			refs, err = reg.Referrers(ctx, repo, s)
			return err
		})
		if err != nil {
			return fmt.Errorf("referrers of %s/%s@%s: %w", reg.Name(), repo, s, err)
		}
		for _, r := range refs {
			g.Go(func() error { return w.walk(ctx, g, reg, repo, r.Descriptor.Digest.String(), false) })
		}
	}
	return nil
}
