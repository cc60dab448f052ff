package pullthrough

import (
	"context"
	"errors"
	"time"

	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/registry"
)

// EvictResult tells what an eviction pass removed.
type EvictResult struct {
	Manifests int
	Bytes     int64
	// Size is the cache's size after the pass.
	Size int64
}

// Evict removes cached manifests no one pulled for MaxUnusedAge, then the
// least recently pulled ones until the cache is under MaxSize. A manifest
// whose bytes or references a pull is reading or filling now is skipped.
func (c *Cache) Evict(ctx context.Context) (EvictResult, error) {
	var res EvictResult
	prefixes := c.Prefixes()
	evictOne := func(m metadata.PulledManifest, why string) (bool, error) {
		refs, err := c.reg.ManifestRefs(ctx, m.Repo, m.Digest)
		if err != nil {
			return false, err
		}
		if c.used(m.Digest) {
			return false, nil
		}
		for _, d := range refs {
			if c.used(d) {
				return false, nil
			}
		}
		freed, err := c.reg.Evict(ctx, m.Repo, m.Digest, registry.EvictOptions{NotPulledSince: m.LastPulled.Add(time.Nanosecond), InUse: c.used})
		if errors.Is(err, metadata.ErrInUse) || errors.Is(err, metadata.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		res.Manifests++
		res.Bytes += freed
		c.m.evicted.WithLabelValues(why).Add(float64(freed))
		c.log.Info("pull-through: evicted", "reason", why, "repository", m.Repo, "digest", m.Digest, "lastPulled", m.LastPulled, "bytesFreed", freed)
		return true, nil
	}
	if age := c.opts.MaxUnusedAge; age > 0 {
		for {
			list, err := c.reg.LeastRecentlyPulled(ctx, prefixes, time.Now().Add(-age), 100)
			if err != nil {
				return res, err
			}
			progress := false
			for _, m := range list {
				ok, err := evictOne(m, "maxUnusedAge")
				if err != nil {
					return res, err
				}
				progress = progress || ok
			}
			if len(list) < 100 || !progress {
				break
			}
		}
	}
	size, err := c.reg.CachedBytes(ctx, prefixes)
	if err != nil {
		return res, err
	}
	res.Size = size
	if c.opts.MaxSize <= 0 || size <= c.opts.MaxSize {
		return res, nil
	}
	skipped := 0
	for size > c.opts.MaxSize {
		list, err := c.reg.LeastRecentlyPulled(ctx, prefixes, time.Now().Add(time.Hour), skipped+20)
		if err != nil {
			return res, err
		}
		if len(list) <= skipped {
			break // everything left is in use
		}
		for _, m := range list[skipped:] {
			ok, err := evictOne(m, "maxSize")
			if err != nil {
				return res, err
			}
			if !ok {
				skipped++
				continue
			}
			break
		}
		if size, err = c.reg.CachedBytes(ctx, prefixes); err != nil {
			return res, err
		}
		res.Size = size
	}
	return res, nil
}
