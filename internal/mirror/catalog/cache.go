package catalog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// opm serve keeps a cache of its gRPC answers next to the configs
// (--cache-dir) and, with --cache-enforce-integrity (its default when it
// serves from a cache directory), refuses to start unless the cache's
// digest matches the configs it serves. This file writes that cache in
// opm's "json" format (operator-registry pkg/cache, as of v1.60):
//
//	DIR/digest                          hex fnv-64a (see cacheDigest)
//	DIR/cache/packages.json             the package index
//	DIR/cache/<pkg>_<channel>_<bundle>.json   one gRPC Bundle per channel entry
//
// opm picks the format by what the directory holds (a pogreb.v1/ directory
// is its other format), so the rebuild replaces the whole directory.

// cacheFiles returns the cache directory's files for the configs.
func cacheFiles(c *Config, configs *tree) (map[string][]byte, error) {
	files := map[string][]byte{}
	index := map[string]cachePackage{}
	for _, p := range c.sortedPackages() {
		desc, icon, err := packageDescription(p)
		if err != nil {
			return nil, err
		}
		deps, err := deprecations(p)
		if err != nil {
			return nil, err
		}
		cp := cachePackage{Name: p.Name, Description: desc, Icon: icon, DefaultChannel: p.DefaultChannel,
			Channels: map[string]cacheChannel{}, Deprecation: deps.pkg}
		for _, ch := range p.sortedChannels() {
			heads := ch.heads(nil)
			if len(heads) != 1 {
				return nil, fmt.Errorf("package %q channel %q: %s", p.Name, ch.Name, describeHeads(heads))
			}
			cc := cacheChannel{Name: ch.Name, Head: heads[0], Bundles: map[string]cacheBundle{}, Deprecation: deps.channels[ch.Name]}
			for _, e := range ch.Entries {
				cc.Bundles[e.Name] = cacheBundle{Package: p.Name, Channel: ch.Name, Name: e.Name, Replaces: e.Replaces, Skips: e.Skips}
				ab, err := apiBundle(p, ch, e, desc, icon, deps.bundles[e.Name])
				if err != nil {
					return nil, err
				}
				raw, err := json.Marshal(ab)
				if err != nil {
					return nil, err
				}
				files[fmt.Sprintf("cache/%s_%s_%s.json", p.Name, ch.Name, e.Name)] = raw
			}
			cp.Channels[ch.Name] = cc
		}
		index[p.Name] = cp
	}
	raw, err := json.Marshal(index)
	if err != nil {
		return nil, err
	}
	files["cache/packages.json"] = raw
	sub := map[string][]byte{}
	for p, b := range files {
		sub[strings.TrimPrefix(p, "cache/")] = b
	}
	d, err := cacheDigest(configs, newTree(sub))
	if err != nil {
		return nil, err
	}
	files["digest"] = []byte(d)
	return files, nil
}

// cacheDigest is what opm compares: fnv-64a over the tar serialisation
// (tree.opmTar) of the configs directory followed by that of the cache/
// directory, as lower-case hex.
func cacheDigest(configs, cache *tree) (string, error) {
	h := fnv.New64a()
	if err := configs.opmTar(h); err != nil {
		return "", err
	}
	if err := cache.opmTar(h); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

type cachePackage struct {
	Name           string                  `json:"name"`
	Description    string                  `json:"description"`
	Icon           *cacheIcon              `json:"icon"`
	DefaultChannel string                  `json:"defaultChannel"`
	Channels       map[string]cacheChannel // opm writes this key capitalised
	Deprecation    *cacheDeprecation       `json:"deprecation,omitempty"`
}

type cacheIcon struct {
	Data      []byte `json:"base64data"`
	MediaType string `json:"mediatype"`
}

type cacheChannel struct {
	Name        string
	Head        string
	Bundles     map[string]cacheBundle
	Deprecation *cacheDeprecation `json:"deprecation,omitempty"`
}

type cacheBundle struct {
	Package  string   `json:"package"`
	Channel  string   `json:"channel"`
	Name     string   `json:"name"`
	Replaces string   `json:"replaces"`
	Skips    []string `json:"skips"`
}

type cacheDeprecation struct {
	Message string `json:"message"`
}

// grpcBundle is operator-registry's api.Bundle as encoding/json writes it.
type grpcBundle struct {
	CsvName      string            `json:"csvName,omitempty"`
	PackageName  string            `json:"packageName,omitempty"`
	ChannelName  string            `json:"channelName,omitempty"`
	CsvJSON      string            `json:"csvJson,omitempty"`
	Object       []string          `json:"object,omitempty"`
	BundlePath   string            `json:"bundlePath,omitempty"`
	ProvidedApis []grpcGVK         `json:"providedApis,omitempty"`
	RequiredApis []grpcGVK         `json:"requiredApis,omitempty"`
	Version      string            `json:"version,omitempty"`
	SkipRange    string            `json:"skipRange,omitempty"`
	Dependencies []grpcTypedValue  `json:"dependencies,omitempty"`
	Properties   []grpcTypedValue  `json:"properties,omitempty"`
	Replaces     string            `json:"replaces,omitempty"`
	Skips        []string          `json:"skips,omitempty"`
	Deprecation  *cacheDeprecation `json:"deprecation,omitempty"`
}

type grpcGVK struct {
	Group   string `json:"group,omitempty"`
	Version string `json:"version,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Plural  string `json:"plural,omitempty"`
}

type grpcTypedValue struct {
	Type  string `json:"type,omitempty"`
	Value string `json:"value,omitempty"`
}

func packageDescription(p *Package) (string, *cacheIcon, error) {
	var v struct {
		Description string     `json:"description"`
		Icon        *cacheIcon `json:"icon"`
	}
	if err := json.Unmarshal(p.Meta.Raw, &v); err != nil {
		return "", nil, fmt.Errorf("package %q: %v", p.Name, err)
	}
	return v.Description, v.Icon, nil
}

type packageDeprecations struct {
	pkg      *cacheDeprecation
	channels map[string]*cacheDeprecation
	bundles  map[string]*cacheDeprecation
}

func deprecations(p *Package) (packageDeprecations, error) {
	out := packageDeprecations{channels: map[string]*cacheDeprecation{}, bundles: map[string]*cacheDeprecation{}}
	for _, m := range p.Others {
		if m.Schema != SchemaDeprecations {
			continue
		}
		var v struct {
			Entries []struct {
				Reference struct {
					Schema string `json:"schema"`
					Name   string `json:"name"`
				} `json:"reference"`
				Message string `json:"message"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(m.Raw, &v); err != nil {
			return out, fmt.Errorf("%s: %v", m.Source, err)
		}
		for _, e := range v.Entries {
			d := &cacheDeprecation{Message: e.Message}
			switch e.Reference.Schema {
			case SchemaPackage:
				out.pkg = d
			case SchemaChannel:
				out.channels[e.Reference.Name] = d
			case SchemaBundle:
				out.bundles[e.Reference.Name] = d
			}
		}
	}
	return out, nil
}

