package imageset

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"sigs.k8s.io/yaml"

	"github.com/berth-registry/berth/internal/mirror"
)

// The cluster resources are written as oc-mirror v2 writes them: the same
// kinds, names, namespaces, labels and file names, so a cluster that applied
// oc-mirror's files gets its objects updated, not duplicated. Two
// deliberate differences: catalogs are referenced by digest (a tag can move
// under a running catalog), and the annotations carry no creation time (a
// rerun of an unchanged set writes identical files).

// The names oc-mirror v2 uses.
const (
	UpdateServiceName        = "update-service-oc-mirror"
	UpdateServiceNamespace   = "openshift-update-service"
	SignatureConfigMapName   = "mirrored-release-signatures"
	SignatureNamespace       = "openshift-config-managed"
	SignatureLabel           = "release.openshift.io/verification-signatures"
	CatalogSourceNamespace   = "openshift-marketplace"
	UpdateServiceFile        = "updateService.yaml"
	SignatureConfigMapFile   = "signature-configmap.yaml"
	SignatureConfigMapJSON   = "signature-configmap.json"
	DigestMirrorSetFile      = "idms-oc-mirror.yaml"
	TagMirrorSetFile         = "itms-oc-mirror.yaml"
	catalogNameSuffixLength  = 12
	kubernetesNameMaxLength  = 63
	resourceCreatedByBerth   = "berth"
	resourceCreatedByKey     = "createdBy"
	catalogSourceAPIVersion  = "operators.coreos.com/v1alpha1"
	clusterCatalogAPIVersion = "olm.operatorframework.io/v1"
	updateServiceAPIVersion  = "updateservice.operator.openshift.io/v1"
)

// RebuiltCatalog is one catalog as pushed to the mirror.
type RebuiltCatalog struct {
	// Reference is where it was pushed (Catalog.Destination), normally by
	// tag; the tag names the objects, as oc-mirror names them.
	Reference string
	// Digest of the pushed image, sha256:<hex>; the objects pull by it.
	Digest string
}

type objectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func berthAnnotations() map[string]string {
	return map[string]string{resourceCreatedByKey: resourceCreatedByBerth}
}

// catalogObject resolves a rebuilt catalog to the object name (prefix
// "cs" or "cc", the repository's last path component, then the tag, or
// the first 12 hex digits of the digest) and the by-digest reference.
func catalogObject(prefix string, c RebuiltCatalog) (objName, byDigest string, err error) {
	ref, err := parseImageRef(c.Reference)
	if err != nil {
		return "", "", fmt.Errorf("catalog %q: %w", c.Reference, err)
	}
	d, err := name.NewDigest(ref.Name()+"@"+c.Digest, name.WeakValidation)
	if err != nil {
		return "", "", fmt.Errorf("catalog %q: digest %q: %v", c.Reference, c.Digest, err)
	}
	suffix := ref.Tag
	if suffix == "" {
		suffix = strings.TrimPrefix(d.DigestStr(), "sha256:")
	}
	if len(suffix) > catalogNameSuffixLength {
		suffix = suffix[:catalogNameSuffixLength]
	}
	repo := ref.Path[strings.LastIndex(ref.Path, "/")+1:]
	objName, err = kubernetesName(prefix, repo, suffix)
	if err != nil {
		return "", "", fmt.Errorf("catalog %q: %w", c.Reference, err)
	}
	return objName, ref.Name() + "@" + d.DigestStr(), nil
}

// kubernetesName joins parts with "-" into a DNS-1035 label: lower case,
// [a-z0-9-], at most 63 long, the middle part shortened when needed.
func kubernetesName(prefix, middle, suffix string) (string, error) {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
				return r
			case r >= 'A' && r <= 'Z':
				return r - 'A' + 'a'
			}
			return '-'
		}, s)
	}
	middle, suffix = clean(middle), clean(suffix)
	if room := kubernetesNameMaxLength - len(prefix) - len(suffix) - 2; len(middle) > room {
		middle = strings.TrimRight(middle[:max(room, 0)], "-")
	}
	n := strings.Trim(prefix+"-"+middle+"-"+suffix, "-")
	if len(n) > kubernetesNameMaxLength || n == "" || n[0] < 'a' || n[0] > 'z' {
		return "", fmt.Errorf("cannot make a resource name from %q", prefix+"-"+middle+"-"+suffix)
	}
	return n, nil
}

