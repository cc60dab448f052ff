package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/blang/semver/v4"
)

// Decision is one line of the filter's log: what was kept, added or
// dropped, and why. Bundle is empty for a decision about a whole channel
// or package.
type Decision struct {
	// Action is "keep", "add", "drop" or "default-channel".
	Action  string `json:"action"`
	Package string `json:"package,omitempty"`
	Channel string `json:"channel,omitempty"`
	Bundle  string `json:"bundle,omitempty"`
	Reason  string `json:"reason"`
}

func (d Decision) String() string {
	if d.Package == "" {
		return d.Action + ": " + d.Reason
	}
	obj := d.Package
	if d.Channel != "" {
		obj += "/" + d.Channel
	}
	if d.Bundle != "" {
		return fmt.Sprintf("%s %s: %s (%s)", d.Action, d.Bundle, d.Reason, obj)
	}
	return fmt.Sprintf("%s %s: %s", d.Action, obj, d.Reason)
}

// Image is an image the filtered catalog refers to, to be mirrored by
// digest with all its platforms.
type Image struct {
	// Ref is the reference as the catalog spells it.
	Ref string `json:"ref"`
	// Kind is "bundle" or "related".
	Kind string `json:"kind"`
	// Package and Bundle say which bundle refers to it (the first one, by
	// name, when several do); Name is the relatedImages name.
	Package string `json:"package"`
	Bundle  string `json:"bundle"`
	Name    string `json:"name,omitempty"`
}

// Result is a filtered catalog.
type Result struct {
	// Config is the filtered catalog; Config.Files() is its configs dir.
	Config *Config
	// Decisions is the log, in the order the decisions were taken.
	Decisions []Decision
	// Images lists every bundle image and related image of the kept
	// bundles, each reference once, sorted by reference.
	Images []Image
}

// selection is the set of entries kept per package and channel.
type selection map[string]map[string]map[string]bool

func (s selection) add(pkg, ch, bundle string) bool {
	if s[pkg] == nil {
		s[pkg] = map[string]map[string]bool{}
	}
	if s[pkg][ch] == nil {
		s[pkg][ch] = map[string]bool{}
	}
	if s[pkg][ch][bundle] {
		return false
	}
	s[pkg][ch][bundle] = true
	return true
}

func (s selection) has(pkg, bundle string) bool {
	for _, bs := range s[pkg] {
		if bs[bundle] {
			return true
		}
	}
	return false
}

type filterRun struct {
	c    *Config
	sel  selection
	log  []Decision
	errs []error
}

func (r *filterRun) note(action, pkg, ch, bundle, reason string) {
	r.log = append(r.log, Decision{Action: action, Package: pkg, Channel: ch, Bundle: bundle, Reason: reason})
}

func (r *filterRun) fail(format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf(format, args...))
}

