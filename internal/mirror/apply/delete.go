package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/catalog"
	"github.com/berth-registry/berth/internal/mirror/imageset"
)

// DeleteRequest is one `berth mirror delete` run.
type DeleteRequest struct {
	// Config says what to remove.
	Config *imageset.DeleteImageSetConfiguration
	// To is the mirror, REGISTRY[/PREFIX], as the sets were applied to it.
	To string
	// Keep are the image sets that stay: nothing they need is deleted.
	Keep []*imageset.ImageSetConfiguration
	// Graphs answers release channels.
	Graphs imageset.GraphSource
}

// MirroredImage is one manifest on the mirror and the element of an image
// set that put it there.
type MirroredImage struct {
	Repo   string  `json:"repository"`
	Digest v1.Hash `json:"digest"`
	Why    string  `json:"why"`
}

// Ref is REGISTRY/REPO@DIGEST.
func (m MirroredImage) ref(host string) string { return host + "/" + m.Repo + "@" + m.Digest.String() }

// DeletePlan is what a delete removes and what it keeps.
type DeletePlan struct {
	// Delete are the manifests to delete, parents before children.
	Delete []MirroredImage
	// Kept are manifests the delete names that a kept set still needs.
	Kept []MirroredImage
	// Notes say what the delete names that the mirror does not hold.
	Notes []string

	reg *mirror.Registry
}

// NewDelete works out, from the mirror itself, every manifest the delete
// configuration names — release images and their components (read from the
// payloads on the mirror), additional images, the bundle and related
// images of the named packages (read from the rebuilt catalog on the
// mirror), whole catalogs when no package is named — and removes from that
// list every manifest a kept set needs. Nothing is deleted here.
func NewDelete(ctx context.Context, c *mirror.Client, req DeleteRequest) (*DeletePlan, error) {
	prefix := strings.TrimSuffix(strings.TrimPrefix(req.To, "docker://"), "/")
	if prefix == "" {
		return nil, errors.New("--to REGISTRY[/PREFIX] is required: the mirror to delete from")
	}
	host, _, _ := strings.Cut(prefix, "/")
	reg, _, _, err := c.Resolve(host+"/x", mirror.RoleDestination)
	if err != nil {
		return nil, err
	}
	dp := &DeletePlan{reg: reg}
	plan, err := imageset.NewDeletePlan(ctx, req.Config, req.Graphs, imageset.PlanOptions{Target: prefix})
	if err != nil {
		return nil, err
	}
	del, notes, err := mirrored(ctx, reg, plan, true)
	if err != nil {
		return nil, err
	}
	dp.Notes = append(dp.Notes, notes...)
	keep := map[string]string{}
	for _, k := range req.Keep {
		kp, err := imageset.NewPlan(ctx, k, req.Graphs, imageset.PlanOptions{Target: prefix})
		if err != nil {
			return nil, err
		}
		imgs, _, err := mirrored(ctx, reg, kp, false)
		if err != nil {
			return nil, fmt.Errorf("kept set %s: %w", k.File(), err)
		}
		for _, im := range imgs {
			if _, ok := keep[im.Repo+"@"+im.Digest.String()]; !ok {
				keep[im.Repo+"@"+im.Digest.String()] = k.File() + ": " + im.Why
			}
		}
	}
	seen := map[string]bool{}
	for _, im := range del {
		key := im.Repo + "@" + im.Digest.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		if why, ok := keep[key]; ok {
			im.Why = "needed by " + why
			dp.Kept = append(dp.Kept, im)
			continue
		}
		dp.Delete = append(dp.Delete, im)
	}
	return dp, nil
}

