package mirror

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"
)

// ImageReferencesPath is where a release payload lists its components.
const ImageReferencesPath = "release-manifests/image-references"

// Payload is what a release image says about itself.
type Payload struct {
	// Version is the image-references ImageStream's name, e.g. 4.16.0.
	Version string
	// Arch is the cluster tooling's spelling (x86_64, aarch64, ppc64le,
	// s390x) or "multi" for a manifest-listed release.
	Arch string
	// Digest of the release image (index digest for a multi-arch release).
	Digest     v1.Hash
	Components []PayloadComponent
}

// PayloadComponent is one image-references tag.
type PayloadComponent struct {
	Name string
	// Ref is the pinned source reference, host/repo@sha256:...
	Ref name.Digest
}

// ErrNotPinned is returned when image-references names a component by tag.
var ErrNotPinned = errors.New("image-references should only contain pointers to images by digest")

// ReadPayload reads the release image repo@ref from src: its architecture
// and the components its image-references pins.
func ReadPayload(ctx context.Context, src Source, repo, ref string) (*Payload, error) {
	top, err := src.GetManifest(ctx, repo, ref)
	if err != nil {
		return nil, fmt.Errorf("release image: %w", err)
	}
	p := &Payload{Digest: top.Digest}
	m := top
	if isIndex(top.MediaType) {
		p.Arch = "multi"
		var idx v1.IndexManifest
		if err := json.Unmarshal(top.Raw, &idx); err != nil {
			return nil, fmt.Errorf("release index %s: %w", top.Digest, err)
		}
		if len(idx.Manifests) == 0 {
			return nil, fmt.Errorf("release index %s is empty", top.Digest)
		}
		pick := idx.Manifests[0]
		for _, d := range idx.Manifests {
			if d.Platform != nil && d.Platform.Architecture == "amd64" {
				pick = d
			}
		}
		if m, err = src.GetManifest(ctx, repo, pick.Digest.String()); err != nil {
			return nil, fmt.Errorf("release image %s: %w", pick.Digest, err)
		}
	}
	var im v1.Manifest
	if err := json.Unmarshal(m.Raw, &im); err != nil {
		return nil, fmt.Errorf("release manifest %s: %w", m.Digest, err)
	}
	if p.Arch == "" {
		cfg, err := readAll(ctx, src, repo, im.Config, 4<<20)
		if err != nil {
			return nil, fmt.Errorf("release config: %w", err)
		}
		var cf v1.ConfigFile
		if err := json.Unmarshal(cfg, &cf); err != nil {
			return nil, fmt.Errorf("release config %s: %w", im.Config.Digest, err)
		}
		p.Arch = ReleaseArch(cf.Architecture)
	}
	// Later layers win, so search from the top.
	var refs []byte
	for i := len(im.Layers) - 1; i >= 0 && refs == nil; i-- {
		if refs, err = findInLayer(ctx, src, repo, im.Layers[i], ImageReferencesPath); err != nil {
			return nil, err
		}
	}
	if refs == nil {
		return nil, fmt.Errorf("release image %s has no %s: is it a release payload?", m.Digest, ImageReferencesPath)
	}
	version, comps, err := ParseImageReferences(refs)
	if err != nil {
		return nil, err
	}
	p.Version, p.Components = version, comps
	return p, nil
}

// ReleaseArch maps a Go architecture to the release tooling's tag spelling.
func ReleaseArch(goarch string) string {
	switch goarch {
	case "amd64", "":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return goarch
}

func readAll(ctx context.Context, src Source, repo string, d v1.Descriptor, limit int64) ([]byte, error) {
	rc, err := src.OpenBlob(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit))
}

// findInLayer returns the file at want inside a (gzip'd) tar layer, or nil.
func findInLayer(ctx context.Context, src Source, repo string, d v1.Descriptor, want string) ([]byte, error) {
	rc, err := src.OpenBlob(ctx, repo, d)
	if err != nil {
		return nil, fmt.Errorf("release layer %s: %w", d.Digest, err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("release layer %s: %w", d.Digest, err)
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("release layer %s: %w", d.Digest, err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "/")) == want && h.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, 64<<20))
		}
	}
}

