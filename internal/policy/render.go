package policy

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/distribution/reference"
)

// The files a render writes, relative to the node root.
const (
	RegistriesConfPath = "etc/containers/registries.conf"
	SearchDropInPath   = "etc/containers/registries.conf.d/01-image-searchRegistries.conf"
	PolicyJSONPath     = "etc/containers/policy.json"
	DockerCertsDir     = "etc/docker/certs.d"
	ContainersCertsDir = "etc/containers/certs.d"
)

//go:embed base/registries.conf
var stockRegistriesConf []byte

//go:embed base/policy.json
var stockPolicyJSON []byte

// Base is the node's stock files a render starts from.
type Base struct {
	RegistriesConf []byte
	PolicyJSON     []byte
}

// StockBase returns the node's stock registries.conf and policy.json, as the
// cluster ships them to every pool.
func StockBase() Base {
	return Base{RegistriesConf: append([]byte(nil), stockRegistriesConf...), PolicyJSON: append([]byte(nil), stockPolicyJSON...)}
}

// Rendered is the result of a render: every file of the node root, by path
// relative to it, plus warnings for the operator.
type Rendered struct {
	Files    map[string][]byte
	Warnings []string
}

// Render turns valid inputs into the files a node reads. It refuses inputs
// with any problem (a *ValidationError listing them all).
func Render(in *Inputs, base Base) (*Rendered, error) {
	if ps := Validate(in); len(ps) > 0 {
		return nil, &ValidationError{Problems: ps}
	}
	baseConf, err := ParseRegistriesConf("base registries.conf", base.RegistriesConf)
	if err != nil {
		return nil, err
	}
	basePolicy, err := ParsePolicyJSON("base policy.json", base.PolicyJSON)
	if err != nil {
		return nil, err
	}
	out := &Rendered{Files: map[string][]byte{}}
	warn := func(format string, args ...any) { out.Warnings = append(out.Warnings, fmt.Sprintf(format, args...)) }
	for _, s := range in.Ignored {
		warn("%s", s)
	}

	var rs RegistrySources
	var img ImageSpec
	if in.Image != nil {
		img = in.Image.Spec
		rs = img.RegistrySources
	}
	entries := mirrorEntries(in)
	digestSets := mergeMirrorSets(entries, "digest")
	tagSets := mergeMirrorSets(entries, "tag")

	lists, err := blockedAndAllowed(in, rs, digestSets, warn)
	if err != nil {
		return nil, err
	}

	// registries.conf: regenerated only when something feeds it.
	var rendered *RegistriesConf
	if len(rs.InsecureRegistries) > 0 || len(lists.registriesBlocked) > 0 || len(in.ICSPs)+len(in.IDMSs)+len(in.ITMSs) > 0 {
		conf := *baseConf
		rendered = &conf
		conf.Registries = append([]Registry(nil), baseConf.Registries...)
		editRegistries(&conf, rs.InsecureRegistries, lists.registriesBlocked, digestSets, tagSets)
		if err := conf.check(); err != nil {
			return nil, fmt.Errorf("rendered registries.conf would not load: %w", err)
		}
		out.Files[RegistriesConfPath] = conf.Encode()
	} else {
		out.Files[RegistriesConfPath] = base.RegistriesConf
	}

	if len(rs.ContainerRuntimeSearchRegistries) > 0 {
		drop := RegistriesConf{UnqualifiedSearchRegistries: rs.ContainerRuntimeSearchRegistries}
		out.Files[SearchDropInPath] = drop.Encode()
	}

	cluster, namespaces, dropped := signatureScopes(in)
	for _, d := range dropped {
		warn("%s", d)
	}
	if len(lists.policyBlocked) > 0 || len(lists.allowed) > 0 || len(cluster) > 0 {
		pol := basePolicy.clone()
		pol.apply(lists.allowed, lists.policyBlocked, len(rs.AllowedRegistries) > 0, cluster)
		out.Files[PolicyJSONPath] = pol.Encode()
	} else {
		out.Files[PolicyJSONPath] = base.PolicyJSON
	}
	nsFiles, err := namespacePolicies(out.Files[PolicyJSONPath], namespaces)
	if err != nil {
		return nil, err
	}
	for p, b := range nsFiles {
		out.Files[p] = b
	}
	if len(cluster) > 0 || len(namespaces) > 0 {
		scopes := sortedKeys(cluster)
		for _, ns := range sortedKeys(namespaces) {
			for _, s := range sortedKeys(namespaces[ns]) {
				if !slices.Contains(scopes, s) {
					scopes = append(scopes, s)
				}
			}
		}
		out.Files[SigstoreRegistriesPath] = sigstoreRegistriesD(scopes, rendered)
		warnSignedPayload(in, cluster, rendered, warn)
	}

	for p, b := range renderCAs(in) {
		out.Files[p] = b
	}
	if in.Image != nil && in.Image.Spec.AdditionalTrustedCA.Name != "" {
		if u, _ := trustedCAMaps(in); u == nil {
			warn("ConfigMap %q named by spec.additionalTrustedCA was not among the inputs: no user CAs are written", in.Image.Spec.AdditionalTrustedCA.Name)
		}
	}

	warnAllowedGaps(in, rs, digestSets, tagSets, warn)
	return out, nil
}

