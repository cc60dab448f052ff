package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Origin says where an object was read: the file, the document's index in
// it (0-based) and the line the document starts on (1-based).
type Origin struct {
	File string
	Doc  int
	Line int
}

func (o Origin) String() string {
	if o.File == "" {
		return fmt.Sprintf("document %d", o.Doc)
	}
	return fmt.Sprintf("%s: document %d (line %d)", o.File, o.Doc, o.Line)
}

// Inputs is everything a render reads: the cluster's Image config, its
// mirror sets, the trusted-CA ConfigMaps and the release payload reference.
type Inputs struct {
	Image      *Image
	ICSPs      []ImageContentSourcePolicy
	IDMSs      []ImageDigestMirrorSet
	ITMSs      []ImageTagMirrorSet
	ConfigMaps []ConfigMap
	// ClusterImagePolicies and ImagePolicies are the signature policies, in input order.
	ClusterImagePolicies []ClusterImagePolicy
	ImagePolicies        []ImagePolicy
	ReleaseImage         string
	// Ignored lists documents of other kinds that were skipped.
	Ignored []string

	// docs keeps each parsed document's lines, so problems can point at the
	// line of the offending value.
	docs map[Origin][]string
}

// ObjectMeta is the part of metadata Berth reads; the rest is accepted and ignored.
type ObjectMeta struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// Image is config.openshift.io/v1 Image (the object named "cluster").
type Image struct {
	Origin   Origin      `json:"-"`
	Metadata ObjectMeta  `json:"-"`
	Spec     ImageSpec   `json:"spec"`
	Status   ImageStatus `json:"status"`
}

// ImageSpec is the cluster-wide image configuration.
type ImageSpec struct {
	// AllowedRegistriesForImport limits where image streams may import from.
	AllowedRegistriesForImport []RegistryLocation `json:"allowedRegistriesForImport,omitempty"`
	// ExternalRegistryHostnames is read and ignored: it does not reach nodes.
	ExternalRegistryHostnames []string `json:"externalRegistryHostnames,omitempty"`
	// AdditionalTrustedCA names the ConfigMap (namespace openshift-config) with registry CAs.
	AdditionalTrustedCA ConfigMapNameReference `json:"additionalTrustedCA"`
	// RegistrySources is what reaches registries.conf and policy.json.
	RegistrySources RegistrySources `json:"registrySources"`
	// ImageStreamImportMode is read and ignored.
	ImageStreamImportMode string `json:"imageStreamImportMode,omitempty"`
}

// ImageStatus is the part of the Image status Berth reads.
type ImageStatus struct {
	InternalRegistryHostname  string   `json:"internalRegistryHostname,omitempty"`
	ExternalRegistryHostnames []string `json:"externalRegistryHostnames,omitempty"`
	ImageStreamImportMode     string   `json:"imageStreamImportMode,omitempty"`
}

// RegistryLocation is one allowedRegistriesForImport entry.
type RegistryLocation struct {
	DomainName string `json:"domainName"`
	Insecure   bool   `json:"insecure,omitempty"`
}

// ConfigMapNameReference names a ConfigMap.
type ConfigMapNameReference struct {
	Name string `json:"name"`
}

// RegistrySources holds the scope lists.
type RegistrySources struct {
	InsecureRegistries               []string `json:"insecureRegistries,omitempty"`
	BlockedRegistries                []string `json:"blockedRegistries,omitempty"`
	AllowedRegistries                []string `json:"allowedRegistries,omitempty"`
	ContainerRuntimeSearchRegistries []string `json:"containerRuntimeSearchRegistries,omitempty"`
}

// ImageContentSourcePolicy is operator.openshift.io/v1alpha1 ImageContentSourcePolicy.
type ImageContentSourcePolicy struct {
	Origin   Origin     `json:"-"`
	Metadata ObjectMeta `json:"-"`
	Spec     struct {
		RepositoryDigestMirrors []RepositoryDigestMirrors `json:"repositoryDigestMirrors"`
	} `json:"spec"`
	// Status is accepted (exported objects carry one) and ignored.
	Status json.RawMessage `json:"status,omitempty"`
}

