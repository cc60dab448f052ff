package catalog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/blang/semver/v4"
	"go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// The schemas of file-based catalogs this package understands; any other
// schema is carried through verbatim.
const (
	SchemaPackage      = "olm.package"
	SchemaChannel      = "olm.channel"
	SchemaBundle       = "olm.bundle"
	SchemaDeprecations = "olm.deprecations"

	PropPackage         = "olm.package"
	PropPackageRequired = "olm.package.required"
	PropGVK             = "olm.gvk"
	PropGVKRequired     = "olm.gvk.required"
	PropBundleObject    = "olm.bundle.object"
	PropCSVMetadata     = "olm.csv.metadata"
)

// ErrNoConfigs is returned when a catalog holds no FBC objects at all.
var ErrNoConfigs = errors.New("no file-based catalog configs")

// Meta is one FBC object as read: its identifying fields and its whole
// JSON, so a kept object is written back exactly.
type Meta struct {
	Schema  string
	Package string
	Name    string
	// Raw is the object's JSON (YAML input converted), compacted.
	Raw json.RawMessage
	// Source is "file#index" (0-based object index), for messages.
	Source string
}

// Config is a parsed catalog: its packages by name, plus objects that
// belong to no package.
type Config struct {
	Packages map[string]*Package
	// Global holds objects with neither a package nor an olm.package
	// schema; they are always kept.
	Global []Meta
}

// Package is an olm.package and everything that belongs to it.
type Package struct {
	Name           string
	DefaultChannel string
	Meta           Meta
	Channels       map[string]*Channel
	Bundles        map[string]*Bundle
	// Others are the package's objects of other schemas, in input order.
	Others []Meta
}

// Channel is an olm.channel.
type Channel struct {
	Name    string
	Package string
	Meta    Meta
	Entries []Entry
}

// Entry is one olm.channel entry; Raw is kept so that unknown fields
// survive.
type Entry struct {
	Name      string   `json:"name"`
	Replaces  string   `json:"replaces,omitempty"`
	Skips     []string `json:"skips,omitempty"`
	SkipRange string   `json:"skipRange,omitempty"`
	Raw       json.RawMessage
}

// Bundle is an olm.bundle with the properties the filter reads.
type Bundle struct {
	Name          string
	Package       string
	Image         string
	Version       semver.Version
	Meta          Meta
	Properties    []Property
	RelatedImages []RelatedImage
	// Requires are the olm.package.required properties.
	Requires []PackageRequirement
	// Provides and RequiresGVK are the olm.gvk and olm.gvk.required ones.
	Provides    []GVK
	RequiresGVK []GVK
}

// Property is one bundle property, its value kept as JSON.
type Property struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// RelatedImage is an image a bundle's operator uses.
type RelatedImage struct {
	Name  string `json:"name,omitempty"`
	Image string `json:"image"`
}

// PackageRequirement is an olm.package.required property.
type PackageRequirement struct {
	PackageName  string `json:"packageName"`
	VersionRange string `json:"versionRange"`
	rng          semver.Range
}

// GVK is an API group, version and kind.
type GVK struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

func (g GVK) String() string { return g.Group + "/" + g.Version + ", Kind=" + g.Kind }

// ParseStream reads the FBC objects of one file: a stream of JSON objects,
// or YAML documents separated by "---". name is used in messages.
func ParseStream(name string, r io.Reader) ([]Meta, error) {
	br := bufio.NewReader(r)
	first, err := firstNonSpace(br)
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var out []Meta
	add := func(raw []byte) error {
		m, err := newMeta(raw)
		if err != nil {
			return fmt.Errorf("%s#%d: %w", name, len(out), err)
		}
		m.Source = fmt.Sprintf("%s#%d", name, len(out))
		out = append(out, m)
		return nil
	}
	if first == '{' {
		dec := json.NewDecoder(br)
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err == io.EOF {
				return out, nil
			} else if err != nil {
				return nil, fmt.Errorf("%s#%d: %w", name, len(out), err)
			}
			if err := add(raw); err != nil {
				return nil, err
			}
		}
	}
	// YAML: documents are split by yaml.v3 and each converted to JSON the
	// way opm's decoder does (sigs.k8s.io/yaml, YAML 1.1 scalars), so a
	// document means here what it means to opm.
	dec := yaml.NewDecoder(br)
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s#%d: %w", name, len(out), err)
		}
		if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
			continue // an empty document
		}
		text, err := yaml.Marshal(&doc)
		if err != nil {
			return nil, fmt.Errorf("%s#%d: %w", name, len(out), err)
		}
		raw, err := sigsyaml.YAMLToJSON(text)
		if err != nil {
			return nil, fmt.Errorf("%s#%d: not representable as JSON: %w", name, len(out), err)
		}
		if raw, err = unescapeHTML(raw); err != nil {
			return nil, fmt.Errorf("%s#%d: %w", name, len(out), err)
		}
		if err := add(raw); err != nil {
			return nil, err
		}
	}
}

