package catalog

import (
	"errors"
	"fmt"
	"strings"

	"github.com/blang/semver/v4"
)

// Filter is one mirror.operators[] entry of an oc-mirror v2
// ImageSetConfiguration; its JSON field names are the ISC's, so the
// imageset package can decode into it directly.
type Filter struct {
	// Catalog is the catalog image: a registry reference (by tag or digest)
	// or an oci:// path to an OCI image layout.
	Catalog string `json:"catalog"`
	// Full keeps every bundle of every channel: of the whole catalog when
	// Packages is empty, else of the named packages (and channels).
	Full bool `json:"full,omitempty"`
	// Packages names the packages to keep; empty keeps them all.
	Packages []PackageFilter `json:"packages,omitempty"`
	// TargetCatalog is the repository path the rebuilt catalog is pushed
	// to, below the destination prefix (default: the source's path).
	TargetCatalog string `json:"targetCatalog,omitempty"`
	// TargetTag is the tag of the rebuilt catalog (default: the source's).
	TargetTag string `json:"targetTag,omitempty"`
	// SkipDependencies turns off adding the bundles that kept bundles
	// require (olm.package.required, olm.gvk.required).
	SkipDependencies bool `json:"skipDependencies,omitempty"`
}

// PackageFilter selects one package.
type PackageFilter struct {
	// Name is the package name (olm.package name).
	Name string `json:"name"`
	// DefaultChannel overrides the package's default channel; needed when
	// the filter drops the catalog's default channel.
	DefaultChannel string `json:"defaultChannel,omitempty"`
	// MinVersion and MaxVersion (inclusive, semver) bound the bundles kept
	// in every selected channel; exclusive with channel-level bounds.
	MinVersion string `json:"minVersion,omitempty"`
	MaxVersion string `json:"maxVersion,omitempty"`
	// Channels names the channels to keep; empty keeps them all.
	Channels []ChannelFilter `json:"channels,omitempty"`
}

// ChannelFilter selects one channel of a package.
type ChannelFilter struct {
	Name string `json:"name"`
	// MinVersion and MaxVersion (inclusive, semver) bound the bundles kept
	// in this channel. Without either, only the channel head is kept.
	MinVersion string `json:"minVersion,omitempty"`
	MaxVersion string `json:"maxVersion,omitempty"`
}

// versionRange is an inclusive [min, max] bound; a nil end is open.
type versionRange struct {
	min, max *semver.Version
	text     string
}

func (r *versionRange) contains(v semver.Version) bool {
	if r.min != nil && v.LT(*r.min) {
		return false
	}
	if r.max != nil && v.GT(*r.max) {
		return false
	}
	return true
}

func (r *versionRange) String() string { return r.text }

// parseRange reads a min/max pair; both empty gives nil.
func parseRange(where, min, max string) (*versionRange, error) {
	if min == "" && max == "" {
		return nil, nil
	}
	r := &versionRange{}
	var errs []error
	var parts []string
	if min != "" {
		v, err := semver.ParseTolerant(min)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.minVersion %q is not a semantic version: %v", where, min, err))
		} else {
			r.min = &v
			parts = append(parts, ">="+v.String())
		}
	}
	if max != "" {
		v, err := semver.ParseTolerant(max)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.maxVersion %q is not a semantic version: %v", where, max, err))
		} else {
			r.max = &v
			parts = append(parts, "<="+v.String())
		}
	}
	if r.min != nil && r.max != nil && r.min.GT(*r.max) {
		errs = append(errs, fmt.Errorf("%s: minVersion %s is above maxVersion %s", where, r.min, r.max))
	}
	r.text = strings.Join(parts, " ")
	return r, errors.Join(errs...)
}

// Validate reports every problem of the filter itself (not of the catalog
// it is applied to) at once; field paths are relative to the entry, as in
// "packages[1].channels[0].minVersion".
func (f *Filter) Validate() error {
	var errs []error
	if strings.TrimSpace(f.Catalog) == "" {
		errs = append(errs, errors.New("catalog: must name a catalog image (registry reference or oci:// path)"))
	}
	seen := map[string]int{}
	for i, p := range f.Packages {
		where := fmt.Sprintf("packages[%d]", i)
		if p.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: must not be empty", where))
		} else if j, dup := seen[p.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: package %q is already listed at packages[%d]", where, p.Name, j))
		} else {
			seen[p.Name] = i
		}
		pkgRange, err := parseRange(where, p.MinVersion, p.MaxVersion)
		if err != nil {
			errs = append(errs, err)
		}
		if f.Full && (p.MinVersion != "" || p.MaxVersion != "") {
			errs = append(errs, fmt.Errorf("%s: full: true cannot be combined with minVersion/maxVersion", where))
		}
		chSeen := map[string]int{}
		for k, c := range p.Channels {
			cw := fmt.Sprintf("%s.channels[%d]", where, k)
			if c.Name == "" {
				errs = append(errs, fmt.Errorf("%s.name: must not be empty", cw))
			} else if j, dup := chSeen[c.Name]; dup {
				errs = append(errs, fmt.Errorf("%s.name: channel %q is already listed at %s.channels[%d]", cw, c.Name, where, j))
			} else {
				chSeen[c.Name] = k
			}
			if _, err := parseRange(cw, c.MinVersion, c.MaxVersion); err != nil {
				errs = append(errs, err)
			}
			if c.MinVersion != "" || c.MaxVersion != "" {
				if pkgRange != nil {
					errs = append(errs, fmt.Errorf("%s: a version range on both the package and its channel %q is ambiguous; set it on one of them", cw, c.Name))
				}
				if f.Full {
					errs = append(errs, fmt.Errorf("%s: full: true cannot be combined with minVersion/maxVersion", cw))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Target returns where the rebuilt catalog is pushed, below the
// destination prefix: TargetCatalog (default: srcRepo, the source's
// repository path) and TargetTag (default: srcRef when it is a tag; empty
// when the source is named by digest, which leaves the choice to the
// caller: push by digest only, or name a tag).
func (f *Filter) Target(srcRepo, srcRef string) (repo, tag string) {
	repo, tag = strings.Trim(f.TargetCatalog, "/"), f.TargetTag
	if repo == "" {
		repo = srcRepo
	}
	if tag == "" && !strings.Contains(srcRef, ":") {
		tag = srcRef
	}
	return repo, tag
}