// apiBundle converts one channel entry's bundle as opm's
// ConvertModelBundleToAPIBundle does.
func apiBundle(p *Package, ch *Channel, e Entry, pkgDesc string, icon *cacheIcon, dep *cacheDeprecation) (*grpcBundle, error) {
	b := p.Bundles[e.Name]
	out := &grpcBundle{CsvName: b.Name, PackageName: p.Name, ChannelName: ch.Name, BundlePath: b.Image,
		SkipRange: e.SkipRange, Replaces: e.Replaces, Skips: e.Skips, Deprecation: dep}
	var csvMeta []json.RawMessage
	for _, prop := range b.Properties {
		switch prop.Type {
		case PropBundleObject:
			var v struct {
				Data []byte `json:"data"`
			}
			if err := json.Unmarshal(prop.Value, &v); err != nil {
				return nil, fmt.Errorf("bundle %q: olm.bundle.object: %v", b.Name, err)
			}
			obj := v.Data
			if t := bytes.TrimSpace(obj); len(t) == 0 || t[0] != '{' {
				j, err := yaml.YAMLToJSON(obj)
				if err != nil {
					return nil, fmt.Errorf("bundle %q: olm.bundle.object: %v", b.Name, err)
				}
				obj = j
			}
			out.Object = append(out.Object, string(obj))
			continue
		case PropCSVMetadata:
			csvMeta = append(csvMeta, prop.Value)
			continue
		case PropPackage:
			var v struct {
				Version string `json:"version"`
			}
			_ = json.Unmarshal(prop.Value, &v)
			out.Version = v.Version
		case PropGVK, PropGVKRequired:
			var g GVK
			_ = json.Unmarshal(prop.Value, &g)
			if prop.Type == PropGVK {
				out.ProvidedApis = append(out.ProvidedApis, grpcGVK{Group: g.Group, Version: g.Version, Kind: g.Kind})
			} else {
				out.RequiredApis = append(out.RequiredApis, grpcGVK{Group: g.Group, Version: g.Version, Kind: g.Kind})
				out.Dependencies = append(out.Dependencies, grpcTypedValue{Type: PropGVK, Value: normalJSON(prop.Value)})
			}
		case PropPackageRequired:
			var r PackageRequirement
			_ = json.Unmarshal(prop.Value, &r)
			v, err := marshalNoEscape(struct {
				PackageName string `json:"packageName"`
				Version     string `json:"version"`
			}{r.PackageName, r.VersionRange})
			if err != nil {
				return nil, err
			}
			out.Dependencies = append(out.Dependencies, grpcTypedValue{Type: PropPackage, Value: string(v)})
		}
		out.Properties = append(out.Properties, grpcTypedValue{Type: prop.Type, Value: normalJSON(prop.Value)})
	}
	for _, o := range out.Object {
		var probe struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal([]byte(o), &probe) == nil && probe.Kind == "ClusterServiceVersion" {
			out.CsvJSON = o
			break
		}
	}
	if out.CsvJSON == "" && len(csvMeta) == 1 {
		csv, err := csvFromMetadata(b, csvMeta[0], pkgDesc, icon)
		if err != nil {
			return nil, err
		}
		out.CsvJSON = csv
		if len(out.Object) == 0 {
			out.Object = []string{csv}
		}
	}
	return out, nil
}