// Apply filters the catalog as f asks. It returns every problem at once:
// unknown packages and channels, version ranges no bundle satisfies,
// channels left with more than one head, default channels filtered out,
// and requirements the catalog cannot meet.
func (c *Config) Apply(f Filter) (*Result, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	r := &filterRun{c: c, sel: selection{}}
	named := map[string]bool{}
	if len(f.Packages) == 0 {
		for _, p := range c.sortedPackages() {
			for _, ch := range p.sortedChannels() {
				r.selectChannel(p, ch, f.Full, nil, "")
			}
		}
	}
	for i, pf := range f.Packages {
		p, ok := c.Packages[pf.Name]
		if !ok {
			r.fail("packages[%d]: package %q is not in the catalog (it has %s)", i, pf.Name, listSome(c.packageNames()))
			continue
		}
		named[p.Name] = true
		pkgRange, _ := parseRange("", pf.MinVersion, pf.MaxVersion)
		if len(pf.Channels) == 0 {
			kept := 0
			for _, ch := range p.sortedChannels() {
				if r.selectChannel(p, ch, f.Full, pkgRange, "") {
					kept++
				}
			}
			if kept == 0 && pkgRange != nil {
				r.fail("packages[%d]: package %q has no bundle in the range %s (its versions: %s)", i, p.Name, pkgRange, listSome(p.versions()))
			}
			continue
		}
		for k, cf := range pf.Channels {
			ch, ok := p.Channels[cf.Name]
			if !ok {
				r.fail("packages[%d].channels[%d]: package %q has no channel %q (it has %s)", i, k, p.Name, cf.Name, listSome(p.channelNames()))
				continue
			}
			rng, _ := parseRange("", cf.MinVersion, cf.MaxVersion)
			if rng == nil {
				rng = pkgRange
			}
			if !r.selectChannel(p, ch, f.Full, rng, "") {
				r.fail("packages[%d].channels[%d]: package %q channel %q has no bundle in the range %s (its versions: %s)", i, k, p.Name, ch.Name, rng, listSome(ch.versions(p)))
			}
		}
	}
	if len(r.errs) > 0 {
		return nil, errors.Join(r.errs...)
	}
	if len(f.Packages) > 0 {
		var rest []string
		for _, n := range c.packageNames() {
			if !named[n] {
				rest = append(rest, n)
			}
		}
		if len(rest) > 0 {
			r.note("drop", "", "", "", fmt.Sprintf("%d packages the filter does not name (unless a dependency brings them back): %s", len(rest), listSome(rest)))
		}
	}
	r.checkHeads("")
	if len(r.errs) > 0 {
		return nil, errors.Join(r.errs...)
	}
	if !f.SkipDependencies {
		r.resolveDependencies()
		r.checkHeads("after adding dependencies: ")
	}
	defaults := r.defaultChannels(f)
	if len(r.errs) > 0 {
		return nil, errors.Join(r.errs...)
	}
	out, err := r.build(defaults)
	if err != nil {
		return nil, err
	}
	return &Result{Config: out, Decisions: r.log, Images: images(out)}, nil
}

// selectChannel keeps, in channel ch, every entry (full), the entries in
// rng, or else the head. It reports whether anything was kept.
func (r *filterRun) selectChannel(p *Package, ch *Channel, full bool, rng *versionRange, why string) bool {
	switch {
	case full:
		for _, e := range ch.Entries {
			r.sel.add(p.Name, ch.Name, e.Name)
		}
		r.note("keep", p.Name, ch.Name, "", fmt.Sprintf("full: all %d bundles", len(ch.Entries)))
		return len(ch.Entries) > 0
	case rng != nil:
		n := 0
		for _, e := range ch.Entries {
			b := p.Bundles[e.Name]
			if rng.contains(b.Version) {
				r.sel.add(p.Name, ch.Name, e.Name)
				r.note("keep", p.Name, ch.Name, e.Name, fmt.Sprintf("version %s is in %s", b.Version, rng))
				n++
			}
		}
		if n == 0 {
			r.note("drop", p.Name, ch.Name, "", fmt.Sprintf("no bundle in %s", rng))
		}
		return n > 0
	default:
		heads := ch.heads(nil)
		if len(heads) != 1 {
			r.fail("package %q channel %q: cannot pick its head, the catalog's own graph has %s", p.Name, ch.Name, describeHeads(heads))
			return true
		}
		r.sel.add(p.Name, ch.Name, heads[0])
		r.note("keep", p.Name, ch.Name, heads[0], "channel head")
		return true
	}
}

// heads returns the entries (of keep, or all when keep is nil) that no
// other such entry replaces or skips, sorted.
func (ch *Channel) heads(keep map[string]bool) []string {
	incoming := map[string]bool{}
	for _, e := range ch.Entries {
		if keep != nil && !keep[e.Name] {
			continue
		}
		if e.Replaces != "" {
			incoming[e.Replaces] = true
		}
		for _, s := range e.Skips {
			incoming[s] = true
		}
	}
	var out []string
	for _, e := range ch.Entries {
		if (keep == nil || keep[e.Name]) && !incoming[e.Name] {
			out = append(out, e.Name)
		}
	}
	sort.Strings(out)
	return out
}