// CatalogSource renders the OLM v0 CatalogSource of a rebuilt catalog
// (namespace openshift-marketplace, sourceType grpc, image by digest) and
// returns its name (the file is <name>.yaml).
func CatalogSource(c RebuiltCatalog) (objName string, doc []byte, err error) {
	objName, image, err := catalogObject("cs", c)
	if err != nil {
		return "", nil, err
	}
	type spec struct {
		SourceType string `json:"sourceType"`
		Image      string `json:"image"`
	}
	doc, err = yaml.Marshal(struct {
		APIVersion string     `json:"apiVersion"`
		Kind       string     `json:"kind"`
		Metadata   objectMeta `json:"metadata"`
		Spec       spec       `json:"spec"`
	}{catalogSourceAPIVersion, "CatalogSource",
		objectMeta{Name: objName, Namespace: CatalogSourceNamespace, Annotations: berthAnnotations()},
		spec{SourceType: "grpc", Image: image}})
	return objName, doc, err
}

// ClusterCatalog renders the OLM v1 ClusterCatalog of a rebuilt catalog
// (source type Image, ref by digest) and returns its name.
func ClusterCatalog(c RebuiltCatalog) (objName string, doc []byte, err error) {
	objName, image, err := catalogObject("cc", c)
	if err != nil {
		return "", nil, err
	}
	type imageSource struct {
		Ref string `json:"ref"`
	}
	type source struct {
		Type  string      `json:"type"`
		Image imageSource `json:"image"`
	}
	type spec struct {
		// Priority is written as oc-mirror writes it (0, the default).
		Priority int    `json:"priority"`
		Source   source `json:"source"`
	}
	doc, err = yaml.Marshal(struct {
		APIVersion string     `json:"apiVersion"`
		Kind       string     `json:"kind"`
		Metadata   objectMeta `json:"metadata"`
		Spec       spec       `json:"spec"`
	}{clusterCatalogAPIVersion, "ClusterCatalog",
		objectMeta{Name: objName, Annotations: berthAnnotations()},
		spec{Source: source{Type: "Image", Image: imageSource{Ref: image}}}})
	return objName, doc, err
}

// UpdateService renders the OpenShift Update Service object: releases is
// the release-images repository (no tag or digest), graphImage the mirrored
// graph-data image.
func UpdateService(releases, graphImage string) ([]byte, error) {
	if _, err := name.NewRepository(releases, name.WeakValidation); err != nil || strings.ContainsAny(releases, "@") || strings.LastIndex(releases, ":") > strings.LastIndex(releases, "/") {
		return nil, fmt.Errorf("UpdateService releases %q: want a repository without tag or digest", releases)
	}
	if _, err := name.ParseReference(graphImage, name.WeakValidation); err != nil {
		return nil, fmt.Errorf("UpdateService graph-data image %q: %v", graphImage, err)
	}
	type spec struct {
		Replicas       int    `json:"replicas"`
		Releases       string `json:"releases"`
		GraphDataImage string `json:"graphDataImage"`
	}
	return yaml.Marshal(struct {
		APIVersion string     `json:"apiVersion"`
		Kind       string     `json:"kind"`
		Metadata   objectMeta `json:"metadata"`
		Spec       spec       `json:"spec"`
	}{updateServiceAPIVersion, "UpdateService",
		objectMeta{Name: UpdateServiceName, Namespace: UpdateServiceNamespace, Annotations: berthAnnotations()},
		spec{Replicas: 2, Releases: releases, GraphDataImage: graphImage}})
}

// ReleaseSignature is the signatures of one release image digest, in the
// order the signature store numbers them (signature-1, signature-2, …).
type ReleaseSignature struct {
	Digest     string
	Signatures [][]byte
}

type configMap struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   objectMeta        `json:"metadata"`
	BinaryData map[string][]byte `json:"binaryData"`
}

