package imageset

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/berth-registry/berth/internal/mirror"
)

// Repositories oc-mirror v2 mirrors releases and the graph-data image into,
// under the destination prefix.
const (
	ReleaseImagesRepository = "openshift/release-images"
	ReleaseRepository       = "openshift/release"
	GraphImageRepository    = "openshift/graph-image"
)

// DefaultGraphImage is the graph-data image mirrored for graph: true when
// PlanOptions.GraphImage is empty. oc-mirror v2 does not pull one: it
// builds it (the graph-data tarball from the update service on a UBI base)
// and pushes it as openshift/graph-image:latest; berth mirrors a prebuilt
// image instead, under the same destination name.
const DefaultGraphImage = "quay.io/openshift/graph-data:latest"

// PlanOptions are the inputs of a plan besides the configuration.
type PlanOptions struct {
	// Target is REGISTRY[/PREFIX] (--to), or "" when the set is written
	// into a directory: destinations are then repository paths inside it.
	Target string
	// GraphImage is the graph-data image to mirror for graph: true
	// (default DefaultGraphImage).
	GraphImage string
}

// Plan is every image an ImageSetConfiguration mirrors and where it goes.
// Destinations are complete references under Target (repository paths when
// Target is "").
type Plan struct {
	Target string `json:"target"`
	// Delete marks the plan of a DeleteImageSetConfiguration: its
	// destinations are what is removed.
	Delete   bool        `json:"delete,omitempty"`
	Releases []Release   `json:"releases,omitempty"`
	Graph    *GraphImage `json:"graph,omitempty"`
	Images   []Image     `json:"images,omitempty"`
	Catalogs []Catalog   `json:"catalogs,omitempty"`
	// Blocked lists what blockedImages removed from the plan, and why.
	Blocked []Blocked `json:"blocked,omitempty"`
	// Notes are decisions worth telling the user (nothing failed).
	Notes []string `json:"notes,omitempty"`

	rules []blockRule
}

// Release is one release payload to mirror. Its components are read from
// the payload when it is copied (mirror.ReadPayload) and named by
// ReleaseTarget.
type Release struct {
	// Version and Arch come from the update graph; both are "" for
	// platform.release, whose payload says them.
	Version string `json:"version,omitempty"`
	Arch    string `json:"arch,omitempty"`
	// Source is the payload, by digest when it came from the graph.
	Source string `json:"source"`
	// Channels that selected it (or "platform.release"); for an upgrade
	// path release, the channel it was found in.
	Channels []string `json:"channels"`
	// UpgradePath is set when no channel selected it: it is on the update
	// path between two listed channels, which oc-mirror mirrors too.
	UpgradePath bool `json:"upgradePath,omitempty"`
	// Destination of the release image ("" until the payload is read, for
	// platform.release); component images go to Components:<tag>.
	Destination string `json:"destination,omitempty"`
	Components  string `json:"components"`
}

// GraphImage is the graph-data image and the UpdateService that serves it.
type GraphImage struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// Releases is the repository the UpdateService reads releases from.
	Releases string `json:"releases"`

	line int
}

// Image is one additional image.
type Image struct {
	// Field is where the ISC names it, e.g. mirror.additionalImages[2].
	Field string `json:"field"`
	// Origin is the reference as written.
	Origin string `json:"origin"`
	// Source is what is pulled: by digest when the ISC gives one.
	Source string `json:"source"`
	// Destination is by tag (sha256-<hex> for a digest-only source).
	Destination string   `json:"destination"`
	Platforms   []string `json:"platforms,omitempty"`

	line int // of Field in the configuration
}

// Catalog is one operator catalog, passed through to the catalog filter
// with where its rebuilt image goes.
type Catalog struct {
	Field    string   `json:"field"`
	Operator Operator `json:"operator"`
	// Source is the catalog to read: a registry reference (by digest when
	// given) or oci://PATH.
	Source string `json:"source"`
	// Destination is where the rebuilt catalog is pushed, by tag.
	Destination string `json:"destination"`
}

// Blocked is one image blockedImages removed.
type Blocked struct {
	Source      string `json:"source"`
	Destination string `json:"destination,omitempty"`
	// Reason names the rule, e.g. `mirror.blockedImages[0] "^docker.io/" (isc.yaml:31:13)`.
	Reason string `json:"reason"`
}

type blockRule struct {
	re     *regexp.Regexp
	reason string
}

