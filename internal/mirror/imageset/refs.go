package imageset

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// imageRef is a registry image reference as oc-mirror reads one: an
// optional docker:// prefix, Docker Hub names expanded, a tag, a digest or
// both (pulled by the digest, pushed by the tag).
type imageRef struct {
	Registry string // docker.io for Docker Hub
	Path     string // repository path, e.g. library/nginx
	Tag      string // "" when not written
	Digest   string // "" or sha256:<hex>
}

func parseImageRef(s string) (imageRef, error) {
	s = strings.TrimPrefix(s, "docker://")
	if s == "" {
		return imageRef{}, fmt.Errorf("empty image reference")
	}
	if strings.Contains(s, "://") {
		return imageRef{}, fmt.Errorf("%q: only registry references (optionally docker://) are read here", s)
	}
	base, dig, hasDigest := strings.Cut(s, "@")
	var (
		r    imageRef
		repo name.Repository
		err  error
	)
	if i := strings.LastIndex(base, ":"); i > strings.LastIndex(base, "/") {
		var t name.Tag
		if t, err = name.NewTag(base, name.WeakValidation); err == nil {
			repo, r.Tag = t.Context(), t.TagStr()
		}
	} else {
		repo, err = name.NewRepository(base, name.WeakValidation)
	}
	if err != nil {
		return imageRef{}, fmt.Errorf("%q is not an image reference: %v", s, err)
	}
	if hasDigest {
		d, err := name.NewDigest(repo.Name()+"@"+dig, name.WeakValidation)
		if err != nil {
			return imageRef{}, fmt.Errorf("%q: bad digest: %v", s, err)
		}
		r.Digest = d.DigestStr()
	}
	r.Registry, r.Path = repo.RegistryStr(), repo.RepositoryStr()
	if r.Registry == name.DefaultRegistry {
		r.Registry = "docker.io"
	}
	return r, nil
}

// Name is registry/path.
func (r imageRef) Name() string { return r.Registry + "/" + r.Path }

// Pull is the reference to pull: by digest when there is one, else by tag
// (latest when none was written).
func (r imageRef) Pull() string {
	if r.Digest != "" {
		return r.Name() + "@" + r.Digest
	}
	return r.Name() + ":" + r.tagOrLatest()
}

func (r imageRef) tagOrLatest() string {
	if r.Tag == "" {
		return "latest"
	}
	return r.Tag
}

// digestTag is how oc-mirror tags an image mirrored from a digest-only
// reference, so registries that collect untagged manifests keep it:
// sha256-<hex>.
func digestTag(digest string) string {
	t := strings.Replace(digest, ":", "-", 1)
	if len(t) > 128 {
		t = t[:128]
	}
	return t
}

// pathComponentRE is oc-mirror's grammar for targetCatalog and targetRepo:
// one or more path components separated by "/".
var pathComponentRE = regexp.MustCompile(`^([a-z0-9]+((?:[._]|__|[-]*)[a-z0-9]+)*)(/([a-z0-9]+((?:[._]|__|[-]*)[a-z0-9]+)*))*$`)

// tagRE is the distribution spec's tag grammar.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ociPath returns the layout path of an oci:// (or oci:) catalog reference.
func ociPath(s string) (string, bool) {
	switch {
	case strings.HasPrefix(s, "oci://"):
		return strings.TrimPrefix(s, "oci://"), true
	case strings.HasPrefix(s, "oci:"):
		return strings.TrimPrefix(s, "oci:"), true
	}
	return "", false
}