// unescapeHTML re-encodes JSON without the \u003c-style escapes of
// encoding/json (numbers kept as written).
func unescapeHTML(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return marshalNoEscape(v)
}

func firstNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b == 0xEF { // a UTF-8 byte order mark
			if p, _ := br.Peek(2); len(p) == 2 && p[0] == 0xBB && p[1] == 0xBF {
				br.Discard(2)
				continue
			}
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			return b, br.UnreadByte()
		}
	}
}

func newMeta(raw []byte) (Meta, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return Meta{}, fmt.Errorf("not a JSON object: %w", err)
	}
	str := func(k string) (string, error) {
		v, ok := probe[k]
		if !ok || string(v) == "null" {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("field %q: want a string, got %s", k, v)
		}
		return s, nil
	}
	var m Meta
	var err error
	if m.Schema, err = str("schema"); err != nil {
		return m, err
	}
	if m.Schema == "" {
		return m, errors.New(`object has no "schema"`)
	}
	if m.Package, err = str("package"); err != nil {
		return m, err
	}
	if m.Name, err = str("name"); err != nil {
		return m, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return m, err
	}
	m.Raw = buf.Bytes()
	return m, nil
}

// Load reads every FBC file below the root of fsys (a configs directory:
// typically <package>/catalog.json or .yaml, in any depth), as opm does:
// every regular file is parsed as JSON or YAML, except the .indexignore
// files and the paths their patterns match.
func Load(fsys fs.FS) (*Config, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files[p] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return LoadFiles(files)
}

