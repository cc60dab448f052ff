package oci

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Digest algorithms the registry accepts: the two the OCI image spec
// registers. Each is verified with its own hash.
var (
	hexRE = map[string]*regexp.Regexp{
		"sha256": regexp.MustCompile(`^[a-f0-9]{64}$`),
		"sha512": regexp.MustCompile(`^[a-f0-9]{128}$`),
	}
	algorithmRE = regexp.MustCompile(`^[a-z0-9]+([+._-][a-z0-9]+)*$`)
)

// ParseDigest validates a digest string: a well-formed "algorithm:encoded"
// whose algorithm is supported and whose encoding has the right length.
// An unknown algorithm yields DIGEST_INVALID with a message saying so.
func ParseDigest(s string) (digest.Digest, error) {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok || !algorithmRE.MatchString(alg) || enc == "" {
		return "", Errorf(ErrDigestInvalid, "malformed digest %q", truncate(s))
	}
	re, known := hexRE[alg]
	if !known {
		return "", Errorf(ErrDigestInvalid, "unsupported digest algorithm %q (supported: sha256, sha512)", truncate(alg))
	}
	if !re.MatchString(enc) {
		return "", Errorf(ErrDigestInvalid, "malformed %s digest %q", alg, truncate(s))
	}
	return digest.Digest(s), nil
}

// NewHash returns a fresh hash for a supported algorithm.
func NewHash(alg digest.Algorithm) hash.Hash {
	switch alg {
	case digest.SHA512:
		return sha512.New()
	default:
		return sha256.New()
	}
}

// FromHash renders a finished hash as a digest of the algorithm.
func FromHash(alg digest.Algorithm, h hash.Hash) digest.Digest {
	return digest.NewDigestFromBytes(alg, h.Sum(nil))
}

// DigestBytes computes the digest of b with alg.
func DigestBytes(alg digest.Algorithm, b []byte) digest.Digest {
	h := NewHash(alg)
	h.Write(b)
	return FromHash(alg, h)
}
