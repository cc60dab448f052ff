package pullthrough

import (
	"context"
	"errors"
	"time"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/opencontainers/go-digest"
)

// ManifestResult is a manifest answer: Raw is nil for a HEAD; Warning is
// set when it is served stale because the upstream failed.
type ManifestResult struct {
	Info    registry.ManifestInfo
	Raw     []byte
	Warning string
}

// Manifest answers a manifest GET (head false) or HEAD of ref (tag or
// digest) in the local repository repo.
func (c *Cache) Manifest(ctx context.Context, repo, ref string, head bool) (*ManifestResult, error) {
	u, upRepo, err := c.lookup(repo)
	if err != nil {
		return nil, err
	}
	if oci.IsDigestReference(ref) {
		d, err := oci.ParseDigest(ref)
		if err != nil {
			return nil, err
		}
		return c.manifestByDigest(ctx, u, repo, upRepo, d, head)
	}
	if err := oci.ValidateTag(ref); err != nil {
		return nil, err
	}
	return c.manifestByTag(ctx, u, repo, upRepo, ref, head)
}

func (c *Cache) answer(ctx context.Context, u *upstream, repo, ref string, head bool, fresh bool) (*ManifestResult, error) {
	var res ManifestResult
	var err error
	if head {
		res.Info, err = c.reg.StatManifest(ctx, repo, ref)
	} else {
		res.Info, res.Raw, err = c.reg.GetManifest(ctx, repo, ref)
	}
	if err != nil {
		return nil, err
	}
	c.markPulled(ctx, repo, res.Info.Digest)
	if !head && fresh {
		c.prefetchBlobs(u, repo, res.Info, res.Raw)
	}
	return &res, nil
}

func (c *Cache) manifestByDigest(ctx context.Context, u *upstream, repo, upRepo string, d digest.Digest, head bool) (*ManifestResult, error) {
	if _, err := c.reg.StatManifest(ctx, repo, string(d)); err == nil {
		c.m.hits.WithLabelValues(u.Prefix, "manifest").Inc()
		return c.answer(ctx, u, repo, string(d), head, false)
	} else if e, ok := oci.AsError(err); !ok || e.Code != oci.ErrManifestUnknown {
		return nil, err
	}
	c.m.misses.WithLabelValues(u.Prefix, "manifest").Inc()
	if down, lastErr := u.down(); down {
		return nil, unavailable(u, repo+"@"+string(d), lastErr)
	}
	err := c.once(ctx, "m\x00"+repo+"@"+string(d), func(ctx context.Context) error {
		return c.fetchManifest(ctx, u, repo, upRepo, string(d), "", d)
	})
	if err != nil {
		return nil, err
	}
	return c.answer(ctx, u, repo, string(d), head, true)
}

// fetchManifest GETs ref upstream and stores it (under tag when set).
func (c *Cache) fetchManifest(ctx context.Context, u *upstream, repo, upRepo, ref, tag string, want digest.Digest) error {
	ctx, cancel := context.WithTimeout(ctx, 2*u.Timeout)
	defer cancel()
	m, err := u.Client.GetManifest(ctx, upRepo, ref)
	if err != nil {
		if notFound(err) {
			return oci.Errorf(oci.ErrManifestUnknown, "manifest %s is not in %s/%s upstream", ref, u.Client.Host(), upRepo)
		}
		c.failed(u, "manifest "+upRepo+":"+ref, err)
		return unavailable(u, repo+":"+ref, err)
	}
	u.ok()
	c.m.bytesFetched.WithLabelValues(u.Prefix).Add(float64(len(m.Raw)))
	d, _, err := c.reg.PutCachedManifest(ctx, repo, tag, m.MediaType, m.Raw, want)
	if err != nil {
		var e *oci.Error
		if errors.As(err, &e) {
			c.log.Warn("pull-through: upstream manifest refused", "upstream", u.Prefix, "repository", repo, "ref", ref, "error", err)
			return oci.Errorf(oci.ErrManifestInvalid, "upstream %s sent an invalid manifest for %s: %s", u.Prefix, ref, e.Message).WithStatus(502)
		}
		return err
	}
	c.log.Info("pull-through: manifest filled", "upstream", u.Prefix, "repository", repo, "ref", ref, "digest", d, "bytes", len(m.Raw))
	if tag != "" {
		c.setChecked(repo, tag)
	}
	return nil
}

func (c *Cache) setChecked(repo, tag string) {
	c.mu.Lock()
	c.checked[repo+":"+tag] = time.Now()
	c.mu.Unlock()
}

func (c *Cache) fresh(u *upstream, repo, tag string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.checked[repo+":"+tag]
	return ok && time.Since(at) < u.TagTTL
}

