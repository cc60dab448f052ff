package imageset

// The types below are mirror.openshift.io/v2alpha1 as oc-mirror v2 reads
// it: the same field names, the same nesting, the same kinds. Field names
// are the JSON names; the catalog filter (package internal/mirror/catalog)
// uses the same names so an Operator converts to its Filter field by field.

// APIVersion is the only apiVersion accepted.
const APIVersion = "mirror.openshift.io/v2alpha1"

// The two kinds.
const (
	KindImageSetConfiguration       = "ImageSetConfiguration"
	KindDeleteImageSetConfiguration = "DeleteImageSetConfiguration"
)

// ImageSetConfiguration says what to mirror.
type ImageSetConfiguration struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Mirror is what to mirror; required (it may be empty).
	Mirror Mirror `json:"mirror"`
	// ArchiveSize is the largest archive, in GiB (0: the default).
	ArchiveSize int64 `json:"archiveSize,omitempty"`

	src *source
}

// DeleteImageSetConfiguration says what to delete from a mirror.
type DeleteImageSetConfiguration struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Delete is what to remove; required.
	Delete Delete `json:"delete"`

	src *source
}

// Mirror is the content of an image set.
type Mirror struct {
	Platform         Platform          `json:"platform,omitempty"`
	Operators        []Operator        `json:"operators,omitempty"`
	AdditionalImages []AdditionalImage `json:"additionalImages,omitempty"`
	// Helm is read so a file oc-mirror accepts parses; a non-empty one is
	// refused (not supported yet).
	Helm Helm `json:"helm,omitempty"`
	// BlockedImages are regular expressions (Go syntax, unanchored, as
	// oc-mirror matches them) against every image's source and destination.
	BlockedImages []BlockedImage `json:"blockedImages,omitempty"`
	// Samples is accepted empty only: oc-mirror does not implement it.
	Samples []SampleImage `json:"samples,omitempty"`
}

// Delete is the content a DeleteImageSetConfiguration removes. It has no
// blockedImages.
type Delete struct {
	Platform         Platform          `json:"platform,omitempty"`
	Operators        []Operator        `json:"operators,omitempty"`
	AdditionalImages []AdditionalImage `json:"additionalImages,omitempty"`
	Helm             Helm              `json:"helm,omitempty"`
	Samples          []SampleImage     `json:"samples,omitempty"`
}

// Platform selects OpenShift or OKD releases.
type Platform struct {
	// Graph asks for the update-graph data image and an UpdateService.
	Graph    bool             `json:"graph,omitempty"`
	Channels []ReleaseChannel `json:"channels,omitempty"`
	// Architectures are release architectures: amd64, arm64, ppc64le,
	// s390x or multi (a manifest-listed release). Default amd64.
	Architectures []string `json:"architectures,omitempty"`
	// Platforms is oc-mirror's sparse-manifest selection; refused (not
	// supported yet) because it changes the release index digest that the
	// release signature covers unless the registry keeps sparse lists.
	Platforms []InstancePlatform `json:"platforms,omitempty"`
	// Release is one release image by reference, beside the channels.
	Release string `json:"release,omitempty"`
	// KubeVirtContainer is refused when true (not supported yet).
	KubeVirtContainer bool `json:"kubeVirtContainer,omitempty"`
}

// ReleaseChannel is one update channel and the versions taken from it.
type ReleaseChannel struct {
	Name string `json:"name"`
	// Type is ocp (default) or okd.
	Type string `json:"type,omitempty"`
	// MinVersion and MaxVersion bound the versions (inclusive). With
	// neither, the channel head; with MaxVersion only, from the lowest
	// version of the channel up to it; with MinVersion only, from it up to
	// the head.
	MinVersion string `json:"minVersion,omitempty"`
	MaxVersion string `json:"maxVersion,omitempty"`
	// ShortestPath takes only the releases on the shortest upgrade path
	// from MinVersion to MaxVersion.
	ShortestPath bool `json:"shortestPath,omitempty"`
	// Full takes every version (from MinVersion when set).
	Full bool `json:"full,omitempty"`
}