// NewPlan resolves c into a plan: release channels through graphs (which
// may be nil when c names no channel), destinations under opts.Target, and
// blockedImages applied to every image. Every problem is returned at once;
// problems about the configuration name its file, line and field.
func NewPlan(ctx context.Context, c *ImageSetConfiguration, graphs GraphSource, opts PlanOptions) (*Plan, error) {
	if c.src == nil { // built in code, not parsed (and so not yet validated)
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	return newPlan(ctx, &c.Mirror, "mirror", c.src, graphs, opts)
}

// NewDeletePlan resolves a DeleteImageSetConfiguration the same way: the
// plan's destinations are what `berth mirror delete` removes from the
// mirror under opts.Target.
func NewDeletePlan(ctx context.Context, d *DeleteImageSetConfiguration, graphs GraphSource, opts PlanOptions) (*Plan, error) {
	if d.src == nil {
		if err := d.Validate(); err != nil {
			return nil, err
		}
	}
	m := Mirror{Platform: d.Delete.Platform, Operators: d.Delete.Operators, AdditionalImages: d.Delete.AdditionalImages}
	p, err := newPlan(ctx, &m, "delete", d.src, graphs, opts)
	if p != nil {
		p.Delete = true
	}
	return p, err
}

func newPlan(ctx context.Context, m *Mirror, base string, src *source, graphs GraphSource, opts PlanOptions) (*Plan, error) {
	target, err := parseTarget(opts.Target)
	if err != nil {
		return nil, err
	}
	p := &Plan{Target: target}
	in := &planInput{m: m, base: base, src: src}
	for i, b := range m.BlockedImages {
		f := fmt.Sprintf("%s.blockedImages[%d]", base, i)
		re, err := regexp.Compile(b.Name)
		if err != nil {
			return nil, src.at(f+".name", "%v", err)
		}
		reason := fmt.Sprintf("%s %q", f, b.Name)
		if w := src.where(f); w != "" {
			reason += " (" + w + ")"
		}
		p.rules = append(p.rules, blockRule{re: re, reason: reason})
	}
	var errs []error
	errs = append(errs, p.planReleases(ctx, in, graphs)...)
	if m.Platform.Graph {
		gsrc := opts.GraphImage
		if gsrc == "" {
			gsrc = DefaultGraphImage
		}
		ref, err := parseImageRef(gsrc)
		if err != nil {
			errs = append(errs, fmt.Errorf("graph-data image: %w", err))
		} else {
			g := &GraphImage{Source: ref.Pull(), Destination: p.dest(GraphImageRepository, "latest"), Releases: p.dest(ReleaseImagesRepository, ""),
				line: in.at("platform.graph", "").Line}
			if !p.block(ref.Pull(), g.Destination) {
				p.Graph = g
			}
		}
	}
	errs = append(errs, p.planImages(in)...)
	errs = append(errs, p.planCatalogs(in)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// planInput is the configuration being planned and where its fields are.
type planInput struct {
	m    *Mirror
	base string // "mirror" or "delete"
	src  *source
}

func (in *planInput) at(path, format string, args ...any) *Problem {
	return in.src.at(in.base+"."+path, format, args...)
}

// parseTarget checks REGISTRY[/PREFIX] and returns it without a docker://
// scheme or trailing slash.
func parseTarget(t string) (string, error) {
	t = strings.TrimSuffix(strings.TrimPrefix(t, "docker://"), "/")
	if t == "" {
		return "", nil
	}
	host, prefix, _ := strings.Cut(t, "/")
	if _, err := name.NewRegistry(host, name.WeakValidation); err != nil || strings.ContainsAny(host, "@") {
		return "", fmt.Errorf("destination %q: want REGISTRY[/PREFIX]: bad registry %q", t, host)
	}
	if prefix != "" && !pathComponentRE.MatchString(prefix) {
		return "", fmt.Errorf("destination %q: want REGISTRY[/PREFIX]: %q is not a repository path prefix (lower-case path components, no tag)", t, prefix)
	}
	return t, nil
}

// dest is the destination reference of repo:tag under the target.
func (p *Plan) dest(repo, tag string) string {
	s := repo
	if p.Target != "" {
		s = p.Target + "/" + repo
	}
	if tag != "" {
		s += ":" + tag
	}
	return s
}

// BlockedBy says whether blockedImages removes the image (source as
// written or pulled, destination as planned) and why. The apply side calls
// it for what only the copy discovers: release components, bundles and
// related images.
func (p *Plan) BlockedBy(source, destination string) (reason string, blocked bool) {
	strip := func(s string) string {
		if _, rest, ok := strings.Cut(s, "://"); ok {
			return rest
		}
		return s
	}
	for _, r := range p.rules {
		if r.re.MatchString(strip(source)) || (destination != "" && r.re.MatchString(strip(destination))) {
			return r.reason, true
		}
	}
	return "", false
}

// block records and reports a blocked image.
func (p *Plan) block(source, destination string, more ...string) bool {
	for _, s := range append([]string{source}, more...) {
		if reason, ok := p.BlockedBy(s, destination); ok {
			p.Blocked = append(p.Blocked, Blocked{Source: source, Destination: destination, Reason: reason})
			return true
		}
	}
	return false
}

// ImageMappings are the graph-data image and the additional images as
// SRC DST pairs, the shape mirror.Client.PlanImageMirror takes (with the
// configuration's File, its errors name the ISC line). With no Target the
// destinations are the names inside the directory, as ImageRequest.ToDir
// wants them.
func (p *Plan) ImageMappings() []mirror.Mapping {
	var out []mirror.Mapping
	if g := p.Graph; g != nil {
		out = append(out, mirror.Mapping{Src: g.Source, Dst: g.Destination, Line: g.line})
	}
	for _, im := range p.Images {
		out = append(out, mirror.Mapping{Src: im.Source, Dst: im.Destination, Line: im.line})
	}
	return out
}

// ReleaseRequest is the mirror.Client.PlanReleaseMirror request that
// mirrors r as oc-mirror names it: components to Components, the release
// image to Destination. The caller adds ToDir or FromDir. For
// platform.release, whose Destination is known only from the payload, the
// release image would land under Components: read the payload and use
// ReleaseTarget instead.
func (r Release) ReleaseRequest() mirror.ReleaseRequest {
	return mirror.ReleaseRequest{From: r.Source, To: r.Components, ToReleaseImage: r.Destination}
}

// ReleaseTarget is where a payload's images go, as mirror.PlanRelease
// takes it: the release image to openshift/release-images:<version>-<arch>,
// its components to openshift/release:<version>-<arch>-<component>, with
// the version and arch the payload states. It needs a registry Target.
func (p *Plan) ReleaseTarget(pl *mirror.Payload) (mirror.ReleaseTarget, error) {
	if p.Target == "" {
		return mirror.ReleaseTarget{}, errors.New("release target: the plan has no destination registry")
	}
	repo, err := name.NewRepository(p.dest(ReleaseRepository, ""), name.WeakValidation)
	if err != nil {
		return mirror.ReleaseTarget{}, err
	}
	img, err := name.NewTag(p.dest(ReleaseImagesRepository, mirror.TagName(pl.Version+"-"+pl.Arch)), name.WeakValidation)
	if err != nil {
		return mirror.ReleaseTarget{}, err
	}
	return mirror.ReleaseTarget{Repo: repo, ReleaseImage: img}, nil
}

func (p *Plan) planReleases(ctx context.Context, in *planInput, graphs GraphSource) []error {
	pf := in.m.Platform
	archs := pf.Architectures
	if len(archs) == 0 {
		archs = []string{DefaultArchitecture}
	}
	if len(pf.Channels) > 0 && graphs == nil {
		return []error{in.at("platform.channels", "release channels need an update-graph service")}
	}
	var errs []error
	byPayload := map[string]*Release{}
	var order []string
	add := func(node GraphNode, arch, channel string, upgradePath bool) {
		r, ok := byPayload[node.Payload]
		if !ok {
			tag := mirror.TagName(node.Version + "-" + mirror.ReleaseArch(arch))
			r = &Release{Version: node.Version, Arch: arch, Source: node.Payload, UpgradePath: upgradePath,
				Destination: p.dest(ReleaseImagesRepository, tag), Components: p.dest(ReleaseRepository, "")}
			byPayload[node.Payload] = r
			order = append(order, node.Payload)
		}
		if ok && upgradePath {
			return // a listed channel selected it already
		}
		if !upgradePath {
			r.UpgradePath = false
		}
		if !slices.Contains(r.Channels, channel) {
			r.Channels = append(r.Channels, channel)
		}
	}
	for _, arch := range archs {
		var spans []channelSpan
		for i, ch := range pf.Channels {
			f := fmt.Sprintf("platform.channels[%d]", i)
			g, err := graphs.Graph(ctx, ch.ChannelType(), ch.Name, arch)
			if err != nil {
				errs = append(errs, in.at(f, "channel %q (%s): %v", ch.Name, arch, err))
				continue
			}
			sel, err := g.SelectReleases(ch, arch)
			if err != nil {
				errs = append(errs, in.at(f, "%v", err))
				continue
			}
			for _, n := range sel {
				add(g.Nodes[n], arch, ch.Name, false)
			}
			if ch.ChannelType() == ChannelOCP {
				spans = append(spans, channelSpan{channel: ch.Name, min: g.version(sel[0]), max: g.version(sel[len(sel)-1])})
			}
		}
		if len(errs) > 0 {
			continue
		}
		path, notes, err := crossChannelPath(ctx, graphs, arch, spans)
		if err != nil {
			errs = append(errs, in.at("platform.channels", "%v", err))
		}
		p.Notes = append(p.Notes, notes...)
		for _, n := range path {
			add(n.node, arch, n.channel, true)
		}
	}
	for _, k := range order {
		r := byPayload[k]
		sort.Strings(r.Channels)
		if !p.block(r.Source, r.Destination) {
			p.Releases = append(p.Releases, *r)
		}
	}
	sort.SliceStable(p.Releases, func(i, j int) bool {
		a, b := p.Releases[i], p.Releases[j]
		if a.Arch != b.Arch {
			return a.Arch < b.Arch
		}
		va, _ := semver.Parse(a.Version) // from a checked graph
		vb, _ := semver.Parse(b.Version)
		return va.LT(vb)
	})
	if pf.Release != "" {
		ref, err := parseImageRef(pf.Release)
		if err != nil {
			errs = append(errs, in.at("platform.release", "%v", err))
		} else if !p.block(ref.Pull(), "", pf.Release) {
			p.Releases = append(p.Releases, Release{Source: ref.Pull(), Channels: []string{"platform.release"}, Components: p.dest(ReleaseRepository, "")})
		}
	}
	return errs
}

func (p *Plan) planImages(in *planInput) []error {
	var errs []error
	byDest := map[string]Image{}
	for i, a := range in.m.AdditionalImages {
		f := fmt.Sprintf("%s.additionalImages[%d]", in.base, i)
		ref, err := parseImageRef(a.Name)
		if err != nil {
			errs = append(errs, in.src.at(f+".name", "%v", err))
			continue
		}
		repo, tag := ref.Path, ref.tagOrLatest()
		if ref.Digest != "" && ref.Tag == "" {
			tag = digestTag(ref.Digest)
		}
		if a.TargetRepo != "" {
			repo = strings.TrimPrefix(a.TargetRepo, "/")
		}
		if a.TargetTag != "" {
			tag = a.TargetTag
		}
		img := Image{Field: f, Origin: a.Name, Source: ref.Pull(), Destination: p.dest(repo, tag), line: in.src.at(f, "").Line}
		for _, pl := range a.Platforms {
			img.Platforms = append(img.Platforms, pl.String())
		}
		if prev, dup := byDest[img.Destination]; dup {
			if prev.Source != img.Source {
				errs = append(errs, in.src.at(f+".name", "%s and %s (%s) both go to %s; set targetRepo or targetTag on one", img.Origin, prev.Origin, prev.Field, img.Destination))
			}
			p.Notes = append(p.Notes, fmt.Sprintf("%s: %s is also %s; mirrored once", f, img.Origin, prev.Field))
			continue
		}
		byDest[img.Destination] = img
		if !p.block(img.Source, img.Destination, img.Origin) {
			p.Images = append(p.Images, img)
		}
	}
	return errs
}

func (p *Plan) planCatalogs(in *planInput) []error {
	var errs []error
	for i, o := range in.m.Operators {
		f := fmt.Sprintf("%s.operators[%d]", in.base, i)
		var src, repo, tag string
		if dir, ok := ociPath(o.Catalog); ok {
			src = "oci://" + dir
			repo, tag = path.Base(strings.TrimSuffix(dir, "/")), "latest"
		} else {
			ref, err := parseImageRef(o.Catalog)
			if err != nil {
				errs = append(errs, in.src.at(f+".catalog", "%v", err))
				continue
			}
			src, repo, tag = ref.Pull(), ref.Path, ref.tagOrLatest()
			if ref.Digest != "" && ref.Tag == "" {
				tag = digestTag(ref.Digest)
			}
		}
		if o.TargetCatalog != "" {
			repo = o.TargetCatalog
		}
		if o.TargetTag != "" {
			tag = o.TargetTag
		}
		dst := p.dest(repo, tag)
		if p.Target != "" {
			if _, err := name.NewTag(dst, name.WeakValidation); err != nil {
				errs = append(errs, in.src.at(f+".catalog", "destination %q is not a valid reference (%v); set targetCatalog", dst, err))
				continue
			}
		}
		if !p.block(src, dst, o.Catalog) {
			p.Catalogs = append(p.Catalogs, Catalog{Field: f, Operator: o, Source: src, Destination: dst})
		}
	}
	return errs
}