// LoadFiles is Load over files given by slash path relative to the configs
// directory.
func LoadFiles(files map[string][]byte) (*Config, error) {
	var ignores []ignoreRule
	for p, b := range files {
		if path.Base(p) == ".indexignore" {
			ignores = append(ignores, parseIgnore(path.Dir(p), b)...)
		}
	}
	var metas []Meta
	err := newTree(files).walk(func(p string, isDir bool, data []byte) error {
		if isDir || path.Base(p) == ".indexignore" || ignored(ignores, p) {
			return nil
		}
		ms, err := ParseStream(p, bytes.NewReader(data))
		if err != nil {
			return err
		}
		metas = append(metas, ms...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return Build(metas)
}

// ignoreRule is one .indexignore pattern (a subset of gitignore: globs on
// the base name, or on the path when the pattern has a slash).
type ignoreRule struct {
	dir, pattern string
}

func parseIgnore(dir string, b []byte) []ignoreRule {
	var out []ignoreRule
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, ignoreRule{dir: dir, pattern: strings.TrimSuffix(line, "/")})
	}
	return out
}

func ignored(rules []ignoreRule, p string) bool {
	for _, r := range rules {
		rel := p
		if r.dir != "." {
			if !strings.HasPrefix(p, r.dir+"/") {
				continue
			}
			rel = strings.TrimPrefix(p, r.dir+"/")
		}
		pat := strings.TrimPrefix(r.pattern, "/")
		if strings.Contains(pat, "/") {
			if ok, _ := path.Match(pat, rel); ok {
				return true
			}
			continue
		}
		for _, seg := range strings.Split(rel, "/") {
			if ok, _ := path.Match(pat, seg); ok {
				return true
			}
		}
	}
	return false
}

// Build assembles parsed objects into a Config and checks what the filter
// relies on: unique names, channels and bundles of known packages, every
// bundle with exactly one olm.package property (its version), every
// channel entry backed by a bundle.
func Build(metas []Meta) (*Config, error) {
	if len(metas) == 0 {
		return nil, ErrNoConfigs
	}
	c := &Config{Packages: map[string]*Package{}}
	var errs []error
	var channels []Meta
	var bundles []Meta
	var others []Meta
	for _, m := range metas {
		switch m.Schema {
		case SchemaPackage:
			if m.Name == "" {
				errs = append(errs, fmt.Errorf("%s: olm.package has no name", m.Source))
				continue
			}
			if p, dup := c.Packages[m.Name]; dup {
				errs = append(errs, fmt.Errorf("%s: package %q is defined twice (also at %s)", m.Source, m.Name, p.Meta.Source))
				continue
			}
			var v struct {
				DefaultChannel string `json:"defaultChannel"`
			}
			if err := json.Unmarshal(m.Raw, &v); err != nil {
				errs = append(errs, fmt.Errorf("%s: package %q: %v", m.Source, m.Name, err))
				continue
			}
			c.Packages[m.Name] = &Package{Name: m.Name, DefaultChannel: v.DefaultChannel, Meta: m,
				Channels: map[string]*Channel{}, Bundles: map[string]*Bundle{}}
		case SchemaChannel:
			channels = append(channels, m)
		case SchemaBundle:
			bundles = append(bundles, m)
		default:
			others = append(others, m)
		}
	}
	for _, m := range channels {
		p, ok := c.Packages[m.Package]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: channel %q belongs to unknown package %q", m.Source, m.Name, m.Package))
			continue
		}
		ch, err := parseChannel(m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := p.Channels[ch.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: package %q has channel %q twice", m.Source, p.Name, ch.Name))
			continue
		}
		p.Channels[ch.Name] = ch
	}
	for _, m := range bundles {
		p, ok := c.Packages[m.Package]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: bundle %q belongs to unknown package %q", m.Source, m.Name, m.Package))
			continue
		}
		b, err := parseBundle(m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := p.Bundles[b.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: package %q has bundle %q twice", m.Source, p.Name, b.Name))
			continue
		}
		p.Bundles[b.Name] = b
	}
	for _, m := range others {
		pkg := m.Package
		if p, ok := c.Packages[pkg]; ok {
			p.Others = append(p.Others, m)
			continue
		}
		if pkg != "" {
			errs = append(errs, fmt.Errorf("%s: %s object belongs to unknown package %q", m.Source, m.Schema, pkg))
			continue
		}
		c.Global = append(c.Global, m)
	}
	for _, p := range c.Packages {
		for _, ch := range p.sortedChannels() {
			for _, e := range ch.Entries {
				if _, ok := p.Bundles[e.Name]; !ok {
					errs = append(errs, fmt.Errorf("%s: package %q channel %q: entry %q has no olm.bundle", ch.Meta.Source, p.Name, ch.Name, e.Name))
				}
			}
		}
	}
	if len(errs) > 0 {
		sortErrs(errs)
		return nil, errors.Join(errs...)
	}
	if len(c.Packages) == 0 {
		return nil, fmt.Errorf("%w: no olm.package object", ErrNoConfigs)
	}
	return c, nil
}

func sortErrs(errs []error) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
}

func parseChannel(m Meta) (*Channel, error) {
	var v struct {
		Entries []json.RawMessage `json:"entries"`
	}
	if err := json.Unmarshal(m.Raw, &v); err != nil {
		return nil, fmt.Errorf("%s: channel %q: %v", m.Source, m.Name, err)
	}
	if m.Name == "" {
		return nil, fmt.Errorf("%s: a channel of package %q has no name", m.Source, m.Package)
	}
	ch := &Channel{Name: m.Name, Package: m.Package, Meta: m}
	seen := map[string]bool{}
	for i, raw := range v.Entries {
		var e Entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("%s: channel %q entry %d: %v", m.Source, m.Name, i, err)
		}
		if e.Name == "" {
			return nil, fmt.Errorf("%s: channel %q entry %d has no name", m.Source, m.Name, i)
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("%s: channel %q lists entry %q twice", m.Source, m.Name, e.Name)
		}
		seen[e.Name] = true
		e.Raw = raw
		ch.Entries = append(ch.Entries, e)
	}
	return ch, nil
}

