// Package conformance is Berth's OCI Distribution Specification v1.1
// conformance suite, written from the specification and runnable against any
// registry URL: Run(t, Config{BaseURL: ...}) drives the registry over plain
// HTTP(S) and asserts real outcomes (bytes round-trip, digests match, the OCI
// error envelope carries the right code and status, a refused request leaves
// the store as it was).
//
// A target declares what it legitimately lacks in Config.Features; each gap
// skips or relaxes only the checks that depend on it, for that target alone.
// The zero Features claims the whole specification, which is what Berth must
// pass.
//
// The suite only talks HTTP: it must not import anything of Berth's.
package conformance

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Config says where the registry under test is and what it lacks.
type Config struct {
	// BaseURL is the registry's root, e.g. "http://127.0.0.1:5000"; the
	// suite appends /v2/...
	BaseURL string
	// Namespace prefixes every repository the suite creates; empty means
	// "conformance/<random>", so that several runs can share one registry.
	Namespace string
	// Client sends the requests; nil means a client with a 2-minute timeout.
	Client *http.Client
	// Features lists what the target does not implement; the zero value
	// claims all of it.
	Features Features
}

// Features are the parts of the specification (and of the behaviour Berth
// promises on top of it) a target may declare missing. Every field names a
// gap, so the zero value is the strictest suite.
type Features struct {
	// NoReferrers: no referrers API (GET /v2/<name>/referrers/<digest>),
	// and therefore no OCI-Subject header on a manifest PUT with a subject.
	NoReferrers bool
	// NoSHA512: blobs and manifests can only be addressed by sha256.
	NoSHA512 bool
	// NoDeleteByTag: DELETE /v2/<name>/manifests/<tag> is refused (the spec
	// then requires 400 or 405, which the suite checks instead).
	NoDeleteByTag bool
	// NoRangeOn416: a 416 answer to an out-of-order chunk does not carry the
	// upload's current Range header (the spec only requires the status; the
	// client must then GET the upload status).
	NoRangeOn416 bool
	// NoNameErrors: a malformed repository name, tag or digest in the URL
	// path is answered by the router (a plain 404, or a 500 for an
	// over-long name) instead of NAME_INVALID / TAG_INVALID /
	// DIGEST_INVALID. The suite then still requires a refusal.
	NoNameErrors bool
	// NoSinglePost: POST /v2/<name>/blobs/uploads/?digest= with a body only
	// opens a session (202 and a Location, as the spec allows); the body is
	// ignored and the blob must then be PUT. Checks that push through the
	// single POST use POST then PUT instead.
	NoSinglePost bool
	// NoUploadUnknownCode: an upload location the registry did not hand out
	// is refused with 404 but code BLOB_UPLOAD_INVALID rather than
	// BLOB_UPLOAD_UNKNOWN (the registry signs its upload state into the
	// URL and rejects the signature before looking the session up).
	NoUploadUnknownCode bool
	// NoForeignLayers: manifests with non-distributable layers that carry
	// URLs are refused unless the registry is configured to allow them.
	NoForeignLayers bool
	// BadInputAs500: some malformed requests (an unknown schemaVersion, a
	// descriptor with a malformed digest, an unparsable Content-Range) are
	// answered 500 UNKNOWN instead of a 4xx OCI code. The suite then
	// accepts the 500 there and still requires that nothing was stored.
	BadInputAs500 bool
	// NoManifestTooLargeError: a manifest over the size limit is refused
	// without an OCI error body (a bare 413 or a reset connection). The
	// suite then still requires that nothing was stored.
	NoManifestTooLargeError bool
	// NoTruncatedBodyError: a blob upload whose body ends before its
	// Content-Length gets no 4xx OCI error (for example 499 UNKNOWN), and a
	// truncated PATCH keeps the bytes that did arrive. The suite then still
	// requires that no blob appears.
	NoTruncatedBodyError bool
	// NoMethodNotAllowedError: a method a route does not serve is answered
	// 405 without an OCI error body (instead of UNSUPPORTED).
	NoMethodNotAllowedError bool
	// NoChunkLengthCheck: a PATCH whose Content-Range disagrees with the
	// length of its body is accepted as long as the start is in order.
	NoChunkLengthCheck bool
}

// Run runs every check against cfg.BaseURL. Checks are grouped by area; each
// group uses its own repositories, so one failing group does not cascade.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	s := newSuite(t, cfg)
	t.Run("Base", s.apiBase)
	t.Run("BlobPush", s.blobPush)
	t.Run("BlobPull", s.blobPull)
	t.Run("Mount", s.mount)
	t.Run("Manifests", s.manifests)
	t.Run("ManifestReferences", s.manifestReferences)
	t.Run("SHA512", s.sha512)
	t.Run("Names", s.names)
	t.Run("Tags", s.tags)
	t.Run("Catalog", s.catalog)
	t.Run("Referrers", s.referrers)
	t.Run("Delete", s.delete)
	t.Run("BadInput", s.badInput)
	t.Run("Concurrency", s.concurrency)
}

type suite struct {
	cfg  Config
	base *url.URL
	ns   string
	hc   *http.Client
}

func newSuite(t *testing.T, cfg Config) *suite {
	t.Helper()
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || base.Host == "" || (base.Scheme != "http" && base.Scheme != "https") {
		t.Fatalf("conformance: BaseURL %q must be an absolute http(s) URL (%v)", cfg.BaseURL, err)
	}
	ns := cfg.Namespace
	if ns == "" {
		ns = "conformance/" + randomHex(4)
	}
	hc := cfg.Client
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	return &suite{cfg: cfg, base: base, ns: ns, hc: hc}
}

// repo returns a repository name unique to this run.
func (s *suite) repo(name string) string { return s.ns + "/" + name }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
