package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Manifest is a manifest or index exactly as a registry served it: the bytes
// are what the digest covers, so they are never re-serialised.
type Manifest struct {
	Raw       []byte
	MediaType string
	Digest    v1.Hash
}

// Descriptor returns the descriptor that points at m.
func (m *Manifest) Descriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: types.MediaType(m.MediaType), Size: int64(len(m.Raw)), Digest: m.Digest}
}

// NewManifest wraps raw manifest bytes for a Target, computing their
// digest; an empty or generic mediaType is read from the manifest itself.
func NewManifest(raw []byte, mediaType string) (*Manifest, error) {
	return newManifest(raw, mediaType, "")
}

// newManifest hashes raw and, when want is non-empty, checks it.
func newManifest(raw []byte, mediaType string, want string) (*Manifest, error) {
	sum := sha256.Sum256(raw)
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if want != "" && want != d.String() {
		return nil, fmt.Errorf("manifest digest mismatch: asked for %s, content hashes to %s", want, d)
	}
	if mediaType == "" || mediaType == "application/json" || mediaType == "text/plain" {
		mediaType = sniffMediaType(raw)
	}
	return &Manifest{Raw: raw, MediaType: mediaType, Digest: d}, nil
}

// sniffMediaType reads the mediaType field of a manifest, or guesses from its
// shape when the field is absent (allowed for OCI manifests).
func sniffMediaType(raw []byte) string {
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
		Layers    []json.RawMessage `json:"layers"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return string(types.OCIImageIndex)
	default:
		return string(types.OCIManifestSchema1)
	}
}

// isIndex reports whether mt is a manifest list or image index.
func isIndex(mt string) bool {
	return mt == string(types.OCIImageIndex) || mt == string(types.DockerManifestList)
}

// manifestAccept is every manifest media type the engine can copy.
var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex),
	string(types.DockerManifestList),
	string(types.OCIManifestSchema1),
	string(types.DockerManifestSchema2),
}, ", ")

// Referrer is a manifest that refers to a subject: an OCI 1.1 referrer (found
// through the referrers API or the fallback tag) or a cosign-style
// `sha256-<hex>.sig|.att|.sbom` tag. Tag is set when the referrer is known by
// a tag that must be recreated at the destination.
type Referrer struct {
	Descriptor v1.Descriptor
	Tag        string `json:",omitempty"`
}

// Source is where images are read from: a registry or an OCI layout.
type Source interface {
	// Name identifies the source in messages and deduplication keys.
	Name() string
	// GetManifest fetches repo's manifest by tag or digest (ref).
	GetManifest(ctx context.Context, repo, ref string) (*Manifest, error)
	// OpenBlob streams a blob; the caller verifies the digest.
	OpenBlob(ctx context.Context, repo string, d v1.Descriptor) (io.ReadCloser, error)
	// Referrers lists the manifests that refer to subject.
	Referrers(ctx context.Context, repo string, subject v1.Hash) ([]Referrer, error)
}

// Target is where images are written: a registry or an OCI layout.
type Target interface {
	// Name identifies the target; blobs are deduplicated per target name.
	Name() string
	// ManifestDigest returns the digest ref (tag or digest) resolves to, or
	// ok=false when it does not exist.
	ManifestDigest(ctx context.Context, repo, ref string) (d v1.Hash, ok bool, err error)
	// PutManifest stores m under ref (a tag, or its own digest).
	PutManifest(ctx context.Context, repo, ref string, m *Manifest) error
	// HasBlob reports whether the target already holds the blob for repo.
	HasBlob(ctx context.Context, repo string, d v1.Descriptor) (bool, error)
	// PutBlob stores a blob read from r, verifying its digest and size.
	PutBlob(ctx context.Context, repo string, d v1.Descriptor, r io.Reader) error
}

// Mounter is a Target that can link a blob from another repository of the
// same registry without transferring it.
type Mounter interface {
	MountBlob(ctx context.Context, repo, fromRepo string, d v1.Descriptor) (bool, error)
}

// RegistryTarget is a Target a cluster can pull from, so mirror sets can
// name it (a layout is not).
type RegistryTarget interface {
	Target
	// Host is the registry's host[:port].
	Host() string
}

// BlobFiler is a Source whose blobs are local files.
type BlobFiler interface {
	OpenBlobFile(ctx context.Context, repo string, d v1.Descriptor) (*os.File, error)
}

// FilePutter is a Target that sends a blob straight from its file (the
// kernel's zero-copy path), with no reader in between: the engine uses it
// for blobs whose bytes need no hashing on the way.
type FilePutter interface {
	PutBlobFile(ctx context.Context, repo string, d v1.Descriptor, f *os.File) error
}

// Closer is a Target with state to flush at the end of a run.
type Closer interface {
	Close() error
}