func describeHeads(heads []string) string {
	if len(heads) == 0 {
		return "no head (a cycle)"
	}
	return fmt.Sprintf("%d heads (%s)", len(heads), strings.Join(heads, ", "))
}

func (r *filterRun) checkHeads(when string) {
	for _, p := range r.c.sortedPackages() {
		for _, ch := range p.sortedChannels() {
			keep := r.sel[p.Name][ch.Name]
			if len(keep) == 0 {
				continue
			}
			if heads := ch.heads(keep); len(heads) != 1 {
				r.fail("%spackage %q channel %q: the filter leaves %s; OLM needs exactly one: widen the version range or name fewer bundles", when, p.Name, ch.Name, describeHeads(heads))
			}
		}
	}
}

// resolveDependencies adds, until nothing changes, a bundle for every
// olm.package.required and olm.gvk.required property of a kept bundle
// that no kept bundle satisfies.
func (r *filterRun) resolveDependencies() {
	for changed := true; changed; {
		changed = false
		for _, p := range r.c.sortedPackages() {
			for _, b := range p.sortedBundles() {
				if !r.sel.has(p.Name, b.Name) {
					continue
				}
				for _, req := range b.Requires {
					if r.satisfiedPackage(req) {
						continue
					}
					why := fmt.Sprintf("required by %s (olm.package.required %s %s)", b.Name, req.PackageName, req.VersionRange)
					dp, ok := r.c.Packages[req.PackageName]
					if !ok {
						r.fail("bundle %q of package %q requires package %q (%s), which is not in the catalog; set skipDependencies to mirror without it", b.Name, p.Name, req.PackageName, req.VersionRange)
						continue
					}
					cand := dp.best(func(x *Bundle) bool { return req.rng(x.Version) })
					if cand == nil {
						r.fail("bundle %q of package %q requires package %q %s, but no bundle of it matches (its versions: %s)", b.Name, p.Name, req.PackageName, req.VersionRange, listSome(dp.versions()))
						continue
					}
					r.addDependency(dp, cand, why)
					changed = true
				}
				for _, g := range b.RequiresGVK {
					if r.satisfiedGVK(g) {
						continue
					}
					why := fmt.Sprintf("required by %s (olm.gvk.required %s)", b.Name, g)
					best, bestPkg := r.providerOf(g)
					if best == nil {
						r.fail("bundle %q of package %q requires API %s, which no bundle in the catalog provides; set skipDependencies to mirror without it", b.Name, p.Name, g)
						continue
					}
					r.addDependency(bestPkg, best, why)
					changed = true
				}
			}
		}
		if len(r.errs) > 0 {
			return
		}
	}
}

// providerOf picks the bundle that provides g as OLM's catalog query
// does: the default channel head of the first package, by name, whose
// head provides it; failing that, the highest version providing it in the
// first such package.
func (r *filterRun) providerOf(g GVK) (*Bundle, *Package) {
	for _, p := range r.c.sortedPackages() {
		if dc := p.Channels[p.DefaultChannel]; dc != nil {
			if heads := dc.heads(nil); len(heads) == 1 && p.Bundles[heads[0]].provides(g) {
				return p.Bundles[heads[0]], p
			}
		}
	}
	for _, p := range r.c.sortedPackages() {
		if b := p.best(func(x *Bundle) bool { return x.provides(g) }); b != nil {
			return b, p
		}
	}
	return nil, nil
}

func (r *filterRun) satisfiedPackage(req PackageRequirement) bool {
	p := r.c.Packages[req.PackageName]
	if p == nil {
		return false
	}
	for _, b := range p.Bundles {
		if r.sel.has(p.Name, b.Name) && req.rng(b.Version) {
			return true
		}
	}
	return false
}