// mirrored lists what plan put on the mirror: each top manifest and, for
// an index, its children. With del set, the catalogs the plan names
// without packages are listed themselves too (a whole catalog goes).
func mirrored(ctx context.Context, reg *mirror.Registry, plan *imageset.Plan, del bool) ([]MirroredImage, []string, error) {
	var out []MirroredImage
	var notes []string
	var errs []error
	add := func(ref, why string) {
		repo, d, err := resolveOn(ctx, reg, ref)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s (%s): %v", ref, why, err))
			return
		}
		ims, err := withChildren(ctx, reg, repo, d, why)
		if err != nil {
			errs = append(errs, err)
			return
		}
		out = append(out, ims...)
	}
	for _, r := range plan.Releases {
		src, err := name.NewDigest(r.Source, name.WeakValidation)
		if err != nil {
			notes = append(notes, fmt.Sprintf("release %s: not pinned by digest, not looked up", r.Source))
			continue
		}
		relRepo := strings.TrimPrefix(plan.Target+"/"+imageset.ReleaseImagesRepository, reg.Host()+"/")
		payload, err := mirror.ReadPayload(ctx, reg, relRepo, src.DigestStr())
		if err != nil {
			notes = append(notes, fmt.Sprintf("release %s %s: not on the mirror (%v)", r.Version, r.Arch, err))
			continue
		}
		why := fmt.Sprintf("release %s (%s)", payload.Version, strings.Join(r.Channels, ", "))
		add(reg.Host()+"/"+relRepo+"@"+payload.Digest.String(), why)
		tgt, err := plan.ReleaseTarget(payload)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, comp := range payload.Components {
			add(tgt.Repo.String()+"@"+comp.Ref.DigestStr(), why+" component "+comp.Name)
		}
	}
	if g := plan.Graph; g != nil {
		add(g.Destination, "graph-data image")
	}
	for _, img := range plan.Images {
		dst := img.Destination
		if i := strings.Index(img.Source, "@"); i >= 0 {
			repo, _, err := mirror.ParseRef(dst, false)
			if err == nil {
				dst = repo.String() + img.Source[i:]
			}
		}
		add(dst, img.Field+" "+img.Origin)
	}
	for _, cp := range plan.Catalogs {
		reff, err := name.ParseReference(cp.Destination, name.WeakValidation)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cat, err := catalog.Read(ctx, reg, reff.Context().RepositoryStr(), reff.Identifier())
		if err != nil {
			notes = append(notes, fmt.Sprintf("catalog %s: not on the mirror (%v)", cp.Destination, err))
			continue
		}
		f, err := toFilter(cp.Operator)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		whole := len(f.Packages) == 0
		if whole {
			f.Full = true
		}
		res, err := cat.Config.Apply(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", cp.Field, err))
			continue
		}
		if whole || !del {
			add(cp.Destination, cp.Field+" catalog "+cp.Operator.Catalog)
		}
		for _, im := range res.Images {
			r, err := name.ParseReference(im.Ref, name.WeakValidation)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			add(plan.Target+"/"+r.Context().RepositoryStr()+"@"+digestOf(r), fmt.Sprintf("%s %s %s of %s", cp.Field, im.Kind, im.Ref, im.Bundle))
		}
	}
	return out, notes, errors.Join(errs...)
}

func digestOf(r name.Reference) string {
	if d, ok := r.(name.Digest); ok {
		return d.DigestStr()
	}
	return r.Identifier()
}

// resolveOn finds ref (REGISTRY/REPO:TAG or @DIGEST) on the mirror.
func resolveOn(ctx context.Context, reg *mirror.Registry, ref string) (string, v1.Hash, error) {
	repo, r, err := mirror.ParseRef(ref, false)
	if err != nil {
		return "", v1.Hash{}, err
	}
	if r == "" {
		r = "latest"
	}
	d, ok, err := reg.ManifestDigest(ctx, repo.RepositoryStr(), r)
	if err != nil {
		return "", v1.Hash{}, err
	}
	if !ok {
		return "", v1.Hash{}, errors.New("not on the mirror")
	}
	return repo.RepositoryStr(), d, nil
}

// withChildren is the manifest and, for an index, the manifests it lists.
func withChildren(ctx context.Context, reg *mirror.Registry, repo string, d v1.Hash, why string) ([]MirroredImage, error) {
	out := []MirroredImage{{Repo: repo, Digest: d, Why: why}}
	m, err := reg.GetManifest(ctx, repo, d.String())
	if err != nil {
		return nil, fmt.Errorf("%s/%s@%s: %w", reg.Host(), repo, d, err)
	}
	var idx v1.IndexManifest
	if json.Unmarshal(m.Raw, &idx) == nil {
		for _, c := range idx.Manifests {
			out = append(out, MirroredImage{Repo: repo, Digest: c.Digest, Why: why + " (index entry)"})
		}
	}
	return out, nil
}

// WriteDryRun prints what would be deleted and what is kept, and why.
func (p *DeletePlan) WriteDryRun(w io.Writer) error {
	host := p.reg.Host()
	for _, im := range p.Delete {
		if _, err := fmt.Fprintf(w, "delete %s  # %s\n", im.ref(host), im.Why); err != nil {
			return err
		}
	}
	for _, im := range p.Kept {
		fmt.Fprintf(w, "keep   %s  # %s\n", im.ref(host), im.Why)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

// Run deletes the planned manifests, parents before their children, and
// returns how many went. An interrupted run is rerun as it is: what is
// already gone counts as deleted.
func (p *DeletePlan) Run(ctx context.Context, progress func(MirroredImage)) (int, error) {
	order := append([]MirroredImage(nil), p.Delete...)
	sort.SliceStable(order, func(a, b int) bool {
		// Index entries after the indexes that list them.
		return !strings.HasSuffix(order[a].Why, "(index entry)") && strings.HasSuffix(order[b].Why, "(index entry)")
	})
	n := 0
	for _, im := range order {
		if err := p.reg.DeleteManifest(ctx, im.Repo, im.Digest); err != nil {
			return n, fmt.Errorf("delete %s: %w", im.ref(p.reg.Host()), err)
		}
		n++
		if progress != nil {
			progress(im)
		}
	}
	return n, nil
}
