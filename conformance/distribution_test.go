package conformance_test

import (
	"os"
	"testing"

	"github.com/berth-registry/berth/conformance"
	"github.com/berth-registry/berth/internal/testpeer"
)

// TestDistribution cross-checks the suite against CNCF Distribution, the
// reference registry. Every gate below is a documented gap of Distribution
// v3, not a loosening of the suite.
func TestDistribution(t *testing.T) {
	addr := testpeer.StartDistribution(t)
	conformance.Run(t, conformance.Config{
		BaseURL: "http://" + addr,
		Features: conformance.Features{
			NoReferrers:             true, // no /v2/<name>/referrers/ route at all (404), no OCI-Subject
			NoSHA512:                true, // stores a sha512-addressed blob but answers its sha256; refuses sha512 manifest digests
			NoRangeOn416:            true, // 416 RANGE_INVALID without the current Range
			NoNameErrors:            true, // the router matches names by regexp: bad names and tags are a plain 404, an over-long name a 500
			NoSinglePost:            true, // POST ?digest= opens a session (202), as the spec allows
			NoUploadUnknownCode:     true, // upload state is HMAC-signed in the URL: a foreign one is BLOB_UPLOAD_INVALID
			NoForeignLayers:         true, // needs validation.manifests.urls.allow, which the default config leaves empty
			BadInputAs500:           true, // schemaVersion 3, a malformed descriptor digest, bad Content-Range → 500 UNKNOWN
			NoTruncatedBodyError:    true, // a truncated body is 499 UNKNOWN and a truncated PATCH keeps its bytes
			NoMethodNotAllowedError: true, // 405 from the router, with an empty body
		},
	})
}

// TestURL runs the suite against the registry at BERTH_CONFORMANCE_URL when
// it is set, with the whole specification claimed.
func TestURL(t *testing.T) {
	u := os.Getenv("BERTH_CONFORMANCE_URL")
	if u == "" {
		t.Skip("BERTH_CONFORMANCE_URL is not set")
	}
	conformance.Run(t, conformance.Config{BaseURL: u})
}
