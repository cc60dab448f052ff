package imageset

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/blang/semver/v4"
)

// DefaultArchitecture is the release architecture when none is named.
const DefaultArchitecture = "amd64"

// Architectures are the release architectures the update graph serves.
var Architectures = []string{"amd64", "arm64", "multi", "ppc64le", "s390x"}

var archAliases = map[string]string{"x86_64": "amd64", "aarch64": "arm64", "x86-64": "amd64"}

type validator struct {
	src      *source
	bad      map[string]bool
	problems []*Problem
}

// add records a problem at path unless decoding already reported path or
// one of its parents.
func (v *validator) add(path, format string, args ...any) {
	for q := path; v.bad != nil; q = parentPath(q) {
		if v.bad[q] {
			return
		}
		if q == "" {
			break
		}
	}
	v.problems = append(v.problems, v.src.at(path, format, args...))
}

func (v *validator) mirror(base string, m *Mirror, isMirror bool) {
	v.platform(base+".platform", &m.Platform)
	uniqueCatalogs := map[string]string{}
	for i := range m.Operators {
		v.operator(fmt.Sprintf("%s.operators[%d]", base, i), &m.Operators[i], uniqueCatalogs)
	}
	for i, a := range m.AdditionalImages {
		v.additional(fmt.Sprintf("%s.additionalImages[%d]", base, i), a)
	}
	for i, b := range m.BlockedImages {
		p := fmt.Sprintf("%s.blockedImages[%d].name", base, i)
		if b.Name == "" {
			v.add(p, "required: a regular expression matched against image references")
			continue
		}
		if _, err := regexp.Compile(b.Name); err != nil {
			v.add(p, "%q is not a regular expression (Go syntax, as oc-mirror reads it): %v", b.Name, err)
		}
	}
	if len(m.Helm.Repositories) > 0 || len(m.Helm.Local) > 0 {
		v.add(base+".helm", "helm is not supported yet: list the charts' images under additionalImages instead")
	}
	if len(m.Samples) > 0 {
		v.add(base+".samples", "samples is not implemented (oc-mirror does not implement it either): remove it")
	}
}

func (v *validator) platform(base string, p *Platform) {
	names := map[string]int{}
	for i, c := range p.Channels {
		cp := fmt.Sprintf("%s.channels[%d]", base, i)
		if c.Name == "" {
			v.add(cp+".name", "required: the update channel, e.g. stable-4.16")
		} else if j, dup := names[c.Name]; dup {
			v.add(cp+".name", "channel %q is already listed at %s.channels[%d]", c.Name, base, j)
		} else {
			names[c.Name] = i
		}
		switch c.Type {
		case "", ChannelOCP, ChannelOKD:
		default:
			v.add(cp+".type", "%q is not a channel type: want ocp (the default) or okd", c.Type)
		}
		minV := v.releaseVersion(cp+".minVersion", c.MinVersion)
		maxV := v.releaseVersion(cp+".maxVersion", c.MaxVersion)
		if minV != nil && maxV != nil && minV.GT(*maxV) {
			v.add(cp+".minVersion", "minVersion %s is above maxVersion %s", c.MinVersion, c.MaxVersion)
		}
	}
	seen := map[string]bool{}
	for i, a := range p.Architectures {
		ap := fmt.Sprintf("%s.architectures[%d]", base, i)
		switch {
		case archAliases[a] != "":
			v.add(ap, "%q: the update graph spells it %q", a, archAliases[a])
		case !slices.Contains(Architectures, a):
			v.add(ap, "%q is not a release architecture: want one of %s", a, strings.Join(Architectures, ", "))
		case seen[a]:
			v.add(ap, "%q is listed twice", a)
		}
		seen[a] = true
	}
	if len(p.Platforms) > 0 {
		if len(p.Architectures) > 0 {
			v.add(base+".platforms", "platforms and architectures cannot be used together (as in oc-mirror)")
		} else {
			v.add(base+".platforms", "platforms (sparse release indexes) is not supported yet: use architectures (e.g. [multi] or [amd64, arm64])")
		}
	}
	if p.Release != "" {
		if _, err := parseImageRef(p.Release); err != nil {
			v.add(base+".release", "%v", err)
		}
	}
	if p.KubeVirtContainer {
		v.add(base+".kubeVirtContainer", "kubeVirtContainer is not supported yet: list the KubeVirt container image under additionalImages instead")
	}
}

// releaseVersion parses a release version as the update graph spells them:
// full semantic versions (4.16.3, 4.17.0-rc.1).
func (v *validator) releaseVersion(path, s string) *semver.Version {
	if s == "" {
		return nil
	}
	ver, err := semver.Parse(s)
	if err != nil {
		v.add(path, "%q is not a release version (want MAJOR.MINOR.PATCH, e.g. 4.16.3): %v", s, err)
		return nil
	}
	return &ver
}

