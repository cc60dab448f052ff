package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// PullThrough makes berth serve a caching mirror of other registries: a
// pull of /v2/<prefix>/<repository>/... (or of /v2/<repository>/... with
// containerd's ?ns=<prefix>) is answered from the cache, filled from the
// upstream on a miss. Cached content is ordinary content; it leaves the
// cache only by MaxSize and MaxUnusedAge.
type PullThrough struct {
	// Upstreams are the registries mirrored, each under its own prefix.
	Upstreams []Upstream `yaml:"upstreams"`
	// MaxSize bounds the bytes cached content may take ("200GiB", "500MB",
	// or a number of bytes); beyond it the least recently pulled images
	// are evicted. Zero (the default): no bound.
	MaxSize ByteSize `yaml:"maxSize"`
	// MaxUnusedAge evicts cached images no one pulled for this long (a Go
	// duration like 720h). Zero (the default): never by age.
	MaxUnusedAge Duration `yaml:"maxUnusedAge"`
}

// Upstream is one mirrored registry.
type Upstream struct {
	// Prefix is the first path components of the cache's repositories for
	// this upstream, usually its host name: with prefix quay.io,
	// /v2/quay.io/<repository>/... is served from <url>/v2/<repository>/....
	// It is also the ?ns= value containerd sends for this upstream. It
	// must be a valid repository name (lowercase, no port).
	Prefix string `yaml:"prefix"`
	// URL is the upstream's base URL, https://host[:port]. docker.io's
	// one-component names get library/ (https://registry-1.docker.io).
	URL string `yaml:"url"`
	// AuthFile is an auths JSON file (a pull secret, podman's auth.json,
	// docker's config.json) with the credentials for the upstream
	// (optional: anonymous).
	AuthFile string `yaml:"authFile"`
	// CAFile is a PEM bundle trusted for the upstream's certificate on top
	// of the system's (optional).
	CAFile string `yaml:"caFile"`
	// Insecure allows a plain-HTTP URL, or skips certificate verification
	// for an https one.
	Insecure bool `yaml:"insecure"`
	// TagTTL is how long a tag's cached answer is trusted before it is
	// revalidated with a HEAD to the upstream; default 5m. Manifests by
	// digest and blobs never need revalidation.
	TagTTL Duration `yaml:"tagTTL"`
	// Timeout bounds each upstream request until its answer starts (and
	// any pause in a blob's body); an upstream slower than this counts as
	// failed and what is cached is served. Default 3s.
	Timeout Duration `yaml:"timeout"`
}

// Default upstream settings.
const (
	DefaultTagTTL          = 5 * time.Minute
	DefaultUpstreamTimeout = 3 * time.Second
)

// ByteSize is a number of bytes written as a plain number or with a unit:
// B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
type ByteSize int64

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)$`)

// ParseByteSize reads "200GiB", "1.5GB", "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size like 200GiB, 500MB or 1048576", s)
	}
	mult, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("%q: unit %q is not one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB", s, m[2])
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil || v*float64(mult) > float64(1<<62) {
		return 0, fmt.Errorf("%q is not a size like 200GiB", s)
	}
	return ByteSize(v * float64(mult)), nil
}

// UnmarshalYAML parses a size with an optional unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// prefixRE is the repository name grammar (as internal/oci checks it).
var prefixRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

func (p *PullThrough) defaults() {
	if p == nil {
		return
	}
	for i := range p.Upstreams {
		u := &p.Upstreams[i]
		if u.TagTTL == 0 {
			u.TagTTL = Duration(DefaultTagTTL)
		}
		if u.Timeout == 0 {
			u.Timeout = Duration(DefaultUpstreamTimeout)
		}
	}
}

func (p *PullThrough) validate() []error {
	if p == nil {
		return nil
	}
	var errs []error
	if len(p.Upstreams) == 0 {
		errs = append(errs, errors.New("pullThrough.upstreams: at least one upstream is required"))
	}
	if p.MaxSize < 0 {
		errs = append(errs, errors.New("pullThrough.maxSize: must not be negative"))
	}
	if p.MaxUnusedAge < 0 {
		errs = append(errs, errors.New("pullThrough.maxUnusedAge: must not be negative"))
	}
	seen := map[string]int{}
	for i, u := range p.Upstreams {
		f := fmt.Sprintf("pullThrough.upstreams[%d]", i)
		switch {
		case u.Prefix == "":
			errs = append(errs, fmt.Errorf("%s.prefix: required (the first path components of the cached repositories, like quay.io)", f))
		case !prefixRE.MatchString(u.Prefix):
			errs = append(errs, fmt.Errorf("%s.prefix: %q is not a repository name prefix (lowercase letters, digits, . _ - and /; no port)", f, u.Prefix))
		default:
			if j, dup := seen[u.Prefix]; dup {
				errs = append(errs, fmt.Errorf("%s.prefix: %q is already the prefix of upstreams[%d]", f, u.Prefix, j))
			}
			seen[u.Prefix] = i
		}
		if uu, err := url.Parse(u.URL); err != nil || (uu.Scheme != "http" && uu.Scheme != "https") || uu.Host == "" || strings.Trim(uu.Path, "/") != "" || uu.RawQuery != "" {
			errs = append(errs, fmt.Errorf("%s.url: %q is not a registry base URL like https://quay.io", f, u.URL))
		} else if uu.Scheme == "http" && !u.Insecure {
			errs = append(errs, fmt.Errorf("%s.url: %q is plain HTTP; set insecure: true to allow it", f, u.URL))
		}
		for field, path := range map[string]string{"authFile": u.AuthFile, "caFile": u.CAFile} {
			if path == "" {
				continue
			}
			if _, err := os.Stat(path); err != nil {
				errs = append(errs, fmt.Errorf("%s.%s: %v", f, field, err))
			}
		}
		if u.TagTTL < 0 {
			errs = append(errs, fmt.Errorf("%s.tagTTL: must not be negative", f))
		}
		if u.Timeout < 0 {
			errs = append(errs, fmt.Errorf("%s.timeout: must not be negative", f))
		}
	}
	return errs
}