func (r *filterRun) satisfiedGVK(g GVK) bool {
	for _, p := range r.c.Packages {
		for _, b := range p.Bundles {
			if r.sel.has(p.Name, b.Name) && b.provides(g) {
				return true
			}
		}
	}
	return false
}

func (b *Bundle) provides(g GVK) bool {
	for _, x := range b.Provides {
		if x == g {
			return true
		}
	}
	return false
}

// best returns the highest version bundle that ok accepts, preferring the
// default channel's bundles.
func (p *Package) best(ok func(*Bundle) bool) *Bundle {
	pick := func(inDefault bool) *Bundle {
		var best *Bundle
		for _, b := range p.sortedBundles() {
			if !ok(b) || (inDefault && !p.inChannel(p.DefaultChannel, b.Name)) {
				continue
			}
			if best == nil || b.Version.GT(best.Version) {
				best = b
			}
		}
		return best
	}
	if b := pick(true); b != nil {
		return b
	}
	return pick(false)
}

func (p *Package) inChannel(ch, bundle string) bool {
	c := p.Channels[ch]
	if c == nil {
		return false
	}
	for _, e := range c.Entries {
		if e.Name == bundle {
			return true
		}
	}
	return false
}

// addDependency keeps b in the channel it is best placed in (the default
// channel when it is there), with the bundles between it and what that
// channel already keeps so the channel keeps one head, and the default
// channel's head when the package had nothing kept yet.
func (r *filterRun) addDependency(p *Package, b *Bundle, why string) {
	ch := p.Channels[p.DefaultChannel]
	if ch == nil || !p.inChannel(ch.Name, b.Name) {
		for _, c := range p.sortedChannels() {
			if p.inChannel(c.Name, b.Name) {
				ch = c
				break
			}
		}
	}
	if ch == nil {
		r.fail("bundle %q of package %q is in no channel", b.Name, p.Name)
		return
	}
	want := map[string]bool{b.Name: true}
	for n := range r.sel[p.Name][ch.Name] {
		want[n] = true
	}
	keep := ch.cover(want)
	r.sel.add(p.Name, ch.Name, b.Name)
	r.note("add", p.Name, ch.Name, b.Name, why)
	for _, e := range ch.Entries {
		if keep[e.Name] && r.sel.add(p.Name, ch.Name, e.Name) {
			r.note("add", p.Name, ch.Name, e.Name, fmt.Sprintf("keeps channel %q one upgrade graph between %s and what it already keeps", ch.Name, b.Name))
		}
	}
	if dc := p.Channels[p.DefaultChannel]; dc != nil && len(r.sel[p.Name][dc.Name]) == 0 {
		if heads := dc.heads(nil); len(heads) == 1 {
			r.sel.add(p.Name, dc.Name, heads[0])
			r.note("add", p.Name, dc.Name, heads[0], fmt.Sprintf("head of the default channel, so package %q stays valid", p.Name))
		}
	}
}

// cover returns the smallest segment of the channel's replaces chain (from
// its head) that, with the entries those skip, reaches every entry in
// want, plus want itself. Keeping it gives one head whenever want is
// reachable from the head at all.
func (ch *Channel) cover(want map[string]bool) map[string]bool {
	keep := map[string]bool{}
	for n := range want {
		keep[n] = true
	}
	heads := ch.heads(nil)
	if len(heads) != 1 {
		return keep
	}
	byName := map[string]*Entry{}
	for i := range ch.Entries {
		byName[ch.Entries[i].Name] = &ch.Entries[i]
	}
	var chain []*Entry
	seen := map[string]bool{}
	for e := byName[heads[0]]; e != nil && !seen[e.Name]; e = byName[e.Replaces] {
		seen[e.Name] = true
		chain = append(chain, e)
	}
	// reach[i]: the wanted entries that chain[i:] and their skips reach.
	reach := make([]int, len(chain)+1)
	counted := map[string]bool{}
	for i := len(chain) - 1; i >= 0; i-- {
		reach[i] = reach[i+1]
		for _, n := range append([]string{chain[i].Name}, chain[i].Skips...) {
			if want[n] && !counted[n] {
				counted[n] = true
				reach[i]++
			}
		}
	}
	top := 0
	for i := range chain {
		if reach[i] == reach[0] {
			top = i
		}
	}
	for i := top; i < len(chain) && reach[i] > 0; i++ {
		keep[chain[i].Name] = true
	}
	return keep
}

