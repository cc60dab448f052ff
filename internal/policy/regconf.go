package policy

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// RegistriesConf is registries.conf v2, the subset of keys Berth understands.
// A base file with any other key is refused rather than silently dropped.
type RegistriesConf struct {
	UnqualifiedSearchRegistries    []string          `toml:"unqualified-search-registries,omitempty"`
	ShortNameMode                  string            `toml:"short-name-mode,omitempty"`
	CredentialHelpers              []string          `toml:"credential-helpers,omitempty"`
	AdditionalLayerStoreAuthHelper string            `toml:"additional-layer-store-auth-helper,omitempty"`
	Registries                     []Registry        `toml:"registry,omitempty"`
	Aliases                        map[string]string `toml:"aliases,omitempty"`
}

// Registry is one [[registry]] entry.
type Registry struct {
	// Prefix is set only for wildcard entries ("*.example.com"); for others
	// the runtime defaults it to Location.
	Prefix             string     `toml:"prefix,omitempty"`
	Location           string     `toml:"location,omitempty"`
	Insecure           bool       `toml:"insecure,omitempty"`
	Blocked            bool       `toml:"blocked,omitempty"`
	MirrorByDigestOnly bool       `toml:"mirror-by-digest-only,omitempty"`
	Mirrors            []Endpoint `toml:"mirror,omitempty"`
}

// Endpoint is one [[registry.mirror]].
type Endpoint struct {
	Location       string `toml:"location"`
	Insecure       bool   `toml:"insecure,omitempty"`
	PullFromMirror string `toml:"pull-from-mirror,omitempty"`
}

// The pull-from-mirror values.
const (
	PullDigestOnly = "digest-only"
	PullTagOnly    = "tag-only"
	PullAll        = "all"
)

// scope is the key the cluster looks entries up by: the prefix of a wildcard
// entry, the location otherwise.
func (r *Registry) scope() string {
	if r.Prefix != "" {
		return r.Prefix
	}
	return r.Location
}

// effectivePrefix is what the runtime matches: the prefix, defaulting to the location.
func (r *Registry) effectivePrefix() string { return r.scope() }

// ParseRegistriesConf decodes a registries.conf (or drop-in) and checks it
// the way the runtime does when it loads it.
func ParseRegistriesConf(name string, data []byte) (*RegistriesConf, error) {
	var c RegistriesConf
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		if und[0].String() == "registries" || strings.HasPrefix(und[0].String(), "registries.") {
			return nil, fmt.Errorf("%s: registries.conf v1 ([registries.search] …) is not supported; use v2", name)
		}
		return nil, fmt.Errorf("%s: keys Berth does not understand: %s", name, strings.Join(keys, ", "))
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

// check applies the runtime's load-time rules (postProcessRegistries).
func (c *RegistriesConf) check() error {
	byLoc := map[string]*Registry{}
	for i := range c.Registries {
		r := &c.Registries[i]
		for _, s := range []string{r.Location, r.Prefix} {
			if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
				return fmt.Errorf("invalid location '%s': URI schemes are not supported", s)
			}
		}
		switch {
		case r.Prefix == "" && r.Location == "":
			return fmt.Errorf("invalid condition: both location and prefix are unset")
		case r.Prefix != "" && !isWildcard(r.Prefix) && r.Location == "":
			return fmt.Errorf("invalid condition: location is unset and prefix is not in the format: *.example.com")
		case isWildcard(r.Prefix) && strings.ContainsAny(r.Prefix, "/@:"):
			return fmt.Errorf("Wildcarded prefix should be in the format: *.example.com. Current prefix %q is incorrectly formatted", r.Prefix)
		}
		for _, m := range r.Mirrors {
			if m.Location == "" {
				return fmt.Errorf("invalid condition: mirror location is unset")
			}
			if r.MirrorByDigestOnly && m.PullFromMirror != "" {
				return fmt.Errorf("cannot set mirror usage mirror-by-digest-only for the registry (%q) and pull-from-mirror for per-mirror (%q) at the same time", r.effectivePrefix(), m.Location)
			}
			switch m.PullFromMirror {
			case "", PullAll, PullDigestOnly, PullTagOnly:
			default:
				return fmt.Errorf("unsupported pull-from-mirror value %q for mirror %q", m.PullFromMirror, m.Location)
			}
		}
		key := r.Location
		if key == "" {
			key = r.Prefix
		}
		if o, ok := byLoc[key]; ok {
			if o.Insecure != r.Insecure {
				return fmt.Errorf("registry '%s' is defined multiple times with conflicting 'insecure' setting", r.Location)
			}
			if o.Blocked != r.Blocked {
				return fmt.Errorf("registry '%s' is defined multiple times with conflicting 'blocked' setting", r.Location)
			}
		} else {
			byLoc[key] = r
		}
	}
	return nil
}

// Encode renders c as TOML.
func (c *RegistriesConf) Encode() []byte {
	var buf bytes.Buffer
	buf.WriteString("# Rendered by berth policy render from the cluster's image configuration.\n")
	enc := toml.NewEncoder(&buf)
	enc.Indent = "  "
	if err := enc.Encode(c); err != nil {
		// Every field is a plain string, bool or slice of them: encoding cannot fail.
		panic(err)
	}
	return buf.Bytes()
}

// NodeRegistries is the merged view the runtime has of registries.conf plus
// its drop-ins: entries deduplicated by prefix (first wins) and sorted.
type NodeRegistries struct {
	Search     []string
	Registries []Registry
}

// Merge layers drop-ins (already in lexical file order) over main the way
// the runtime does: entries are replaced by prefix, and a drop-in that sets
// unqualified-search-registries replaces the list.
func Merge(main *RegistriesConf, dropIns ...*RegistriesConf) *NodeRegistries {
	n := &NodeRegistries{Search: main.UnqualifiedSearchRegistries}
	byPrefix := map[string]Registry{}
	add := func(c *RegistriesConf, firstWins bool) {
		for _, r := range c.Registries {
			p := r.effectivePrefix()
			if _, ok := byPrefix[p]; ok && firstWins {
				continue
			}
			byPrefix[p] = r
		}
	}
	add(main, true)
	for _, d := range dropIns {
		// Within one file the first entry for a prefix wins; across files the later file wins.
		local := map[string]Registry{}
		for _, r := range d.Registries {
			if _, ok := local[r.effectivePrefix()]; !ok {
				local[r.effectivePrefix()] = r
			}
		}
		for p, r := range local {
			byPrefix[p] = r
		}
		if d.UnqualifiedSearchRegistries != nil {
			n.Search = d.UnqualifiedSearchRegistries
		}
	}
	prefixes := make([]string, 0, len(byPrefix))
	for p := range byPrefix {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, p := range prefixes {
		n.Registries = append(n.Registries, byPrefix[p])
	}
	return n
}

// find returns the entry with the longest matching prefix for ref (a
// repository name or full reference), or nil, as the runtime's FindRegistry.
func (n *NodeRegistries) find(ref string) *Registry {
	var best *Registry
	bestLen := 0
	for i := range n.Registries {
		r := &n.Registries[i]
		p := r.effectivePrefix()
		if refMatchingPrefix(ref, p) != -1 && len(p) > bestLen {
			best, bestLen = r, len(p)
		}
	}
	return best
}