// RepositoryDigestMirrors is one ICSP entry.
type RepositoryDigestMirrors struct {
	Source  string   `json:"source"`
	Mirrors []string `json:"mirrors,omitempty"`
}

// ImageDigestMirrorSet is config.openshift.io/v1 ImageDigestMirrorSet.
type ImageDigestMirrorSet struct {
	Origin   Origin     `json:"-"`
	Metadata ObjectMeta `json:"-"`
	Spec     struct {
		ImageDigestMirrors []MirrorSet `json:"imageDigestMirrors"`
	} `json:"spec"`
	// Status is accepted (exported objects carry one) and ignored.
	Status json.RawMessage `json:"status,omitempty"`
}

// ImageTagMirrorSet is config.openshift.io/v1 ImageTagMirrorSet.
type ImageTagMirrorSet struct {
	Origin   Origin     `json:"-"`
	Metadata ObjectMeta `json:"-"`
	Spec     struct {
		ImageTagMirrors []MirrorSet `json:"imageTagMirrors"`
	} `json:"spec"`
	// Status is accepted (exported objects carry one) and ignored.
	Status json.RawMessage `json:"status,omitempty"`
}

// MirrorSet is one imageDigestMirrors or imageTagMirrors entry.
type MirrorSet struct {
	Source             string   `json:"source"`
	Mirrors            []string `json:"mirrors,omitempty"`
	MirrorSourcePolicy string   `json:"mirrorSourcePolicy,omitempty"`
}

// The mirrorSourcePolicy values.
const (
	NeverContactSource    = "NeverContactSource"
	AllowContactingSource = "AllowContactingSource"
)

// ConfigMap is a v1 ConfigMap holding registry CAs keyed by "host" or "host..port".
type ConfigMap struct {
	Origin     Origin            `json:"-"`
	Metadata   ObjectMeta        `json:"-"`
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
	Immutable  *bool             `json:"immutable,omitempty"`
}

