package oci

import (
	"bytes"
	"encoding/json"
	"mime"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Media types the registry serves as manifests.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeOCIEmptyJSON   = "application/vnd.oci.empty.v1+json"
)

// MaxManifestSize is the largest manifest accepted (the spec suggests
// registries accept at least 4 MiB).
const MaxManifestSize = 4 << 20

// Descriptor is the subset of an OCI descriptor the registry reads.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     json.RawMessage   `json:"platform,omitempty"`
}

// Foreign reports whether the blob may legitimately be absent from the
// registry: non-distributable layers and layers fetched from URLs.
func (d Descriptor) Foreign() bool {
	return len(d.URLs) > 0 ||
		strings.Contains(d.MediaType, "nondistributable") ||
		strings.Contains(d.MediaType, ".foreign.")
}

// Manifest is a parsed, validated manifest or index.
type Manifest struct {
	MediaType    string
	ArtifactType string
	Config       *Descriptor
	Layers       []Descriptor
	Manifests    []Descriptor
	Subject      *Descriptor
	Annotations  map[string]string
}

// IsIndex tells an index or manifest list from an image manifest.
func (m *Manifest) IsIndex() bool {
	return m.MediaType == MediaTypeOCIIndex || m.MediaType == MediaTypeDockerList
}

// ReferrerArtifactType is the artifactType reported for this manifest in a
// referrers list: its own artifactType, else its config's media type.
func (m *Manifest) ReferrerArtifactType() string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	if m.Config != nil && !m.IsIndex() {
		return m.Config.MediaType
	}
	return ""
}

// Blobs lists the blobs the manifest needs in its repository (config and
// distributable layers).
func (m *Manifest) Blobs() []Descriptor {
	var out []Descriptor
	if m.Config != nil {
		out = append(out, *m.Config)
	}
	for _, l := range m.Layers {
		if !l.Foreign() {
			out = append(out, l)
		}
	}
	return out
}

type wireManifest struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *Descriptor       `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Manifests     []Descriptor      `json:"manifests"`
	Subject       *Descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// ParseManifest validates a manifest body sent with the given Content-Type.
// Every failure is a MANIFEST_INVALID (or DIGEST_INVALID for a malformed
// descriptor digest) error that says what is wrong.
func ParseManifest(contentType string, body []byte) (*Manifest, error) {
	if len(body) > MaxManifestSize {
		return nil, ManifestTooLarge(int64(len(body)))
	}
	var w wireManifest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&w); err != nil {
		return nil, Errorf(ErrManifestInvalid, "manifest is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, Errorf(ErrManifestInvalid, "manifest has trailing data after the JSON object")
	}
	ct := ""
	if contentType != "" {
		if mt, _, err := mime.ParseMediaType(contentType); err == nil {
			ct = mt
		} else {
			return nil, Errorf(ErrManifestInvalid, "malformed Content-Type %q", contentType)
		}
	}
	mt := w.MediaType
	switch {
	case ct != "" && ct != "application/json" && mt != "" && ct != mt:
		return nil, Errorf(ErrManifestInvalid, "Content-Type %q does not match the manifest's mediaType %q", ct, mt)
	case mt == "" && ct != "application/json":
		mt = ct
	}
	if mt == "" {
		// Neither the header nor the body names a type: infer it the way
		// the OCI image spec allows for untyped documents.
		switch {
		case w.Manifests != nil:
			mt = MediaTypeOCIIndex
		case w.Config != nil:
			mt = MediaTypeOCIManifest
		default:
			return nil, Errorf(ErrManifestInvalid, "manifest has no mediaType and no Content-Type")
		}
	}
	if w.SchemaVersion == nil || *w.SchemaVersion != 2 {
		return nil, Errorf(ErrManifestInvalid, "schemaVersion must be 2")
	}
	m := &Manifest{
		MediaType:    mt,
		ArtifactType: w.ArtifactType,
		Config:       w.Config,
		Layers:       w.Layers,
		Manifests:    w.Manifests,
		Subject:      w.Subject,
		Annotations:  w.Annotations,
	}
	switch mt {
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		if w.Config == nil {
			return nil, Errorf(ErrManifestInvalid, "image manifest has no config")
		}
		if w.Manifests != nil {
			return nil, Errorf(ErrManifestInvalid, "image manifest must not have manifests")
		}
		if mt == MediaTypeDockerManifest && (w.Subject != nil || w.ArtifactType != "") {
			return nil, Errorf(ErrManifestInvalid, "Docker schema2 manifests have no subject or artifactType")
		}
		if err := checkDescriptor("config", *w.Config); err != nil {
			return nil, err
		}
		for i, l := range w.Layers {
			if err := checkDescriptor("layers["+itoa(i)+"]", l); err != nil {
				return nil, err
			}
		}
		if mt == MediaTypeOCIManifest && w.Config.MediaType == MediaTypeOCIEmptyJSON && w.ArtifactType == "" {
			return nil, Errorf(ErrManifestInvalid, "artifactType is required when config.mediaType is %s", MediaTypeOCIEmptyJSON)
		}
	case MediaTypeOCIIndex, MediaTypeDockerList:
		if w.Manifests == nil {
			return nil, Errorf(ErrManifestInvalid, "index has no manifests array")
		}
		if w.Config != nil || w.Layers != nil {
			return nil, Errorf(ErrManifestInvalid, "an index must not have config or layers")
		}
		for i, c := range w.Manifests {
			if err := checkDescriptor("manifests["+itoa(i)+"]", c); err != nil {
				return nil, err
			}
		}
	default:
		return nil, Errorf(ErrManifestInvalid, "unsupported manifest media type %q", mt)
	}
	if w.Subject != nil {
		if err := checkDescriptor("subject", *w.Subject); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func checkDescriptor(field string, d Descriptor) error {
	if d.MediaType == "" {
		return Errorf(ErrManifestInvalid, "%s: mediaType is required", field)
	}
	if _, err := ParseDigest(string(d.Digest)); err != nil {
		e, _ := AsError(err)
		return Errorf(ErrManifestInvalid, "%s: %s", field, e.Message)
	}
	if d.Size < 0 {
		return Errorf(ErrManifestInvalid, "%s: size must not be negative", field)
	}
	return nil
}

func itoa(i int) string {
	return strconv.Itoa(i)
}
