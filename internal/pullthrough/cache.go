package pullthrough

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
)

// Upstream is one mirrored registry.
type Upstream struct {
	// Prefix is the local repository prefix (usually the upstream's host).
	Prefix string
	// Client reaches the upstream.
	Client *mirror.Upstream
	// TagTTL is how long a tag's answer is trusted before a HEAD
	// revalidates it.
	TagTTL time.Duration
	// Timeout bounds an upstream request (the client's own timeout); it
	// is also how long a failed upstream is not asked again.
	Timeout time.Duration
	// DockerHub adds library/ to one-component repository names.
	DockerHub bool
}

// Options configure a Cache.
type Options struct {
	Upstreams []Upstream
	// MaxSize bounds the bytes of cached content (0: no bound).
	MaxSize int64
	// MaxUnusedAge evicts what no one pulled for this long (0: never).
	MaxUnusedAge time.Duration
	// Metrics receives the cache's metrics (nil: none).
	Metrics *prometheus.Registry
	// Log receives one line per fill and per upstream failure.
	Log *slog.Logger
}

// Cache is the pull-through cache over a registry.
type Cache struct {
	reg  *registry.Registry
	ups  []*upstream // longest prefix first
	opts Options
	log  *slog.Logger
	m    *metrics
	ctx  context.Context // fills run on it, not on a client's request

	mu      sync.Mutex
	fills   map[digest.Digest]*fill
	flights map[string]*flight
	checked map[string]time.Time // repo:tag -> last time upstream confirmed it
	inUse   map[digest.Digest]int
	pulled  map[string]time.Time // repo@digest -> last MarkPulled

	prefetch chan prefetchJob
	evictNow chan struct{}
}

type upstream struct {
	Upstream
	mu        sync.Mutex
	downUntil time.Time
	lastErr   error
}

