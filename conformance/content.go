package conformance

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

// Media types the suite pushes. Spelled out rather than imported so that the
// suite reads as the specification does.
const (
	mtOCIManifest  = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex     = "application/vnd.oci.image.index.v1+json"
	mtOCIConfig    = "application/vnd.oci.image.config.v1+json"
	mtOCILayer     = "application/vnd.oci.image.layer.v1.tar+gzip"
	mtOCIForeign   = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	mtOCIEmpty     = "application/vnd.oci.empty.v1+json"
	mtDockerV2     = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList   = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtDockerConfig = "application/vnd.docker.container.image.v1+json"
	mtDockerLayer  = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mtDockerFgn    = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// blob is some bytes and their digest.
type blob struct {
	Data      []byte
	Digest    string
	MediaType string
}

func sha256Of(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func sha512Of(b []byte) string {
	h := sha512.Sum512(b)
	return "sha512:" + hex.EncodeToString(h[:])
}

// randomBytes returns n bytes no other run will push.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func newBlob(data []byte, mediaType string) blob {
	return blob{Data: data, Digest: sha256Of(data), MediaType: mediaType}
}

func randomBlob(n int) blob { return newBlob(randomBytes(n), mtOCILayer) }

func (b blob) sha512() blob { b.Digest = sha512Of(b.Data); return b }

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Platform     *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

func (b blob) desc() descriptor {
	return descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: int64(len(b.Data))}
}

// manifest is the JSON of an image manifest (OCI or Docker schema2).
type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// index is the JSON of an OCI image index or Docker manifest list.
type index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Manifests     []descriptor      `json:"manifests"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// encode marshals v as the manifest of the given media type.
func encode(t *testing.T, mediaType string, v any) blob {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return newBlob(b, mediaType)
}

// image is a config, its layers and the manifest tying them.
type image struct {
	Config   blob
	Layers   []blob
	Manifest blob
}

// blobs lists what must be in the repository before the manifest.
func (im image) blobs() []blob { return append([]blob{im.Config}, im.Layers...) }

// newImage builds an OCI (or, with docker, a Docker schema2) image with
// random layers of the given sizes and a config naming them.
func newImage(t *testing.T, docker bool, layerSizes ...int) image {
	t.Helper()
	cfgType, layerType, mType := mtOCIConfig, mtOCILayer, mtOCIManifest
	if docker {
		cfgType, layerType, mType = mtDockerConfig, mtDockerLayer, mtDockerV2
	}
	var im image
	var diffIDs []string
	for _, n := range layerSizes {
		l := randomBlob(n)
		l.MediaType = layerType
		im.Layers = append(im.Layers, l)
		diffIDs = append(diffIDs, l.Digest)
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"rootfs":       map[string]any{"type": "layers", "diff_ids": nonNil(diffIDs)},
		"config":       map[string]any{"Labels": map[string]string{"run": randomHex(8)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	im.Config = newBlob(cfg, cfgType)
	m := manifest{SchemaVersion: 2, MediaType: mType, Config: im.Config.desc(), Layers: []descriptor{}}
	for _, l := range im.Layers {
		m.Layers = append(m.Layers, l.desc())
	}
	im.Manifest = encode(t, mType, m)
	return im
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// emptyConfig is the OCI empty descriptor's content, "{}".
func emptyConfig() blob { return newBlob([]byte("{}"), mtOCIEmpty) }

// newArtifact builds an artifact manifest (empty config, one layer of
// layerType) with the given artifactType, subject and annotations.
func newArtifact(t *testing.T, artifactType string, subject *descriptor, annotations map[string]string) image {
	t.Helper()
	layer := randomBlob(64)
	layer.MediaType = "application/vnd.berth.conformance.payload"
	cfg := emptyConfig()
	m := manifest{
		SchemaVersion: 2,
		MediaType:     mtOCIManifest,
		ArtifactType:  artifactType,
		Config:        cfg.desc(),
		Layers:        []descriptor{layer.desc()},
		Subject:       subject,
		Annotations:   annotations,
	}
	return image{Config: cfg, Layers: []blob{layer}, Manifest: encode(t, mtOCIManifest, m)}
}

// newIndex builds an index of the given media type over children.
func newIndex(t *testing.T, mediaType string, children ...blob) blob {
	t.Helper()
	ix := index{SchemaVersion: 2, MediaType: mediaType, Manifests: []descriptor{}}
	archs := []string{"amd64", "arm64", "s390x", "ppc64le", "riscv64"}
	for i, c := range children {
		d := c.desc()
		if c.MediaType != mtOCIIndex && c.MediaType != mtDockerList {
			d.Platform = &platform{Architecture: archs[i%len(archs)], OS: "linux"}
		}
		ix.Manifests = append(ix.Manifests, d)
	}
	ix.Annotations = map[string]string{"run": randomHex(8)}
	return encode(t, mediaType, ix)
}

// bigManifest returns a syntactically valid OCI manifest of at least size
// bytes (the bulk is one annotation) referencing the given config.
func bigManifest(t *testing.T, cfg blob, size int) blob {
	t.Helper()
	m := manifest{
		SchemaVersion: 2,
		MediaType:     mtOCIManifest,
		Config:        cfg.desc(),
		Layers:        []descriptor{},
		Annotations:   map[string]string{"padding": strings.Repeat("a", size)},
	}
	return encode(t, mtOCIManifest, m)
}
