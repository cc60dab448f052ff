package mirror

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ImageRequest is one `berth mirror image` run, in exactly one of three
// shapes: registry to registry (Mappings with both sides), into a layout
// (ToDir; a mapping's Dst, when set, is the name inside the directory), or
// out of a layout (FromDir, pushed under DstPrefix).
type ImageRequest struct {
	// Mappings are the SRC DST pairs, from the command line or a mapping
	// file.
	Mappings []Mapping
	// File names the mapping file in errors (file:line); empty for pairs
	// from the command line.
	File string
	// ToDir writes every source into this layout.
	ToDir *Layout
	// FromDir pushes every image this layout holds under DstPrefix
	// (REGISTRY[/PATH]); Mappings must then be empty.
	FromDir   *Layout
	DstPrefix string
}

// PlanImageMirror turns a request into the jobs that carry it out.
func (c *Client) PlanImageMirror(req ImageRequest) ([]Job, error) {
	switch {
	case req.FromDir != nil && req.ToDir != nil:
		return nil, errors.New("--to-dir and --from-dir exclude each other: copy into a directory, carry it, then copy out of it")
	case req.FromDir != nil:
		if len(req.Mappings) > 0 || req.DstPrefix == "" {
			return nil, errors.New("--from-dir DIR takes exactly one argument, the destination prefix (REGISTRY[/PATH])")
		}
		return c.LayoutJobs(req.FromDir, req.DstPrefix)
	case len(req.Mappings) == 0 && req.ToDir != nil:
		return nil, errors.New("name the images to write: --to-dir DIR SRC... or -f FILE")
	case len(req.Mappings) == 0:
		return nil, errors.New("want SRC DST, or -f FILE (or --to-dir / --from-dir)")
	}
	jobs := make([]Job, 0, len(req.Mappings))
	for _, m := range req.Mappings {
		var (
			j   Job
			err error
		)
		if req.ToDir != nil {
			j, err = c.DirJob(m.Src, req.ToDir, strings.TrimPrefix(m.Dst, "file://"))
		} else {
			j, err = c.ImageJob(m.Src, m.Dst)
		}
		if err != nil {
			if req.File != "" {
				return nil, fmt.Errorf("%s:%d: %w", req.File, m.Line, err)
			}
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// ReadMappingFile reads and parses a mapping file (see ParseMappings).
func ReadMappingFile(file string) ([]Mapping, error) {
	fh, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return ParseMappings(file, fh)
}

// MappingRepositories are the destination repositories of mappings
// (HOST[:PORT]/PATH), each named once, in order.
func MappingRepositories(file string, ms []Mapping) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, m := range ms {
		repo, _, err := ParseRef(m.Dst, false)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: destination: %w", file, m.Line, err)
		}
		if s := repo.String(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// ReadStateFile reads what `berth mirror state` printed.
func ReadStateFile(file string) (*State, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--since: %w", err)
	}
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("--since %s: not a state file from berth mirror state: %w", file, err)
	}
	return &st, nil
}

// WriteMirrorSets writes the cluster's mirror configuration into dir:
// idms.yaml and icsp.yaml for digest sources (also when there are none, if
// always is set) and itms.yaml for tag sources, each file written
// atomically. It returns the paths written.
func WriteMirrorSets(dir, name string, digest, tag []MirrorSource, always bool) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--manifests-dir: %w", err)
	}
	type file struct {
		name   string
		ms     []MirrorSource
		render func(string, []MirrorSource) ([]byte, error)
	}
	var files []file
	if always || len(digest) > 0 {
		files = append(files, file{"idms.yaml", digest, ImageDigestMirrorSets}, file{"icsp.yaml", digest, ImageContentSourcePolicies})
	}
	if len(tag) > 0 {
		files = append(files, file{"itms.yaml", tag, ImageTagMirrorSets})
	}
	var written []string
	for _, f := range files {
		raw, err := f.render(name, f.ms)
		if err != nil {
			return written, err
		}
		p := filepath.Join(dir, f.name)
		if err := writeFileAtomic(p, raw); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	return written, nil
}

// Resolve parses ref, a registry reference, for a registry that plays
// role, and returns its shared endpoint, the repository and the tag or
// digest ("" when ref names neither).
func (c *Client) Resolve(ref string, role Role) (*Registry, string, string, error) {
	repo, r, err := c.parseRef(ref, role)
	if err != nil {
		return nil, "", "", fmt.Errorf("%q: %w", ref, err)
	}
	reg, err := c.endpoint(repo.RegistryStr(), role)
	if err != nil {
		return nil, "", "", err
	}
	return reg, repo.RepositoryStr(), r, nil
}
