package pullthrough

import (
	"context"
	"strings"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/opencontainers/go-digest"
)

// Referrers lists the manifests whose subject is d in the local repository
// repo, as the upstream lists them (its referrers API, else the
// sha256-<hex> and .sig/.att/.sbom tag schemes). The referrer manifests
// are filled in the background, so the list is also answered from the
// cache when the upstream fails (warning set).
func (c *Cache) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) (list []oci.Descriptor, warning string, err error) {
	u, upRepo, err := c.lookup(repo)
	if err != nil {
		return nil, "", err
	}
	local := func(cause error) ([]oci.Descriptor, string, error) {
		l, err := c.reg.Referrers(ctx, repo, d, artifactType)
		if err != nil {
			return nil, "", err
		}
		c.m.stale.WithLabelValues(u.Prefix, "referrers").Inc()
		return l, staleWarning(u, cause), nil
	}
	if down, lastErr := u.down(); down {
		return local(lastErr)
	}
	c.m.misses.WithLabelValues(u.Prefix, "referrers").Inc()
	rctx, cancel := context.WithTimeout(ctx, 2*u.Timeout)
	defer cancel()
	ups, tags, err := u.Client.Referrers(rctx, upRepo, string(d))
	if err != nil {
		if notFound(err) {
			return []oci.Descriptor{}, "", nil
		}
		c.failed(u, "referrers "+upRepo+"@"+string(d), err)
		return local(err)
	}
	u.ok()
	list = []oci.Descriptor{}
	for _, x := range ups {
		rd, perr := digest.Parse(x.Digest)
		if perr != nil {
			continue
		}
		if artifactType == "" || x.ArtifactType == artifactType {
			list = append(list, oci.Descriptor{MediaType: x.MediaType, Digest: rd, Size: x.Size, ArtifactType: x.ArtifactType, Annotations: x.Annotations})
		}
		c.cacheReferrer(u, repo, upRepo, string(rd), "")
	}
	for _, t := range tags {
		if strings.HasPrefix(t, d.Algorithm().String()+"-") {
			c.cacheReferrer(u, repo, upRepo, t, t)
		}
	}
	return list, "", nil
}

// cacheReferrer fills a referrer manifest (by digest, or a fallback tag)
// in the background.
func (c *Cache) cacheReferrer(u *upstream, repo, upRepo, ref, tag string) {
	go func() {
		if tag == "" {
			if _, err := c.reg.StatManifest(c.ctx, repo, ref); err == nil {
				return
			}
		}
		var want digest.Digest
		if tag == "" {
			want = digest.Digest(ref)
		}
		_ = c.once(c.ctx, "m\x00"+repo+"@"+ref, func(ctx context.Context) error {
			return c.fetchManifest(ctx, u, repo, upRepo, ref, tag, want)
		})
	}()
}