// ParseImageReferences reads the image-references ImageStream. Every
// component must be pinned by digest; all that are not are named at once.
func ParseImageReferences(data []byte) (version string, comps []PayloadComponent, err error) {
	var is struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Tags []struct {
				Name string `json:"name"`
				From *struct {
					Kind string `json:"kind"`
					Name string `json:"name"`
				} `json:"from"`
			} `json:"tags"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(data, &is); err != nil {
		return "", nil, fmt.Errorf("%s: %w", ImageReferencesPath, err)
	}
	if is.Kind != "ImageStream" {
		return "", nil, fmt.Errorf("%s: kind is %q, want ImageStream", ImageReferencesPath, is.Kind)
	}
	if is.Metadata.Name == "" {
		return "", nil, fmt.Errorf("%s: metadata.name (the release version) is empty", ImageReferencesPath)
	}
	var bad []string
	seen := map[string]bool{}
	for i, t := range is.Spec.Tags {
		if t.From == nil || t.From.Kind != "DockerImage" || t.Name == "" {
			bad = append(bad, fmt.Sprintf("spec.tags[%d] (%s): want a name and from.kind DockerImage", i, t.Name))
			continue
		}
		if seen[t.Name] {
			bad = append(bad, fmt.Sprintf("spec.tags[%d]: duplicate component %q", i, t.Name))
			continue
		}
		seen[t.Name] = true
		d, err := name.NewDigest(t.From.Name)
		if err != nil {
			bad = append(bad, fmt.Sprintf("spec.tags[%d] (%s): %q is not pinned by digest", i, t.Name, t.From.Name))
			continue
		}
		comps = append(comps, PayloadComponent{Name: t.Name, Ref: d})
	}
	if len(bad) > 0 {
		return "", nil, fmt.Errorf("%s: %w:\n  %s", ImageReferencesPath, ErrNotPinned, strings.Join(bad, "\n  "))
	}
	return is.Metadata.Name, comps, nil
}

// ReleaseTarget says where a release goes.
type ReleaseTarget struct {
	// Repo is the one repository (host/path) every component goes to.
	Repo name.Repository
	// ReleaseImage, when set, is where the release image itself goes
	// (default Repo:<version>-<arch>).
	ReleaseImage name.Reference
}

// PlannedImage is one source → destination pair of a release mirror.
type PlannedImage struct {
	Component   string `json:"component"` // "" for the release image
	Source      string `json:"source"`
	Destination string `json:"destination"`
}

// ReleasePlan is every copy a release mirror makes, and the mirror sets.
type ReleasePlan struct {
	Version string         `json:"version"`
	Arch    string         `json:"arch"`
	Images  []PlannedImage `json:"images"`
	Mirrors []MirrorSource `json:"mirrors"`
}

// PlanRelease maps the release image (source reference relRef) and each
// component into t, tagged <version>-<arch>[-<component>] as the cluster's
// own tooling does.
func PlanRelease(p *Payload, relRef name.Reference, t ReleaseTarget) *ReleasePlan {
	plan := &ReleasePlan{Version: p.Version, Arch: p.Arch}
	base := p.Version + "-" + p.Arch
	relDst := t.ReleaseImage
	if relDst == nil {
		relDst = t.Repo.Tag(base)
	}
	relSrc := relRef.Context().Digest(p.Digest.String())
	plan.Images = append(plan.Images, PlannedImage{Source: relSrc.String(), Destination: relDst.String()})
	mirrors := map[string]map[string]bool{}
	add := func(src, dst string) {
		if mirrors[src] == nil {
			mirrors[src] = map[string]bool{}
		}
		mirrors[src][dst] = true
	}
	add(relRef.Context().String(), relDst.Context().String())
	for _, c := range p.Components {
		dst := t.Repo.Tag(TagName(base + "-" + c.Name))
		plan.Images = append(plan.Images, PlannedImage{Component: c.Name, Source: c.Ref.String(), Destination: dst.String()})
		add(c.Ref.Context().String(), t.Repo.String())
	}
	for src, dsts := range mirrors {
		ms := MirrorSource{Source: src}
		for d := range dsts {
			if d != src {
				ms.Mirrors = append(ms.Mirrors, d)
			}
		}
		if len(ms.Mirrors) == 0 {
			continue
		}
		sort.Strings(ms.Mirrors)
		plan.Mirrors = append(plan.Mirrors, ms)
	}
	sort.Slice(plan.Mirrors, func(i, j int) bool { return plan.Mirrors[i].Source < plan.Mirrors[j].Source })
	return plan
}

// TagName makes s a valid tag: allowed characters, at most 128 long.
func TagName(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || (i > 0 && (c == '.' || c == '-'))
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) > 128 {
		b = b[:128]
	}
	return string(b)
}

// MirrorSource is one source repository and the repositories mirroring it,
// the shape shared by ImageDigestMirrorSet, ICSP and install-config.
type MirrorSource struct {
	Source  string   `json:"source"`
	Mirrors []string `json:"mirrors"`
}

// MaxObjectBytes keeps each generated object well under etcd's limit, as
// oc-mirror does.
const MaxObjectBytes = 250_000

// InstallConfigSnippet renders the imageContentSources (or, with digest
// set, imageDigestSources) stanza for install-config.yaml.
func InstallConfigSnippet(ms []MirrorSource, digestSources bool) string {
	key := "imageContentSources"
	if digestSources {
		key = "imageDigestSources"
	}
	out, _ := yaml.Marshal(map[string]any{key: normalize(ms)})
	return string(out)
}

type objectMeta struct {
	Name string `json:"name"`
}

type idmsObject struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		ImageDigestMirrors []MirrorSource `json:"imageDigestMirrors"`
	} `json:"spec"`
}

type icspObject struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		RepositoryDigestMirrors []MirrorSource `json:"repositoryDigestMirrors"`
	} `json:"spec"`
}

type itmsObject struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		ImageTagMirrors []MirrorSource `json:"imageTagMirrors"`
	} `json:"spec"`
}

// ImageTagMirrorSets renders ms as ImageTagMirrorSet YAML (mirrors used for
// pulls by tag), split like ImageDigestMirrorSets.
func ImageTagMirrorSets(name string, ms []MirrorSource) ([]byte, error) {
	return splitObjects(name, ms, func(n string, part []MirrorSource) any {
		o := itmsObject{APIVersion: "config.openshift.io/v1", Kind: "ImageTagMirrorSet", Metadata: objectMeta{Name: n}}
		o.Spec.ImageTagMirrors = part
		return o
	})
}

// ImageDigestMirrorSets renders ms as ImageDigestMirrorSet YAML documents
// named <name>-0, <name>-1, ..., each under MaxObjectBytes, joined by "---".
func ImageDigestMirrorSets(name string, ms []MirrorSource) ([]byte, error) {
	return splitObjects(name, ms, func(n string, part []MirrorSource) any {
		o := idmsObject{APIVersion: "config.openshift.io/v1", Kind: "ImageDigestMirrorSet", Metadata: objectMeta{Name: n}}
		o.Spec.ImageDigestMirrors = part
		return o
	})
}

// ImageContentSourcePolicies renders ms as ImageContentSourcePolicy YAML,
// split like ImageDigestMirrorSets.
func ImageContentSourcePolicies(name string, ms []MirrorSource) ([]byte, error) {
	return splitObjects(name, ms, func(n string, part []MirrorSource) any {
		o := icspObject{APIVersion: "operator.openshift.io/v1alpha1", Kind: "ImageContentSourcePolicy", Metadata: objectMeta{Name: n}}
		o.Spec.RepositoryDigestMirrors = part
		return o
	})
}

func splitObjects(name string, ms []MirrorSource, build func(string, []MirrorSource) any) ([]byte, error) {
	ms = normalize(ms)
	render := func(i int, part []MirrorSource) ([]byte, error) {
		return yaml.Marshal(build(fmt.Sprintf("%s-%d", name, i), part))
	}
	// Sizes add up: each entry costs its own rendering, indented two
	// spaces deeper under spec, on top of the empty object.
	empty, err := render(0, nil)
	if err != nil {
		return nil, err
	}
	const margin = 1024
	var parts [][]MirrorSource
	var part []MirrorSource
	size := len(empty) + 32 // digits in the name
	for _, m := range ms {
		one, err := yaml.Marshal([]MirrorSource{m})
		if err != nil {
			return nil, err
		}
		cost := len(one) + 2*bytes.Count(one, []byte("\n"))
		if len(part) > 0 && size+cost > MaxObjectBytes-margin {
			parts = append(parts, part)
			part, size = nil, len(empty)+32
		}
		part = append(part, m)
		size += cost
	}
	if len(part) > 0 || len(parts) == 0 {
		parts = append(parts, part)
	}
	docs := make([][]byte, len(parts))
	for i, p := range parts {
		if docs[i], err = render(i, p); err != nil {
			return nil, err
		}
		if len(docs[i]) > MaxObjectBytes {
			return nil, fmt.Errorf("%s-%d: one object is %d bytes, over the %d limit", name, i, len(docs[i]), MaxObjectBytes)
		}
	}
	return bytes.Join(docs, []byte("---\n")), nil
}

// normalize sorts sources, merges duplicates and deduplicates mirrors
// (the API rejects duplicate mirrors) while keeping each source's mirror
// order.
func normalize(ms []MirrorSource) []MirrorSource {
	bySrc := map[string]*MirrorSource{}
	var order []string
	for _, m := range ms {
		e, ok := bySrc[m.Source]
		if !ok {
			e = &MirrorSource{Source: m.Source}
			bySrc[m.Source] = e
			order = append(order, m.Source)
		}
		for _, mi := range m.Mirrors {
			if mi != m.Source && !slices.Contains(e.Mirrors, mi) {
				e.Mirrors = append(e.Mirrors, mi)
			}
		}
	}
	sort.Strings(order)
	out := make([]MirrorSource, 0, len(order))
	for _, s := range order {
		if len(bySrc[s].Mirrors) > 0 {
			out = append(out, *bySrc[s])
		}
	}
	return out
}