// defaultChannels works out each kept package's default channel.
func (r *filterRun) defaultChannels(f Filter) map[string]string {
	override := map[string]string{}
	index := map[string]int{}
	for i, pf := range f.Packages {
		override[pf.Name] = pf.DefaultChannel
		index[pf.Name] = i
	}
	out := map[string]string{}
	for _, p := range r.c.sortedPackages() {
		kept := r.sel[p.Name]
		if len(kept) == 0 {
			continue
		}
		var names []string
		for n := range kept {
			names = append(names, n)
		}
		sort.Strings(names)
		if o := override[p.Name]; o != "" {
			if kept[o] == nil {
				r.fail("packages[%d].defaultChannel: package %q: channel %q is not among the kept channels (%s)", index[p.Name], p.Name, o, strings.Join(names, ", "))
				continue
			}
			out[p.Name] = o
			if o != p.DefaultChannel {
				r.note("default-channel", p.Name, o, "", fmt.Sprintf("defaultChannel set by the filter (the catalog's is %q)", p.DefaultChannel))
			}
			continue
		}
		if kept[p.DefaultChannel] == nil {
			if i, ok := index[p.Name]; ok {
				r.fail("packages[%d]: package %q: its default channel %q is filtered out; set packages[%d].defaultChannel to one of the kept channels (%s)", i, p.Name, p.DefaultChannel, i, strings.Join(names, ", "))
			} else {
				r.fail("package %q: its default channel %q is filtered out; name the package with a defaultChannel among the kept channels (%s)", p.Name, p.DefaultChannel, strings.Join(names, ", "))
			}
			continue
		}
		out[p.Name] = p.DefaultChannel
	}
	return out
}

// build writes the selection out as a new Config.
func (r *filterRun) build(defaults map[string]string) (*Config, error) {
	out := &Config{Packages: map[string]*Package{}, Global: r.c.Global}
	for _, p := range r.c.sortedPackages() {
		kept := r.sel[p.Name]
		if len(kept) == 0 {
			continue
		}
		np := &Package{Name: p.Name, DefaultChannel: defaults[p.Name], Meta: p.Meta, Channels: map[string]*Channel{}, Bundles: map[string]*Bundle{}}
		if np.DefaultChannel != p.DefaultChannel {
			raw, err := withField(p.Meta.Raw, "defaultChannel", np.DefaultChannel)
			if err != nil {
				return nil, fmt.Errorf("package %q: %w", p.Name, err)
			}
			np.Meta.Raw = raw
		}
		for _, ch := range p.sortedChannels() {
			keep := kept[ch.Name]
			if len(keep) == 0 {
				continue
			}
			nc := &Channel{Name: ch.Name, Package: ch.Package, Meta: ch.Meta}
			var raws []json.RawMessage
			for _, e := range ch.Entries {
				if keep[e.Name] {
					nc.Entries = append(nc.Entries, e)
					raws = append(raws, e.Raw)
					np.Bundles[e.Name] = p.Bundles[e.Name]
				}
			}
			if len(nc.Entries) != len(ch.Entries) {
				raw, err := withField(ch.Meta.Raw, "entries", raws)
				if err != nil {
					return nil, fmt.Errorf("package %q channel %q: %w", p.Name, ch.Name, err)
				}
				nc.Meta.Raw = raw
			}
			np.Channels[ch.Name] = nc
		}
		for _, m := range p.Others {
			if m.Schema != SchemaDeprecations {
				np.Others = append(np.Others, m)
				continue
			}
			nm, ok, err := pruneDeprecations(m, np)
			if err != nil {
				return nil, err
			}
			if ok {
				np.Others = append(np.Others, nm)
			} else {
				r.note("drop", p.Name, "", "", "olm.deprecations: none of its entries concerns a kept object")
			}
		}
		out.Packages[p.Name] = np
	}
	return out, nil
}