func parseBundle(m Meta) (*Bundle, error) {
	var v struct {
		Image         string         `json:"image"`
		Properties    []Property     `json:"properties"`
		RelatedImages []RelatedImage `json:"relatedImages"`
	}
	if err := json.Unmarshal(m.Raw, &v); err != nil {
		return nil, fmt.Errorf("%s: bundle %q: %v", m.Source, m.Name, err)
	}
	if m.Name == "" {
		return nil, fmt.Errorf("%s: a bundle of package %q has no name", m.Source, m.Package)
	}
	b := &Bundle{Name: m.Name, Package: m.Package, Image: v.Image, Meta: m, Properties: v.Properties, RelatedImages: v.RelatedImages}
	where := fmt.Sprintf("%s: bundle %q", m.Source, m.Name)
	npkg := 0
	for i, p := range v.Properties {
		switch p.Type {
		case PropPackage:
			var pv struct {
				PackageName string `json:"packageName"`
				Version     string `json:"version"`
			}
			if err := json.Unmarshal(p.Value, &pv); err != nil {
				return nil, fmt.Errorf("%s: property %d (%s): %v", where, i, p.Type, err)
			}
			if pv.PackageName != m.Package {
				return nil, fmt.Errorf("%s: olm.package property names package %q, the bundle belongs to %q", where, pv.PackageName, m.Package)
			}
			ver, err := semver.Parse(pv.Version)
			if err != nil {
				return nil, fmt.Errorf("%s: version %q: %v", where, pv.Version, err)
			}
			b.Version = ver
			npkg++
		case PropPackageRequired:
			var r PackageRequirement
			if err := json.Unmarshal(p.Value, &r); err != nil {
				return nil, fmt.Errorf("%s: property %d (%s): %v", where, i, p.Type, err)
			}
			rng, err := semver.ParseRange(r.VersionRange)
			if err != nil {
				return nil, fmt.Errorf("%s: olm.package.required %s versionRange %q: %v", where, r.PackageName, r.VersionRange, err)
			}
			r.rng = rng
			b.Requires = append(b.Requires, r)
		case PropGVK, PropGVKRequired:
			var g GVK
			if err := json.Unmarshal(p.Value, &g); err != nil {
				return nil, fmt.Errorf("%s: property %d (%s): %v", where, i, p.Type, err)
			}
			if p.Type == PropGVK {
				b.Provides = append(b.Provides, g)
			} else {
				b.RequiresGVK = append(b.RequiresGVK, g)
			}
		}
	}
	if npkg != 1 {
		return nil, fmt.Errorf("%s: want exactly one olm.package property (name and version), found %d", where, npkg)
	}
	return b, nil
}

func (p *Package) sortedChannels() []*Channel {
	out := make([]*Channel, 0, len(p.Channels))
	for _, ch := range p.Channels {
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (c *Config) sortedPackages() []*Package {
	out := make([]*Package, 0, len(c.Packages))
	for _, p := range c.Packages {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Files renders the config as a configs directory: one <package>/
// catalog.json per package (objects one a line: the package, its channels
// and bundles by name, then its other objects in input order) and, when
// there are objects of no package, _global/catalog.json. Objects are
// written as read, so the output is deterministic and faithful.
func (c *Config) Files() map[string][]byte {
	out := map[string][]byte{}
	for _, p := range c.sortedPackages() {
		var buf bytes.Buffer
		line := func(raw []byte) {
			buf.Write(raw)
			buf.WriteByte('\n')
		}
		line(p.Meta.Raw)
		for _, ch := range p.sortedChannels() {
			line(ch.Meta.Raw)
		}
		names := make([]string, 0, len(p.Bundles))
		for n := range p.Bundles {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			line(p.Bundles[n].Meta.Raw)
		}
		for _, m := range p.Others {
			line(m.Raw)
		}
		out[p.Name+"/catalog.json"] = buf.Bytes()
	}
	if len(c.Global) > 0 {
		var buf bytes.Buffer
		for _, m := range c.Global {
			buf.Write(m.Raw)
			buf.WriteByte('\n')
		}
		out["_global/catalog.json"] = buf.Bytes()
	}
	return out
}

// withField returns raw (a JSON object) with field set to value; the other
// fields keep their JSON, keys come out sorted.
func withField(raw json.RawMessage, field string, value any) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	v, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	obj[field] = v
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// marshalNoEscape is json.Marshal without HTML escaping ("<" stays "<").
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