// normalJSON re-encodes a property value as opm holds it after loading:
// decoded into generic values, then encoded with sorted keys and without
// HTML escaping.
func normalJSON(raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, err := marshalNoEscape(v)
	if err != nil {
		return string(raw)
	}
	return string(b)
}

// stubCSV is the ClusterServiceVersion opm serves for a bundle that
// carries olm.csv.metadata instead of its manifests, field for field as
// operator-framework/api's type marshals (zero values included where it
// has no omitempty).
type stubCSV struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Metadata   struct {
		Name        string          `json:"name"`
		Labels      json.RawMessage `json:"labels,omitempty"`
		Annotations json.RawMessage `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Install        json.RawMessage `json:"install"`
		Version        string          `json:"version,omitempty"`
		Maturity       string          `json:"maturity,omitempty"`
		CRDs           json.RawMessage `json:"customresourcedefinitions"`
		APIServices    json.RawMessage `json:"apiservicedefinitions"`
		NativeAPIs     json.RawMessage `json:"nativeAPIs,omitempty"`
		MinKubeVersion string          `json:"minKubeVersion,omitempty"`
		DisplayName    string          `json:"displayName"`
		Description    string          `json:"description,omitempty"`
		Keywords       json.RawMessage `json:"keywords,omitempty"`
		Maintainers    []csvMaintainer `json:"maintainers,omitempty"`
		Provider       csvLink         `json:"provider"`
		Links          []csvLink       `json:"links,omitempty"`
		Icon           []csvIcon       `json:"icon,omitempty"`
		InstallModes   []csvInstall    `json:"installModes,omitempty"`
		Cleanup        json.RawMessage `json:"cleanup"`
		RelatedImages  []csvRelated    `json:"relatedImages,omitempty"`
	} `json:"spec"`
	Status json.RawMessage `json:"status"`
}

type csvIcon struct {
	Data      string `json:"base64data"`
	MediaType string `json:"mediatype"`
}

type csvMaintainer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

type csvLink struct {
	Name string `json:"name,omitempty"`
	URL  string `json:"url,omitempty"`
}

type csvInstall struct {
	Type      string `json:"type"`
	Supported bool   `json:"supported"`
}

type csvRelated struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

func csvFromMetadata(b *Bundle, raw json.RawMessage, pkgDesc string, icon *cacheIcon) (string, error) {
	var m struct {
		Annotations           json.RawMessage `json:"annotations"`
		Labels                json.RawMessage `json:"labels"`
		APIServiceDefinitions json.RawMessage `json:"apiServiceDefinitions"`
		CRDDescriptions       json.RawMessage `json:"crdDescriptions"`
		Description           string          `json:"description"`
		DisplayName           string          `json:"displayName"`
		InstallModes          []csvInstall    `json:"installModes"`
		Keywords              json.RawMessage `json:"keywords"`
		Links                 []csvLink       `json:"links"`
		Maintainers           []csvMaintainer `json:"maintainers"`
		Maturity              string          `json:"maturity"`
		MinKubeVersion        string          `json:"minKubeVersion"`
		NativeAPIs            json.RawMessage `json:"nativeAPIs"`
		Provider              csvLink         `json:"provider"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", fmt.Errorf("bundle %q: olm.csv.metadata: %v", b.Name, err)
	}
	orEmpty := func(r json.RawMessage) json.RawMessage {
		if len(r) == 0 || string(r) == "null" {
			return json.RawMessage("{}")
		}
		return r
	}
	var csv stubCSV
	csv.Kind, csv.APIVersion = "ClusterServiceVersion", "operators.coreos.com/v1alpha1"
	csv.Metadata.Name, csv.Metadata.Labels, csv.Metadata.Annotations = b.Name, m.Labels, m.Annotations
	s := &csv.Spec
	s.Install = json.RawMessage(`{"strategy":"deployment","spec":{"deployments":null}}`)
	s.Version = b.Version.String()
	s.Maturity, s.MinKubeVersion, s.NativeAPIs = m.Maturity, m.MinKubeVersion, m.NativeAPIs
	s.CRDs, s.APIServices = orEmpty(m.CRDDescriptions), orEmpty(m.APIServiceDefinitions)
	s.DisplayName, s.Description = m.DisplayName, m.Description
	if s.Description == "" {
		s.Description = pkgDesc
	}
	s.Keywords, s.Maintainers, s.Provider, s.Links, s.InstallModes = m.Keywords, m.Maintainers, m.Provider, m.Links, m.InstallModes
	if icon != nil {
		s.Icon = []csvIcon{{Data: base64.StdEncoding.EncodeToString(icon.Data), MediaType: icon.MediaType}}
	}
	s.Cleanup = json.RawMessage(`{"enabled":false}`)
	for _, ri := range b.RelatedImages {
		s.RelatedImages = append(s.RelatedImages, csvRelated{Name: ri.Name, Image: ri.Image})
	}
	csv.Status = json.RawMessage(`{"cleanup":{}}`)
	out, err := json.Marshal(csv)
	return string(out), err
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