// SignatureConfigMap renders the one ConfigMap the cluster-version operator
// reads release signatures from (namespace openshift-config-managed, label
// release.openshift.io/verification-signatures), as YAML and as JSON, the
// two files oc-mirror writes. Keys are sha256-<hex>-<n>, n counting each
// digest's signatures from 1 (the operator takes every key that starts with
// the digest; oc-mirror counts across all digests instead, which makes the
// keys depend on the order releases were found). It returns nil documents
// when there is no signature, as oc-mirror writes no file then.
func SignatureConfigMap(sigs []ReleaseSignature) (yamlDoc, jsonDoc []byte, err error) {
	cm := configMap{APIVersion: "v1", Kind: "ConfigMap",
		Metadata:   objectMeta{Name: SignatureConfigMapName, Namespace: SignatureNamespace, Labels: map[string]string{SignatureLabel: ""}, Annotations: berthAnnotations()},
		BinaryData: map[string][]byte{}}
	seen := map[string]bool{}
	var errs []error
	for _, s := range sigs {
		h, err := name.NewDigest("x/y@"+s.Digest, name.WeakValidation)
		if err != nil {
			errs = append(errs, fmt.Errorf("release signature digest %q: %v", s.Digest, err))
			continue
		}
		prefix := strings.Replace(h.DigestStr(), ":", "-", 1)
		if seen[prefix] {
			errs = append(errs, fmt.Errorf("release signatures for %s given twice", s.Digest))
			continue
		}
		seen[prefix] = true
		for i, sig := range s.Signatures {
			if len(sig) == 0 {
				errs = append(errs, fmt.Errorf("release signature %d of %s is empty", i+1, s.Digest))
				continue
			}
			cm.BinaryData[fmt.Sprintf("%s-%d", prefix, i+1)] = sig
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	if len(cm.BinaryData) == 0 {
		return nil, nil, nil
	}
	if yamlDoc, err = yaml.Marshal(cm); err != nil {
		return nil, nil, err
	}
	if jsonDoc, err = json.MarshalIndent(cm, "", "  "); err != nil {
		return nil, nil, err
	}
	return yamlDoc, append(jsonDoc, '\n'), nil
}

// MirrorSets are the mirror set entries of one category of images.
type MirrorSets struct {
	Digest []mirror.MirrorSource
	Tag    []mirror.MirrorSource
}

// ClusterResources is everything an applied image set tells the cluster.
type ClusterResources struct {
	// Release, Operator and Generic are the mirror sets of release images
	// (and components), of catalogs' bundles and related images, and of
	// additional images: oc-mirror's three categories, written as objects
	// idms-release-0, idms-operator-0, idms-generic-0 (and itms-…).
	// Catalog and graph-data images belong in none of them.
	Release, Operator, Generic MirrorSets
	Catalogs                   []RebuiltCatalog
	// UpdateService, when set, is rendered with UpdateService.
	UpdateService *UpdateServiceRef
	Signatures    []ReleaseSignature
}

// UpdateServiceRef is what an UpdateService points at.
type UpdateServiceRef struct {
	Releases   string
	GraphImage string
}

// Files renders every resource into the files of cluster-resources/, by
// file name. Files with nothing in them are left out.
func (r ClusterResources) Files() (map[string][]byte, error) {
	out := map[string][]byte{}
	var errs []error
	sets := func(file string, render func(string, []mirror.MirrorSource) ([]byte, error), prefix string, pick func(MirrorSets) []mirror.MirrorSource) {
		var docs []string
		for _, c := range []struct {
			name string
			ms   MirrorSets
		}{{"release", r.Release}, {"operator", r.Operator}, {"generic", r.Generic}} {
			ms := pick(c.ms)
			if len(ms) == 0 {
				continue
			}
			b, err := render(prefix+"-"+c.name, ms)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			docs = append(docs, string(b))
		}
		if len(docs) > 0 {
			out[file] = []byte(strings.Join(docs, "---\n"))
		}
	}
	sets(DigestMirrorSetFile, mirror.ImageDigestMirrorSets, "idms", func(m MirrorSets) []mirror.MirrorSource { return m.Digest })
	sets(TagMirrorSetFile, mirror.ImageTagMirrorSets, "itms", func(m MirrorSets) []mirror.MirrorSource { return m.Tag })
	for _, c := range r.Catalogs {
		for _, render := range []func(RebuiltCatalog) (string, []byte, error){CatalogSource, ClusterCatalog} {
			n, doc, err := render(c)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if _, dup := out[n+".yaml"]; dup {
				errs = append(errs, fmt.Errorf("catalogs %s: two catalogs make the resource name %s; give one a targetTag or targetCatalog", c.Reference, n))
				continue
			}
			out[n+".yaml"] = doc
		}
	}
	if u := r.UpdateService; u != nil {
		doc, err := UpdateService(u.Releases, u.GraphImage)
		if err != nil {
			errs = append(errs, err)
		} else {
			out[UpdateServiceFile] = doc
		}
	}
	y, j, err := SignatureConfigMap(r.Signatures)
	if err != nil {
		errs = append(errs, err)
	} else if y != nil {
		out[SignatureConfigMapFile], out[SignatureConfigMapJSON] = y, j
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// FileNames is the sorted names of files, for printing what was written.
func FileNames(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