func (c *Cache) manifestByTag(ctx context.Context, u *upstream, repo, upRepo, tag string, head bool) (*ManifestResult, error) {
	cached, statErr := c.reg.StatManifest(ctx, repo, tag)
	if statErr != nil {
		if e, ok := oci.AsError(statErr); !ok || e.Code != oci.ErrManifestUnknown {
			return nil, statErr
		}
	}
	have := statErr == nil
	if have && c.fresh(u, repo, tag) {
		c.m.hits.WithLabelValues(u.Prefix, "manifest").Inc()
		return c.answer(ctx, u, repo, tag, head, false)
	}
	if have {
		if down, lastErr := u.down(); down {
			return c.stale(ctx, u, repo, tag, head, lastErr)
		}
	} else {
		c.m.misses.WithLabelValues(u.Prefix, "manifest").Inc()
		if down, lastErr := u.down(); down {
			return nil, unavailable(u, repo+":"+tag, lastErr)
		}
	}
	err := c.once(ctx, "t\x00"+repo+":"+tag, func(ctx context.Context) error {
		if !have {
			return c.fetchManifest(ctx, u, repo, upRepo, tag, tag, "")
		}
		hctx, cancel := context.WithTimeout(ctx, u.Timeout)
		m, err := u.Client.HeadManifest(hctx, upRepo, tag)
		cancel()
		switch {
		case err != nil && notFound(err):
			return oci.Errorf(oci.ErrManifestUnknown, "tag %s is no longer in %s/%s upstream", tag, u.Client.Host(), upRepo)
		case err != nil:
			c.failed(u, "manifest "+upRepo+":"+tag, err)
			return &staleError{err}
		case m.Digest == string(cached.Digest):
			u.ok()
			c.setChecked(repo, tag)
			return nil
		}
		u.ok()
		// The tag moved upstream: fetch what it names now, by digest when
		// the upstream said which.
		ref, want := tag, digest.Digest("")
		if d, perr := digest.Parse(m.Digest); perr == nil {
			ref, want = m.Digest, d
		}
		err = c.fetchManifest(ctx, u, repo, upRepo, ref, tag, want)
		if e, ok := oci.AsError(err); ok && e.Code == oci.ErrUnavailable {
			return &staleError{err}
		}
		return err
	})
	var se *staleError
	if errors.As(err, &se) {
		return c.stale(ctx, u, repo, tag, head, se.cause)
	}
	if err != nil {
		return nil, err
	}
	if have {
		c.m.hits.WithLabelValues(u.Prefix, "manifest").Inc()
	}
	return c.answer(ctx, u, repo, tag, head, !have)
}

func (c *Cache) stale(ctx context.Context, u *upstream, repo, tag string, head bool, cause error) (*ManifestResult, error) {
	res, err := c.answer(ctx, u, repo, tag, head, false)
	if err != nil {
		return nil, err
	}
	c.m.stale.WithLabelValues(u.Prefix, "manifest").Inc()
	res.Warning = staleWarning(u, cause)
	return res, nil
}

// markPulled records a pull for eviction, at most once a second per
// manifest.
func (c *Cache) markPulled(ctx context.Context, repo string, d digest.Digest) {
	now := time.Now()
	key := repo + "@" + string(d)
	c.mu.Lock()
	last := c.pulled[key]
	if now.Sub(last) < time.Second {
		c.mu.Unlock()
		return
	}
	c.pulled[key] = now
	if len(c.pulled) > 100000 {
		clear(c.pulled)
	}
	c.mu.Unlock()
	if err := c.reg.MarkPulled(context.WithoutCancel(ctx), repo, d, now); err != nil {
		c.log.Warn("pull-through: recording a pull failed", "repository", repo, "digest", d, "error", err)
	}
}

type prefetchJob struct {
	u    *upstream
	repo string
	d    digest.Digest
}

// prefetchBlobs queues the blobs of an image manifest just filled, so the
// whole image is cached even if the client stops half way.
func (c *Cache) prefetchBlobs(u *upstream, repo string, info registry.ManifestInfo, raw []byte) {
	m, err := oci.ParseManifest(info.MediaType, raw)
	if err != nil || m.IsIndex() {
		return
	}
	for _, b := range m.Blobs() {
		if b.Foreign() {
			continue
		}
		select {
		case c.prefetch <- prefetchJob{u: u, repo: repo, d: b.Digest}:
		default:
			return // the queue is full; clients still fill on demand
		}
	}
}

func (c *Cache) prefetchOne(ctx context.Context, j prefetchJob) {
	if _, err := c.reg.StatBlob(ctx, j.repo, j.d); err == nil {
		return
	}
	f, err := c.startFill(ctx, j.u, j.repo, j.d)
	if err != nil {
		return
	}
	select {
	case <-f.done:
	case <-ctx.Done():
	}
}

// staleError tells the callers sharing a revalidation that the upstream
// failed and the cached answer is to be served.
type staleError struct{ cause error }

func (e *staleError) Error() string { return e.cause.Error() }
