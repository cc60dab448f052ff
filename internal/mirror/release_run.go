package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ReleaseRequest is one `berth mirror release` run.
type ReleaseRequest struct {
	// From is the release image reference; empty when FromDir is set.
	From string
	// To is the one repository (host/path) that receives everything.
	To string
	// ToReleaseImage, when set, is where the release image itself goes.
	ToReleaseImage string
	// ToDir writes into this layout instead of To's registry; To still
	// decides tags and the printed mirror sets.
	ToDir *Layout
	// FromDir reads a layout a ToDir run wrote and pushes it to To.
	FromDir *Layout
}

// dirRelease is the record a --to-dir run leaves in the layout
// (release-<version>-<arch>.json) so --from-dir needs no source registry.
type dirRelease struct {
	Release    string         `json:"release"` // source release repository
	Digest     string         `json:"digest"`
	Version    string         `json:"version"`
	Arch       string         `json:"arch"`
	Repository string         `json:"repository"` // where the layout holds it
	Components []dirComponent `json:"components"`
}

type dirComponent struct {
	Name string `json:"name"`
	Ref  string `json:"ref"`
}

// PlanReleaseMirror reads the payload (from the source registry or a
// layout) and returns the plan and the jobs that carry it out.
func (c *Client) PlanReleaseMirror(ctx context.Context, req ReleaseRequest) (*ReleasePlan, []Job, error) {
	to, err := name.NewRepository(req.To, name.WeakValidation)
	if err != nil {
		return nil, nil, fmt.Errorf("--to %q: want REGISTRY/REPOSITORY: %w", req.To, err)
	}
	tgt := ReleaseTarget{Repo: to}
	if req.ToReleaseImage != "" {
		r, err := name.ParseReference(req.ToReleaseImage, name.WeakValidation)
		if err != nil {
			return nil, nil, fmt.Errorf("--to-release-image %q: %w", req.ToReleaseImage, err)
		}
		tgt.ReleaseImage = r
	}
	var (
		p      *Payload
		relRef name.Reference
		rec    *dirRelease
	)
	if req.FromDir != nil {
		if rec, err = readDirRelease(req.FromDir.Dir()); err != nil {
			return nil, nil, err
		}
		if p, err = rec.payload(); err != nil {
			return nil, nil, err
		}
		repo, err := name.NewRepository(rec.Release, name.WeakValidation)
		if err != nil {
			return nil, nil, err
		}
		relRef = repo.Digest(rec.Digest)
	} else {
		srepo, sref, err := c.parseRef(req.From, RoleSource)
		if err != nil {
			return nil, nil, fmt.Errorf("--from %q: %w", req.From, err)
		}
		if sref == "" {
			return nil, nil, fmt.Errorf("--from %q: name the release by tag or digest", req.From)
		}
		src, err := c.endpoint(srepo.RegistryStr(), RoleSource)
		if err != nil {
			return nil, nil, err
		}
		if p, err = ReadPayload(ctx, src, srepo.RepositoryStr(), sref); err != nil {
			return nil, nil, err
		}
		relRef = srepo.Digest(p.Digest.String())
	}
	plan := PlanRelease(p, relRef, tgt)

	var jobs []Job
	for i, pi := range plan.Images {
		dst, err := name.ParseReference(pi.Destination, name.WeakValidation)
		if err != nil {
			return nil, nil, err
		}
		dtag := ""
		if t, ok := dst.(name.Tag); ok {
			dtag = t.TagStr()
		}
		var j Job
		switch {
		case req.FromDir != nil:
			// The layout holds every image under the tag a default plan
			// would give it.
			dirTag := p.Version + "-" + p.Arch
			if i > 0 {
				dirTag = TagName(dirTag + "-" + pi.Component)
			}
			j = Job{Source: req.FromDir, SrcRepo: rec.Repository, SrcRef: dirTag}
		default:
			srepo, sref, err := c.parseRef(pi.Source, RoleSource)
			if err != nil {
				return nil, nil, err
			}
			s, err := c.endpoint(srepo.RegistryStr(), RoleSource)
			if err != nil {
				return nil, nil, err
			}
			j = Job{Source: s, SrcRepo: srepo.RepositoryStr(), SrcRef: sref}
		}
		j.From, j.To = pi.Source, pi.Destination
		switch {
		case req.ToDir != nil:
			j.Target, j.DstRepo = req.ToDir, to.RepositoryStr()
			j.DstTag = p.Version + "-" + p.Arch
			if i > 0 {
				j.DstTag = TagName(j.DstTag + "-" + pi.Component)
			}
			j.To = req.ToDir.Name() + ":" + j.DstRepo + ":" + j.DstTag
		default:
			t, err := c.endpoint(dst.Context().RegistryStr(), RoleDestination)
			if err != nil {
				return nil, nil, err
			}
			j.Target, j.DstRepo, j.DstTag = t, dst.Context().RepositoryStr(), dtag
		}
		jobs = append(jobs, j)
	}
	if req.ToDir != nil {
		rec := dirRelease{Release: relRef.Context().String(), Digest: p.Digest.String(), Version: p.Version, Arch: p.Arch, Repository: to.RepositoryStr()}
		for _, comp := range p.Components {
			rec.Components = append(rec.Components, dirComponent{Name: comp.Name, Ref: comp.Ref.String()})
		}
		raw, _ := json.MarshalIndent(rec, "", "  ")
		if err := writeFileAtomic(filepath.Join(req.ToDir.Dir(), "release-"+p.Version+"-"+p.Arch+".json"), append(raw, '\n')); err != nil {
			return nil, nil, err
		}
	}
	return plan, jobs, nil
}

func readDirRelease(dir string) (*dirRelease, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "release-*.json"))
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("%s holds no release (no release-*.json): was it written by berth mirror release --to-dir?", dir)
	}
	if len(files) > 1 {
		return nil, fmt.Errorf("%s holds several releases (%s); mirror them from separate directories", dir, strings.Join(files, ", "))
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		return nil, err
	}
	var rec dirRelease
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", files[0], err)
	}
	return &rec, nil
}

func (rec *dirRelease) payload() (*Payload, error) {
	d, err := v1.NewHash(rec.Digest)
	if err != nil {
		return nil, err
	}
	p := &Payload{Version: rec.Version, Arch: rec.Arch, Digest: d}
	for _, c := range rec.Components {
		ref, err := name.NewDigest(c.Ref, name.WeakValidation)
		if err != nil {
			return nil, fmt.Errorf("component %s: %w", c.Name, err)
		}
		p.Components = append(p.Components, PayloadComponent{Name: c.Name, Ref: ref})
	}
	return p, nil
}