// New builds a cache; ctx bounds the fills and background work (cancel it
// at shutdown).
func New(ctx context.Context, reg *registry.Registry, opts Options) (*Cache, error) {
	c := &Cache{
		reg: reg, opts: opts, log: opts.Log, ctx: ctx,
		fills: map[digest.Digest]*fill{}, flights: map[string]*flight{},
		checked: map[string]time.Time{}, inUse: map[digest.Digest]int{}, pulled: map[string]time.Time{},
		prefetch: make(chan prefetchJob, 1024), evictNow: make(chan struct{}, 1),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	for _, u := range opts.Upstreams {
		if u.Prefix == "" || u.Client == nil {
			return nil, errors.New("pullthrough: an upstream needs a prefix and a client")
		}
		if seen[u.Prefix] {
			return nil, fmt.Errorf("pullthrough: prefix %q configured twice", u.Prefix)
		}
		seen[u.Prefix] = true
		if u.Timeout <= 0 {
			u.Timeout = 3 * time.Second
		}
		c.ups = append(c.ups, &upstream{Upstream: u})
	}
	slices.SortFunc(c.ups, func(a, b *upstream) int { return len(b.Prefix) - len(a.Prefix) })
	c.m = newMetrics(opts.Metrics)
	return c, nil
}

// Prefixes are the configured prefixes.
func (c *Cache) Prefixes() []string {
	var out []string
	for _, u := range c.ups {
		out = append(out, u.Prefix)
	}
	return out
}

// Resolve maps a requested repository name, and containerd's ns query
// parameter, to the local repository of the cache: prefix/repository, with
// library/ added for Docker Hub's one-component names. ok is false when the
// request is not for the cache.
func (c *Cache) Resolve(repo, ns string) (local string, ok bool) {
	if ns != "" {
		for _, u := range c.ups {
			if u.Prefix == ns {
				return u.local(repo), true
			}
		}
	}
	if u, rest := c.match(repo); u != nil {
		return u.local(rest), true
	}
	return repo, false
}

func (u *upstream) local(upRepo string) string {
	if u.DockerHub && !strings.Contains(upRepo, "/") {
		upRepo = "library/" + upRepo
	}
	return u.Prefix + "/" + upRepo
}

// match finds the upstream of a local repository and the upstream's name
// for it.
func (c *Cache) match(repo string) (*upstream, string) {
	for _, u := range c.ups {
		if rest, ok := strings.CutPrefix(repo, u.Prefix+"/"); ok && rest != "" {
			return u, rest
		}
	}
	return nil, ""
}

// Refuse is the error for a push or delete under a cache prefix.
func (c *Cache) Refuse(repo, method string) error {
	u, _ := c.match(repo)
	host := repo
	if u != nil {
		host = u.Prefix + " (" + u.Client.Host() + ")"
	}
	return oci.Errorf(oci.ErrUnsupported, "%s is a pull-through cache of %s: %s is refused here; push to the upstream instead", repo, host, method)
}

func (c *Cache) lookup(repo string) (*upstream, string, error) {
	u, rest := c.match(repo)
	if u == nil {
		return nil, "", oci.Errorf(oci.ErrNameUnknown, "repository %s is not under a pull-through prefix", repo)
	}
	return u, rest, nil
}

// down reports whether u failed recently enough not to be asked again.
func (u *upstream) down() (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return time.Now().Before(u.downUntil), u.lastErr
}

// failed records an upstream failure; it is not asked again for its
// timeout (or its Retry-After, up to a minute).
func (c *Cache) failed(u *upstream, what string, err error) {
	wait := u.Timeout
	if ra := mirror.RetryAfterOf(err); ra > wait {
		wait = min(ra, time.Minute)
	}
	u.mu.Lock()
	u.downUntil = time.Now().Add(wait)
	u.lastErr = err
	u.mu.Unlock()
	c.m.upstreamErrors.WithLabelValues(u.Prefix, reason(err)).Inc()
	c.log.Warn("pull-through: upstream failed", "upstream", u.Prefix, "host", u.Client.Host(), "what", what, "error", err)
}

func (u *upstream) ok() {
	u.mu.Lock()
	u.downUntil, u.lastErr = time.Time{}, nil
	u.mu.Unlock()
}

// notFound tells whether the upstream answered 404: its answer, not a
// failure.
func notFound(err error) bool { return mirror.StatusOf(err) == 404 }

func reason(err error) string {
	switch s := mirror.StatusOf(err); {
	case s == 0 && errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case s == 0:
		return "unreachable"
	case s == 429:
		return "throttled"
	case s == 401 || s == 403:
		return "denied"
	case s >= 500:
		return "server"
	default:
		return fmt.Sprint(s)
	}
}

// unavailable is the answer when nothing is cached and the upstream failed.
func unavailable(u *upstream, what string, err error) error {
	return oci.Errorf(oci.ErrUnavailable, "upstream %s (%s) failed and %s is not cached: %v", u.Prefix, u.Client.Host(), what, err)
}

// staleWarning is the Warning header value for a stale answer.
func staleWarning(u *upstream, err error) string {
	msg := fmt.Sprintf("served from cache: upstream %s failed: %v", u.Prefix, err)
	msg = strings.NewReplacer(`"`, `'`, "\n", " ").Replace(msg)
	return `110 berth "` + msg + `"`
}

// flight runs fn once for concurrent callers with the same key; fn runs on
// the cache's context, so no caller's cancellation aborts the others.
type flight struct {
	done chan struct{}
	err  error
}

func (c *Cache) once(ctx context.Context, key string, fn func(ctx context.Context) error) error {
	c.mu.Lock()
	f, ok := c.flights[key]
	if !ok {
		f = &flight{done: make(chan struct{})}
		c.flights[key] = f
		go func() {
			f.err = fn(c.ctx)
			c.mu.Lock()
			delete(c.flights, key)
			c.mu.Unlock()
			close(f.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Cache) use(d digest.Digest) func() {
	c.mu.Lock()
	c.inUse[d]++
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.inUse[d]--; c.inUse[d] <= 0 {
				delete(c.inUse, d)
			}
			c.mu.Unlock()
		})
	}
}

func (c *Cache) used(d digest.Digest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inUse[d] > 0 {
		return true
	}
	f := c.fills[d]
	if f == nil {
		return false
	}
	select {
	case <-f.done:
		return false
	default:
		return true
	}
}

// Run does the background work until ctx ends: filling the blobs of
// manifests just served, and eviction (at start, every minute, and after
// fills when maxSize is set).
func (c *Cache) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-c.prefetch:
					c.prefetchOne(ctx, j)
				}
			}
		}()
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if c.opts.MaxSize > 0 || c.opts.MaxUnusedAge > 0 {
			if _, err := c.Evict(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("pull-through: eviction failed", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		case <-c.evictNow:
		}
	}
}

func (c *Cache) kickEviction() {
	if c.opts.MaxSize <= 0 && c.opts.MaxUnusedAge <= 0 {
		return
	}
	select {
	case c.evictNow <- struct{}{}:
	default:
	}
}
