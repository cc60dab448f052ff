package oci

import (
	"regexp"
	"strings"
)

// The grammar of the OCI Distribution Spec for repository names and tags.
var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// MaxNameLength bounds a repository name (with the registry host, clients
// allow 255 characters; we keep the same limit for the path alone).
const MaxNameLength = 255

// ValidateName checks a repository name against the spec grammar. Because the
// grammar admits no "." or ".." component and no empty component, a valid
// name can never reach outside the store.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLength || !nameRE.MatchString(name) {
		return Errorf(ErrNameInvalid, "invalid repository name %q", truncate(name))
	}
	return nil
}

// ValidateTag checks a tag against the spec grammar.
func ValidateTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return Errorf(ErrTagInvalid, "invalid tag %q", truncate(tag))
	}
	return nil
}

// IsDigestReference tells a digest reference ("alg:hex") from a tag.
func IsDigestReference(ref string) bool { return strings.Contains(ref, ":") }

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
