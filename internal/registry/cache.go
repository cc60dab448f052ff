package registry

import (
	"sync"

	"github.com/opencontainers/go-digest"
)

// manifestCache keeps manifest bodies by digest. Content addressing makes an
// entry valid forever, so there is no invalidation, only a size bound; when
// full, arbitrary entries are evicted (map order), which is cheap and good
// enough for a working set that mostly fits.
type manifestCache struct {
	mu    sync.RWMutex
	max   int
	used  int
	items map[digest.Digest][]byte
}

func newManifestCache(max int) *manifestCache {
	return &manifestCache{max: max, items: map[digest.Digest][]byte{}}
}

func (c *manifestCache) get(d digest.Digest) ([]byte, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	b, ok := c.items[d]
	return b, ok
}

func (c *manifestCache) put(d digest.Digest, b []byte) {
	if len(b) > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[d]; ok {
		return
	}
	for k, v := range c.items {
		if c.used+len(b) <= c.max {
			break
		}
		delete(c.items, k)
		c.used -= len(v)
	}
	c.items[d] = b
	c.used += len(b)
}