// policyLists are the three lists the cluster derives from the Image config
// and the release payload (getValidBlockedAndAllowedRegistries).
type policyLists struct {
	registriesBlocked []string // for registries.conf
	policyBlocked     []string // reject scopes in policy.json
	allowed           []string // insecureAcceptAnything scopes in policy.json
}

// blockedAndAllowed keeps the release payload pullable: a blocked scope that
// covers the payload repository is dropped (with a warning) unless a mirror
// that is not itself blocked serves the payload; with such a mirror the scope
// stays blocked in registries.conf, and the payload repository is allowed in
// policy.json.
func blockedAndAllowed(in *Inputs, rs RegistrySources, digestSets []mergedSet, warn func(string, ...any)) (policyLists, error) {
	var l policyLists
	payloadRepo := ""
	var release reference.Named
	if in.ReleaseImage != "" {
		release, _ = reference.ParseNamed(in.ReleaseImage) // validated
		payloadRepo = release.Name()
	} else if len(rs.BlockedRegistries) > 0 {
		warn("no --release-image given: blocked registries are not checked against the release payload, which the cluster refuses to block")
	}
	payloadAllowed := false
	for _, reg := range rs.BlockedRegistries {
		if payloadRepo == "" || !nestedScope(payloadRepo, reg) {
			l.registriesBlocked = append(l.registriesBlocked, reg)
			l.policyBlocked = append(l.policyBlocked, reg)
			continue
		}
		if !payloadHasUnblockedMirror(release, rs.BlockedRegistries, digestSets) {
			warn("error adding [%q] to blocked registries, cannot block the repository being used by the payload (%s), skipping: it has no mirror that is not blocked", reg, payloadRepo)
			continue
		}
		warn("blocking %q, which holds the release payload %s: the payload is pulled from its mirrors", reg, payloadRepo)
		l.registriesBlocked = append(l.registriesBlocked, reg)
		if reg != payloadRepo {
			l.policyBlocked = append(l.policyBlocked, reg)
		}
		if !payloadAllowed { // Berth lists it once (the cluster appends it per covering scope, then fails on the duplicate)
			l.allowed = append(l.allowed, payloadRepo)
			payloadAllowed = true
		}
	}
	for _, a := range rs.AllowedRegistries {
		if !slices.Contains(l.allowed, a) {
			l.allowed = append(l.allowed, a)
		}
	}
	if len(l.policyBlocked) == 0 && payloadAllowed && len(rs.AllowedRegistries) == 0 {
		warn("only the payload repository %s itself is blocked: the cluster would make every other image on the node rejected by policy.json (default reject); Berth keeps the default insecureAcceptAnything", payloadRepo)
	}
	return l, nil
}