// The channel types.
const (
	ChannelOCP = "ocp"
	ChannelOKD = "okd"
)

// ChannelType is Type with its default applied.
func (c ReleaseChannel) ChannelType() string {
	if c.Type == "" {
		return ChannelOCP
	}
	return c.Type
}

// Operator is one catalog and the packages taken from it.
type Operator struct {
	// Catalog is a registry reference or oci://PATH of an OCI layout.
	Catalog  string           `json:"catalog"`
	Packages []IncludePackage `json:"packages,omitempty"`
	// TargetCatalog is the repository path (under the destination prefix)
	// of the rebuilt catalog.
	TargetCatalog string `json:"targetCatalog,omitempty"`
	// TargetTag is the rebuilt catalog's tag.
	TargetTag string `json:"targetTag,omitempty"`
	// Full takes every bundle instead of channel heads.
	Full bool `json:"full,omitempty"`
	// SkipDependencies does not add bundles the selected ones require.
	SkipDependencies bool `json:"skipDependencies,omitempty"`
	// TargetCatalogSourceTemplate is refused (not supported yet).
	TargetCatalogSourceTemplate string `json:"targetCatalogSourceTemplate,omitempty"`
	// Platforms limits which platforms of each image are copied.
	Platforms []InstancePlatform `json:"platforms,omitempty"`
}

// IncludePackage is one package of a catalog.
type IncludePackage struct {
	Name           string           `json:"name"`
	Channels       []IncludeChannel `json:"channels,omitempty"`
	DefaultChannel string           `json:"defaultChannel,omitempty"`
	// MinVersion and MaxVersion bound the bundle versions of every channel;
	// they may not be mixed with channel-level bounds.
	MinVersion string `json:"minVersion,omitempty"`
	MaxVersion string `json:"maxVersion,omitempty"`
}

// IncludeChannel is one channel of a package.
type IncludeChannel struct {
	Name       string `json:"name"`
	MinVersion string `json:"minVersion,omitempty"`
	MaxVersion string `json:"maxVersion,omitempty"`
}

// AdditionalImage is one image mirrored as it is.
type AdditionalImage struct {
	// Name is the source reference, by tag or digest (or both: pulled by
	// digest, pushed by tag).
	Name string `json:"name"`
	// TargetRepo replaces the repository path under the destination prefix.
	TargetRepo string `json:"targetRepo,omitempty"`
	// TargetTag replaces the destination tag.
	TargetTag string `json:"targetTag,omitempty"`
	// Platforms limits which platforms are copied.
	Platforms []InstancePlatform `json:"platforms,omitempty"`
}

// BlockedImage is a regular expression; images it matches are not mirrored.
type BlockedImage struct {
	Name string `json:"name"`
}

// SampleImage is oc-mirror's unimplemented samples entry.
type SampleImage struct {
	Name string `json:"name"`
}

// InstancePlatform is an os/architecture pair.
type InstancePlatform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
}

// String is "os/architecture".
func (p InstancePlatform) String() string { return p.OS + "/" + p.Architecture }

// Helm is oc-mirror's helm section, parsed so it can be refused by name.
type Helm struct {
	Repositories []HelmRepository `json:"repositories,omitempty"`
	Local        []HelmChart      `json:"local,omitempty"`
}

// HelmRepository is a chart repository.
type HelmRepository struct {
	URL    string      `json:"url"`
	Name   string      `json:"name"`
	Charts []HelmChart `json:"charts"`
}

// HelmChart is one chart.
type HelmChart struct {
	Name       string             `json:"name"`
	Version    string             `json:"version,omitempty"`
	Path       string             `json:"path,omitempty"`
	ImagePaths []string           `json:"imagePaths,omitempty"`
	Platforms  []InstancePlatform `json:"platforms,omitempty"`
}
