package console

import (
	"cmp"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// naturalLess orders tags as people read versions: runs of digits compare
// as numbers, so v1.9 < v1.10 and 2 < 10; everything else compares byte by
// byte. Equal under that order (v01 and v1), the plain string order decides,
// so the order is total and stable.
func naturalLess(a, b string) bool {
	if c := naturalCompare(a, b); c != 0 {
		return c < 0
	}
	return a < b
}

func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		switch {
		case da && db:
			na, ra := digitRun(a)
			nb, rb := digitRun(b)
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(ta) != len(tb) {
				return cmp.Compare(len(ta), len(tb))
			}
			if ta != tb {
				return strings.Compare(ta, tb)
			}
			a, b = ra, rb
		case a[0] != b[0]:
			return cmp.Compare(int(a[0]), int(b[0]))
		default:
			a, b = a[1:], b[1:]
		}
	}
	return cmp.Compare(len(a), len(b))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digitRun(s string) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// sigTag matches the tags cosign and its kin push next to an image:
// sha256-<hex>.sig (signature), .att (attestation), .sbom (SBOM).
var sigTag = regexp.MustCompile(`^(sha256)-([0-9a-f]{64})\.(sig|att|sbom)$`)

// signatureTag returns the subject digest and the kind of a signature,
// attestation or SBOM tag.
func signatureTag(tag string) (digest.Digest, string, bool) {
	m := sigTag.FindStringSubmatch(tag)
	if m == nil {
		return "", "", false
	}
	return digest.Digest(m[1] + ":" + m[2]), m[3], true
}

// shortDigest is the algorithm and the first 12 hex digits, as docker
// prints image ids.
func shortDigest(d digest.Digest) string {
	s := string(d)
	if i := strings.IndexByte(s, ':'); i >= 0 && len(s) > i+13 {
		return s[:i+13]
	}
	return s
}

// artifactGroup sorts a referrer's artifact type into what a reader looks
// for: signatures, SBOMs, attestations, or other.
func artifactGroup(at string) string {
	t := strings.ToLower(at)
	switch {
	case strings.Contains(t, "sig") || strings.Contains(t, "notary") || strings.Contains(t, "cosign"):
		return "Signatures"
	case strings.Contains(t, "spdx") || strings.Contains(t, "cyclonedx") || strings.Contains(t, "sbom") || strings.Contains(t, "syft"):
		return "SBOMs"
	case strings.Contains(t, "in-toto") || strings.Contains(t, "intoto") || strings.Contains(t, "attestation") || strings.Contains(t, "provenance") || strings.Contains(t, "vex"):
		return "Attestations"
	}
	return "Other artifacts"
}