// payloadHasUnblockedMirror renders digest mirrors alone and asks whether any
// pull source of the release (by its own reference, so a digest reference
// uses digest-only mirrors) lies outside every blocked scope.
func payloadHasUnblockedMirror(release reference.Named, blocked []string, digestSets []mergedSet) bool {
	var conf RegistriesConf
	editRegistries(&conf, nil, nil, digestSets, nil)
	n := Merge(&conf)
	for _, s := range n.pullSources(release) {
		if s.Skipped != "" || s.Err != "" {
			continue
		}
		ok := true
		for _, b := range blocked {
			if nestedScope(s.Name, b) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// editRegistries is the cluster's EditRegistriesConfig: mirrors, then
// blocked entries, then insecure and blocked flags propagated to nested
// scopes (and insecure to mirror endpoints; blocked never reaches mirrors),
// then mirrors propagated to nested entries that have none.
func editRegistries(conf *RegistriesConf, insecure, blocked []string, digestSets, tagSets []mergedSet) {
	get := func(scope string) *Registry {
		for i := range conf.Registries {
			if conf.Registries[i].scope() == scope {
				return &conf.Registries[i]
			}
		}
		r := Registry{Location: scope}
		if isWildcard(scope) {
			r = Registry{Prefix: scope}
		}
		conf.Registries = append(conf.Registries, r)
		return &conf.Registries[len(conf.Registries)-1]
	}
	for _, sets := range []struct {
		sets []mergedSet
		pull string
	}{{digestSets, PullDigestOnly}, {tagSets, PullTagOnly}} {
		for _, ms := range sets.sets {
			r := get(ms.source)
			for _, m := range ms.mirrors {
				r.Mirrors = append(r.Mirrors, Endpoint{Location: m, PullFromMirror: sets.pull})
			}
			if ms.never {
				r.Blocked = true
			}
		}
	}
	for _, b := range blocked {
		get(b)
	}
	for _, s := range insecure {
		get(s).Insecure = true
		for i := range conf.Registries {
			r := &conf.Registries[i]
			if nestedScope(r.scope(), s) {
				r.Insecure = true
			}
			for j := range r.Mirrors {
				if nestedScope(r.Mirrors[j].Location, s) {
					r.Mirrors[j].Insecure = true
				}
			}
		}
	}
	for _, s := range blocked {
		get(s).Blocked = true
		for i := range conf.Registries {
			if nestedScope(conf.Registries[i].scope(), s) {
				conf.Registries[i].Blocked = true
			}
		}
	}
	// Only the longest prefix applies at pull time, so an entry nested in a
	// mirrored source would otherwise lose the parent's mirrors.
	for i := range conf.Registries {
		r := &conf.Registries[i]
		if len(r.Mirrors) > 0 {
			continue
		}
		var parent *Registry
		for j := range conf.Registries {
			p := &conf.Registries[j]
			if j == i || len(p.Mirrors) == 0 || p.scope() == r.scope() || !nestedScope(r.scope(), p.scope()) {
				continue
			}
			if parent == nil || len(p.scope()) > len(parent.scope()) {
				parent = p
			}
		}
		if parent == nil {
			continue
		}
		suffix := nestedSuffix(r.scope(), parent.scope())
		for _, m := range parent.Mirrors {
			m.Location += suffix
			for _, s := range insecure {
				if nestedScope(m.Location, s) {
					m.Insecure = true
				}
			}
			r.Mirrors = append(r.Mirrors, m)
		}
	}
}

// nestedSuffix is what a nested scope adds to its mirrored parent's mirror
// locations. Under a host scope it is the path after the parent; under a
// wildcard parent the runtime rewrites by dropping the whole host, so it is
// the nested scope's path after its host (the cluster fails here instead).
func nestedSuffix(sub, super string) string {
	if !isWildcard(super) {
		return sub[len(super):]
	}
	if isWildcard(sub) {
		return ""
	}
	if i := strings.Index(sub, "/"); i >= 0 {
		return sub[i:]
	}
	return ""
}

// renderCAs writes each CA of the trusted ConfigMaps to certs.d/HOST[:PORT]/ca.crt
// under both the Docker and the containers directories. A key present in both
// the user and the managed ConfigMap gets both bundles, user first.
func renderCAs(in *Inputs) map[string][]byte {
	files := map[string][]byte{}
	user, managed := trustedCAMaps(in)
	for _, cm := range []*ConfigMap{user, managed} {
		if cm == nil {
			continue
		}
		put := func(key string, b []byte) {
			dir := strings.ReplaceAll(key, "..", ":")
			if len(b) > 0 && b[len(b)-1] != '\n' {
				b = append(b, '\n')
			}
			for _, root := range []string{DockerCertsDir, ContainersCertsDir} {
				p := path.Join(root, dir, "ca.crt")
				files[p] = append(files[p], b...)
			}
		}
		for _, k := range sortedKeys(cm.Data) {
			put(k, caBundle(cm.Data[k]))
		}
		for _, k := range sortedKeys(cm.BinaryData) {
			put(k, append([]byte(nil), cm.BinaryData[k]...))
		}
	}
	return files
}

// warnAllowedGaps warns when allowedRegistries leaves out what a node must
// pull: the release payload, the internal registry, and mirror hosts (pods
// that name a mirror directly are judged by the mirror's own name).
func warnAllowedGaps(in *Inputs, rs RegistrySources, digestSets, tagSets []mergedSet, warn func(string, ...any)) {
	if len(rs.AllowedRegistries) == 0 {
		return
	}
	admits := func(name string) bool {
		for _, ns := range policyNamespaces(name) {
			for _, a := range rs.AllowedRegistries {
				if a == ns {
					return true
				}
			}
		}
		return false
	}
	if in.ReleaseImage != "" {
		if r, err := reference.ParseNamed(in.ReleaseImage); err == nil && !admits(r.Name()) {
			warn("allowedRegistries does not admit the release payload %s: the node will reject it", r.Name())
		}
	}
	if in.Image != nil && in.Image.Status.InternalRegistryHostname != "" {
		h := in.Image.Status.InternalRegistryHostname
		if !admits(h + "/x") {
			warn("allowedRegistries does not admit the internal registry %s: pods and builds that use image streams will be rejected", h)
		}
	}
	seen := map[string]bool{}
	for _, sets := range [][]mergedSet{digestSets, tagSets} {
		for _, ms := range sets {
			for _, m := range ms.mirrors {
				if !seen[m] && !admits(m) {
					warn("allowedRegistries does not admit mirror %s: pulls that go through it by the source's name are allowed, but pods that name the mirror directly are rejected", m)
				}
				seen[m] = true
			}
		}
	}
}

// PolicyFile is policy.json. Requirements are kept as raw JSON so that base
// requirements Berth does not generate (signedBy, sigstoreSigned…) survive.
type PolicyFile struct {
	Default    []json.RawMessage                       `json:"default"`
	Transports map[string]map[string][]json.RawMessage `json:"transports,omitempty"`
}

var (
	reqAccept = json.RawMessage(`{"type":"insecureAcceptAnything"}`)
	reqReject = json.RawMessage(`{"type":"reject"}`)
)

// ParsePolicyJSON decodes policy.json strictly, as the runtime does.
func ParsePolicyJSON(name string, data []byte) (*PolicyFile, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var p PolicyFile
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: trailing data after the JSON object", name)
	}
	if len(p.Default) == 0 {
		return nil, fmt.Errorf("%s: \"default\" must list at least one requirement", name)
	}
	for t, scopes := range p.Transports {
		for s, reqs := range scopes {
			for _, r := range reqs {
				var probe struct {
					Type string `json:"type"`
				}
				if err := json.Unmarshal(r, &probe); err != nil || probe.Type == "" {
					return nil, fmt.Errorf("%s: transports.%s[%q]: requirement without a \"type\"", name, t, s)
				}
			}
		}
	}
	return &p, nil
}

func (p *PolicyFile) clone() *PolicyFile {
	c := &PolicyFile{Default: append([]json.RawMessage(nil), p.Default...), Transports: map[string]map[string][]json.RawMessage{}}
	for t, scopes := range p.Transports {
		c.Transports[t] = map[string][]json.RawMessage{}
		for s, r := range scopes {
			c.Transports[t][s] = append([]json.RawMessage(nil), r...)
		}
	}
	return c
}

// apply is the cluster's updatePolicyJSON: allowed scopes accept (default
// reject), blocked scopes reject (default accept; this runs last), and the
// atomic transport copies docker without scopes deeper than host/ns/stream.
// Berth makes the default reject only when the user's own allowedRegistries
// is set, not when the only allowed scope is the release payload.
//
// Signature requirements of ClusterImagePolicy scopes are appended last; an
// allowed scope that is also a signature scope gets only the signature
// requirement (insecureAcceptAnything would otherwise be listed with it).
func (p *PolicyFile) apply(allowed, blocked []string, userAllowed bool, signatures scopeRequirements) {
	if p.Transports == nil {
		p.Transports = map[string]map[string][]json.RawMessage{}
	}
	docker := p.Transports["docker"]
	if docker == nil {
		docker = map[string][]json.RawMessage{}
	}
	if len(allowed) > 0 {
		if userAllowed {
			p.Default = []json.RawMessage{reqReject}
		}
		for _, s := range allowed {
			if signatures[s] != nil {
				continue
			}
			docker[s] = []json.RawMessage{reqAccept}
		}
	}
	if len(blocked) > 0 {
		p.Default = []json.RawMessage{reqAccept}
		for _, s := range blocked {
			docker[s] = []json.RawMessage{reqReject}
		}
	}
	for _, s := range sortedKeys(signatures) {
		docker[s] = append(docker[s], signatures[s]...)
	}
	p.Transports["docker"] = docker
	atomic := map[string][]json.RawMessage{}
	for s, r := range docker {
		if strings.Count(s, "/") < 3 {
			atomic[s] = r
		}
	}
	p.Transports["atomic"] = atomic
}

// Encode renders policy.json with two-space indentation.
func (p *PolicyFile) Encode() []byte {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		panic(err) // raw messages were validated when parsed
	}
	return append(b, '\n')
}
