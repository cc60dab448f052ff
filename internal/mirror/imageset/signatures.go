package imageset

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// DefaultSignatureStore is where OpenShift release signatures are
// published, the store oc-mirror v2 reads (OCP_SIGNATURE_URL overrides it
// there; SignatureClient.URL here).
const DefaultSignatureStore = "https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release"

// SignatureClient reads release signatures from a signature store laid out
// as the cluster-version operator reads one:
// <URL>/sha256=<hex>/signature-<n>, n counting from 1.
//
// It does not verify them: the cluster does, against the keys it trusts,
// and ignores a signature no trusted key made. A store that has none for a
// digest is not an error (an OKD or a CI release has none).
type SignatureClient struct {
	// URL of the store (default DefaultSignatureStore).
	URL string
	// HTTP is the client (nil: a plain http.Client).
	HTTP *http.Client
	// Max is the most signatures read per digest (default 16).
	Max int
}

// maxSignatureBytes bounds one signature; real ones are under 1 KiB.
const maxSignatureBytes = 64 << 10

// ReleaseSignatures reads signature-1, signature-2, … of digest until the
// store answers 404.
func (c *SignatureClient) ReleaseSignatures(ctx context.Context, digest string) (ReleaseSignature, error) {
	d, err := name.NewDigest("x/y@"+digest, name.WeakValidation)
	if err != nil {
		return ReleaseSignature{}, fmt.Errorf("release signature digest %q: %v", digest, err)
	}
	base := c.URL
	if base == "" {
		base = DefaultSignatureStore
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ReleaseSignature{}, fmt.Errorf("signature store %q: want an http(s) URL", base)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{}
	}
	limit := c.Max
	if limit <= 0 {
		limit = 16
	}
	out := ReleaseSignature{Digest: d.DigestStr()}
	dir := strings.TrimSuffix(base, "/") + "/" + strings.Replace(d.DigestStr(), ":", "=", 1)
	for i := 1; i <= limit; i++ {
		u := fmt.Sprintf("%s/signature-%d", dir, i)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return ReleaseSignature{}, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return ReleaseSignature{}, fmt.Errorf("signature store: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxSignatureBytes+1))
		resp.Body.Close()
		switch {
		case err != nil:
			return ReleaseSignature{}, fmt.Errorf("signature store %s: %w", u, err)
		case resp.StatusCode == http.StatusNotFound:
			return out, nil
		case resp.StatusCode != http.StatusOK:
			return ReleaseSignature{}, fmt.Errorf("signature store %s: %s", u, resp.Status)
		case len(body) == 0 || len(body) > maxSignatureBytes:
			return ReleaseSignature{}, fmt.Errorf("signature store %s: a signature of %d bytes is not one", u, len(body))
		}
		out.Signatures = append(out.Signatures, body)
	}
	return out, nil
}