// pruneDeprecations keeps the olm.deprecations entries that concern kept
// bundles and channels (and the package itself); opm refuses a
// deprecation of an object that is not in the catalog.
func pruneDeprecations(m Meta, p *Package) (Meta, bool, error) {
	var v struct {
		Entries []json.RawMessage `json:"entries"`
	}
	if err := json.Unmarshal(m.Raw, &v); err != nil {
		return m, false, fmt.Errorf("%s: olm.deprecations: %v", m.Source, err)
	}
	var keep []json.RawMessage
	for _, raw := range v.Entries {
		var e struct {
			Reference struct {
				Schema string `json:"schema"`
				Name   string `json:"name"`
			} `json:"reference"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return m, false, fmt.Errorf("%s: olm.deprecations entry: %v", m.Source, err)
		}
		switch e.Reference.Schema {
		case SchemaBundle:
			if p.Bundles[e.Reference.Name] == nil {
				continue
			}
		case SchemaChannel:
			if p.Channels[e.Reference.Name] == nil {
				continue
			}
		}
		keep = append(keep, raw)
	}
	if len(keep) == 0 {
		return m, false, nil
	}
	if len(keep) == len(v.Entries) {
		return m, true, nil
	}
	raw, err := withField(m.Raw, "entries", keep)
	if err != nil {
		return m, false, err
	}
	m.Raw = raw
	return m, true, nil
}

func images(c *Config) []Image {
	seen := map[string]bool{}
	var out []Image
	for _, p := range c.sortedPackages() {
		for _, b := range p.sortedBundles() {
			if b.Image != "" && !seen[b.Image] {
				seen[b.Image] = true
				out = append(out, Image{Ref: b.Image, Kind: "bundle", Package: p.Name, Bundle: b.Name})
			}
			for _, ri := range b.RelatedImages {
				if ri.Image != "" && !seen[ri.Image] {
					seen[ri.Image] = true
					out = append(out, Image{Ref: ri.Image, Kind: "related", Package: p.Name, Bundle: b.Name, Name: ri.Name})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out
}

func (p *Package) sortedBundles() []*Bundle {
	out := make([]*Bundle, 0, len(p.Bundles))
	for _, b := range p.Bundles {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (c *Config) packageNames() []string {
	var out []string
	for _, p := range c.sortedPackages() {
		out = append(out, p.Name)
	}
	return out
}

func (p *Package) channelNames() []string {
	var out []string
	for _, ch := range p.sortedChannels() {
		out = append(out, ch.Name)
	}
	return out
}

func (p *Package) versions() []string {
	var out []string
	for _, b := range p.sortedBundles() {
		out = append(out, b.Version.String())
	}
	return sortVersions(out)
}

func (ch *Channel) versions(p *Package) []string {
	var out []string
	for _, e := range ch.Entries {
		out = append(out, p.Bundles[e.Name].Version.String())
	}
	return sortVersions(out)
}

func sortVersions(vs []string) []string {
	sort.SliceStable(vs, func(i, j int) bool {
		a, errA := semver.Parse(vs[i])
		b, errB := semver.Parse(vs[j])
		if errA != nil || errB != nil {
			return vs[i] < vs[j]
		}
		return a.LT(b)
	})
	return vs
}

// listSome renders up to ten names.
func listSome(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(", … %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}