// Problem is one thing wrong with the inputs: where, which field, what.
type Problem struct {
	Origin Origin
	// Field is the path inside the document, e.g. spec.registrySources.blockedRegistries[0].
	Field   string
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Origin.File != "" || p.Origin.Line != 0 {
		b.WriteString(p.Origin.String())
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError carries every problem found, all at once.
type ValidationError struct{ Problems []Problem }

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("%d problem(s):\n  %s", len(e.Problems), strings.Join(lines, "\n  "))
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(?:#.*)?$`)

// envelope is what every document must have, with the rest kept raw so the
// kind's own type can decode it strictly.
type envelope struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	Spec       json.RawMessage `json:"spec,omitempty"`
	Status     json.RawMessage `json:"status,omitempty"`
}

// Parse reads one multi-document YAML file into in. It returns every problem
// found; documents with problems are not added.
func (in *Inputs) Parse(file string, data []byte) []Problem {
	var problems []Problem
	starts := []int{0}
	for _, loc := range docSeparator.FindAllIndex(data, -1) {
		starts = append(starts, loc[0], loc[1])
	}
	// starts holds [docStart, sepStart, sepEnd, sepStart, …]; pair them up.
	type span struct{ from, to int }
	var docs []span
	for i := 0; i < len(starts); i += 2 {
		from := starts[i]
		to := len(data)
		if i+1 < len(starts) {
			to = starts[i+1]
		}
		docs = append(docs, span{from, to})
	}
	idx := 0
	for _, d := range docs {
		if d.from < d.to && data[d.from] == '\n' {
			d.from++ // a document starts on the line after its separator
		}
		body := data[d.from:d.to]
		if len(bytes.TrimSpace(stripComments(body))) == 0 {
			continue
		}
		o := Origin{File: file, Doc: idx, Line: 1 + bytes.Count(data[:d.from], []byte("\n"))}
		idx++
		if in.docs == nil {
			in.docs = map[Origin][]string{}
		}
		in.docs[o] = strings.Split(string(body), "\n")
		problems = append(problems, in.parseDoc(o, body)...)
	}
	return problems
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		out = append(out, line...)
		out = append(out, '\n')
	}
	return out
}

func (in *Inputs) parseDoc(o Origin, body []byte) []Problem {
	bad := func(field, format string, args ...any) []Problem {
		return []Problem{{Origin: o, Field: field, Message: fmt.Sprintf(format, args...)}}
	}
	var env envelope
	if err := yaml.Unmarshal(body, &env); err != nil {
		return bad("", "not a YAML object: %v", cleanErr(err))
	}
	if env.Kind == "" || env.APIVersion == "" {
		return bad("", "missing apiVersion or kind")
	}
	var meta ObjectMeta
	if len(env.Metadata) > 0 && string(env.Metadata) != "null" {
		if err := json.Unmarshal(env.Metadata, &meta); err != nil {
			return bad("metadata", "%v", cleanErr(err))
		}
	}
	gvk := env.APIVersion + " " + env.Kind
	strict := func(v any) []Problem {
		if err := yaml.UnmarshalStrict(body, v); err != nil {
			return bad(fieldOf(err), "%s: %v", gvk, cleanErr(err))
		}
		return nil
	}
	switch gvk {
	case "config.openshift.io/v1 Image":
		var obj struct {
			envelopeFields
			Image `json:",inline"`
		}
		if p := strict(&obj); p != nil {
			return p
		}
		img := obj.Image
		img.Origin, img.Metadata = o, meta
		if meta.Name != "" && meta.Name != "cluster" {
			in.Ignored = append(in.Ignored, fmt.Sprintf("%s: Image %q ignored: the cluster reads only the Image named \"cluster\"", o, meta.Name))
			return nil
		}
		if in.Image != nil {
			return bad("metadata.name", "a second Image \"cluster\" (the first is in %s)", in.Image.Origin)
		}
		in.Image = &img
	case "operator.openshift.io/v1alpha1 ImageContentSourcePolicy":
		var obj struct {
			envelopeFields
			ImageContentSourcePolicy `json:",inline"`
		}
		if p := strict(&obj); p != nil {
			return p
		}
		obj.ImageContentSourcePolicy.Origin, obj.ImageContentSourcePolicy.Metadata = o, meta
		in.ICSPs = append(in.ICSPs, obj.ImageContentSourcePolicy)
	case "config.openshift.io/v1 ImageDigestMirrorSet":
		var obj struct {
			envelopeFields
			ImageDigestMirrorSet `json:",inline"`
		}
		if p := strict(&obj); p != nil {
			return p
		}
		obj.ImageDigestMirrorSet.Origin, obj.ImageDigestMirrorSet.Metadata = o, meta
		in.IDMSs = append(in.IDMSs, obj.ImageDigestMirrorSet)
	case "config.openshift.io/v1 ImageTagMirrorSet":
		var obj struct {
			envelopeFields
			ImageTagMirrorSet `json:",inline"`
		}
		if p := strict(&obj); p != nil {
			return p
		}
		obj.ImageTagMirrorSet.Origin, obj.ImageTagMirrorSet.Metadata = o, meta
		in.ITMSs = append(in.ITMSs, obj.ImageTagMirrorSet)
	case "v1 ConfigMap":
		var obj struct {
			envelopeFields
			ConfigMap `json:",inline"`
		}
		if p := strict(&obj); p != nil {
			return p
		}
		obj.ConfigMap.Origin, obj.ConfigMap.Metadata = o, meta
		in.ConfigMaps = append(in.ConfigMaps, obj.ConfigMap)
	case "config.openshift.io/v1 ClusterImagePolicy", "config.openshift.io/v1alpha1 ClusterImagePolicy":
		var obj struct {
			envelopeFields
			ClusterImagePolicy `json:",inline"`
		}
		if p := strict(&obj); p != nil {
			return p
		}
		p := obj.ClusterImagePolicy
		p.Origin, p.Metadata, p.APIVersion = o, meta, env.APIVersion
		for _, q := range in.ClusterImagePolicies {
			if meta.Name != "" && q.Metadata.Name == meta.Name {
				return bad("metadata.name", "a second ClusterImagePolicy %q (the first is in %s)", meta.Name, q.Origin)
			}
		}
		in.ClusterImagePolicies = append(in.ClusterImagePolicies, p)
	case "config.openshift.io/v1 ImagePolicy", "config.openshift.io/v1alpha1 ImagePolicy":
		var obj struct {
			envelopeFields
			ImagePolicy `json:",inline"`
		}
		if p := strict(&obj); p != nil {
			return p
		}
		p := obj.ImagePolicy
		p.Origin, p.Metadata, p.APIVersion = o, meta, env.APIVersion
		for _, q := range in.ImagePolicies {
			if meta.Name != "" && q.Metadata.Name == meta.Name && q.Metadata.Namespace == meta.Namespace {
				return bad("metadata.name", "a second ImagePolicy %s/%s (the first is in %s)", meta.Namespace, meta.Name, q.Origin)
			}
		}
		in.ImagePolicies = append(in.ImagePolicies, p)
	default:
		switch env.Kind {
		case "Image", "ImageContentSourcePolicy", "ImageDigestMirrorSet", "ImageTagMirrorSet", "ClusterImagePolicy", "ImagePolicy":
			return bad("apiVersion", "kind %s has apiVersion %q; expected %s", env.Kind, env.APIVersion, expectedAPIVersion[env.Kind])
		}
		in.Ignored = append(in.Ignored, fmt.Sprintf("%s: %s ignored: not a kind that reaches node registry policy", o, gvk))
	}
	return nil
}

var expectedAPIVersion = map[string]string{
	"Image":                    "config.openshift.io/v1",
	"ImageContentSourcePolicy": "operator.openshift.io/v1alpha1",
	"ImageDigestMirrorSet":     "config.openshift.io/v1",
	"ImageTagMirrorSet":        "config.openshift.io/v1",
	"ClusterImagePolicy":       "config.openshift.io/v1 (or v1alpha1)",
	"ImagePolicy":              "config.openshift.io/v1 (or v1alpha1)",
}

// envelopeFields lets the strict decoder accept the envelope keys every
// object has; metadata is decoded loosely because clusters add many fields.
type envelopeFields struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
}

var unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"`)
var typeFieldRE = regexp.MustCompile(`Go struct field [^.]+\.([^ ]+) of type`)

// fieldOf extracts a field path from a decoding error where it can.
func fieldOf(err error) string {
	s := err.Error()
	if m := unknownFieldRE.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	if m := typeFieldRE.FindStringSubmatch(s); m != nil {
		return lowerFirstEach(m[1])
	}
	return ""
}

func lowerFirstEach(path string) string {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToLower(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, ".")
}

func cleanErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "error unmarshaling JSON: ")
	s = strings.TrimPrefix(s, "while decoding JSON: ")
	return s
}

var quotedRE = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)

// locate moves a problem's line from its document's start to the first line
// of the document that holds the offending (first quoted) value, when found.
func (in *Inputs) locate(p Problem) Problem {
	lines, ok := in.docs[p.Origin]
	if !ok {
		return p
	}
	m := quotedRE.FindStringSubmatch(p.Message)
	if m == nil {
		return locateField(p, lines)
	}
	v, err := strconv.Unquote(`"` + m[1] + `"`)
	if err != nil {
		return locateField(p, lines)
	}
	needles := []string{`"` + v + `"`, `'` + v + `'`}
	if v != "" && strings.TrimSpace(v) == v {
		needles = append(needles, v)
	}
	for _, n := range needles {
		for i, l := range lines {
			if strings.Contains(l, n) {
				p.Origin.Line += i
				return p
			}
		}
	}
	return locateField(p, lines)
}

// locateField moves a problem to the first line that holds the last key of
// its field path, following the path's keys in order so a nested key is
// looked for below its parents.
func locateField(p Problem, lines []string) Problem {
	if p.Field == "" {
		return p
	}
	at := 0
	found := false
	for _, k := range strings.Split(p.Field, ".") {
		if i := strings.IndexByte(k, '['); i >= 0 {
			k = k[:i]
		}
		for i := at; i < len(lines); i++ {
			if l := strings.TrimLeft(lines[i], " -{"); strings.HasPrefix(l, k+":") || strings.Contains(lines[i], " "+k+":") || strings.Contains(lines[i], "{"+k+":") {
				at, found = i, true
				break
			}
		}
	}
	if found {
		p.Origin.Line += at
	}
	return p
}