// bundleVersion parses a bundle version bound, as leniently as oc-mirror
// does (1.2, v1.2.3).
func (v *validator) bundleVersion(path, s string) *semver.Version {
	if s == "" {
		return nil
	}
	ver, err := semver.ParseTolerant(s)
	if err != nil {
		v.add(path, "%q is not a semantic version: %v", s, err)
		return nil
	}
	return &ver
}

func (v *validator) operator(base string, o *Operator, unique map[string]string) {
	switch {
	case o.Catalog == "":
		v.add(base+".catalog", "required: the catalog image (a registry reference or oci://PATH)")
	default:
		if p, ok := ociPath(o.Catalog); ok {
			if strings.Trim(p, "/") == "" {
				v.add(base+".catalog", "%q names no OCI layout directory", o.Catalog)
			}
		} else if _, err := parseImageRef(o.Catalog); err != nil {
			v.add(base+".catalog", "%v", err)
		}
	}
	if o.TargetCatalog != "" && !pathComponentRE.MatchString(o.TargetCatalog) {
		v.add(base+".targetCatalog", "%q is not a repository path (lower-case path components separated by /, no tag or digest)", o.TargetCatalog)
	}
	if o.TargetTag != "" && !tagRE.MatchString(o.TargetTag) {
		v.add(base+".targetTag", "%q is not a tag (letters, digits, _ . -, at most 128, not starting with . or -)", o.TargetTag)
	}
	if o.TargetCatalogSourceTemplate != "" {
		v.add(base+".targetCatalogSourceTemplate", "targetCatalogSourceTemplate is not supported yet: edit the written CatalogSource instead")
	}
	v.platforms(base+".platforms", o.Platforms)
	if o.Catalog != "" {
		key := o.Catalog + "|" + o.TargetCatalog + "|" + o.TargetTag
		if prev, dup := unique[key]; dup {
			v.add(base+".catalog", "catalog %q with the same target is already listed at %s", o.Catalog, prev)
		} else {
			unique[key] = base
		}
	}
	pkgs := map[string]int{}
	for i, p := range o.Packages {
		pp := fmt.Sprintf("%s.packages[%d]", base, i)
		if p.Name == "" {
			v.add(pp+".name", "required: the package name")
		} else if j, dup := pkgs[p.Name]; dup {
			v.add(pp+".name", "package %q is already listed at %s.packages[%d]", p.Name, base, j)
		} else {
			pkgs[p.Name] = i
		}
		pkgBounds := p.MinVersion != "" || p.MaxVersion != ""
		minV, maxV := v.bundleVersion(pp+".minVersion", p.MinVersion), v.bundleVersion(pp+".maxVersion", p.MaxVersion)
		if minV != nil && maxV != nil && minV.GT(*maxV) {
			v.add(pp+".minVersion", "minVersion %s is above maxVersion %s", p.MinVersion, p.MaxVersion)
		}
		chans := map[string]int{}
		for j, c := range p.Channels {
			cp := fmt.Sprintf("%s.channels[%d]", pp, j)
			if c.Name == "" {
				v.add(cp+".name", "required: the channel name")
			} else if k, dup := chans[c.Name]; dup {
				v.add(cp+".name", "channel %q is already listed at %s.channels[%d]", c.Name, pp, k)
			} else {
				chans[c.Name] = j
			}
			cmin, cmax := v.bundleVersion(cp+".minVersion", c.MinVersion), v.bundleVersion(cp+".maxVersion", c.MaxVersion)
			if cmin != nil && cmax != nil && cmin.GT(*cmax) {
				v.add(cp+".minVersion", "minVersion %s is above maxVersion %s", c.MinVersion, c.MaxVersion)
			}
			if pkgBounds && (c.MinVersion != "" || c.MaxVersion != "") {
				v.add(cp, "package %q bounds versions both for the package and for this channel; use one or the other (as in oc-mirror)", p.Name)
			}
		}
	}
}

func (v *validator) additional(base string, a AdditionalImage) {
	if a.Name == "" {
		v.add(base+".name", "required: the image reference")
	} else if _, ok := ociPath(a.Name); ok {
		v.add(base+".name", "%q: additional images from OCI layouts are not supported yet: name a registry image", a.Name)
	} else if _, err := parseImageRef(a.Name); err != nil {
		v.add(base+".name", "%v", err)
	}
	if a.TargetRepo != "" && !pathComponentRE.MatchString(a.TargetRepo) {
		v.add(base+".targetRepo", "%q is not a repository path (lower-case path components separated by /, no tag or digest)", a.TargetRepo)
	}
	if a.TargetTag != "" && !tagRE.MatchString(a.TargetTag) {
		v.add(base+".targetTag", "%q is not a tag (letters, digits, _ . -, at most 128, not starting with . or -)", a.TargetTag)
	}
	v.platforms(base+".platforms", a.Platforms)
}

func (v *validator) platforms(base string, ps []InstancePlatform) {
	for i, p := range ps {
		pp := fmt.Sprintf("%s[%d]", base, i)
		if p.OS == "" {
			v.add(pp+".os", "required, e.g. linux")
		}
		if p.Architecture == "" {
			v.add(pp+".architecture", "required, e.g. amd64")
		}
	}
}
