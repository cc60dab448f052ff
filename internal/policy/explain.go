package policy

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// Node is what a node's runtime reads, loaded from a rendered root.
type Node struct {
	Registries *NodeRegistries
	Policy     *PolicyFile
	// RegistriesD is the merged registries.d configuration; nil until
	// LoadSignatureFiles (or LoadNodeRoot) reads it.
	RegistriesD *RegistriesD
	// Namespaces holds CRI-O's per-namespace policies (etc/crio/policies/NS.json) by namespace.
	Namespaces map[string]*PolicyFile
}

// NamedFile is a file's name and contents.
type NamedFile struct {
	Name string
	Data []byte
}

// LoadNode parses registries.conf, its drop-ins (in lexical order) and
// policy.json the way the runtime would.
func LoadNode(registriesConf NamedFile, dropIns []NamedFile, policyJSON NamedFile) (*Node, error) {
	main, err := ParseRegistriesConf(registriesConf.Name, registriesConf.Data)
	if err != nil {
		return nil, err
	}
	var ds []*RegistriesConf
	for _, d := range dropIns {
		c, err := ParseRegistriesConf(d.Name, d.Data)
		if err != nil {
			return nil, err
		}
		ds = append(ds, c)
	}
	pol, err := ParsePolicyJSON(policyJSON.Name, policyJSON.Data)
	if err != nil {
		return nil, err
	}
	return &Node{Registries: Merge(main, ds...), Policy: pol}, nil
}

// PullSource is one place the runtime would try, in order.
type PullSource struct {
	// Reference is the physical reference fetched from this source.
	Reference string `json:"reference"`
	// Name is Reference's repository name.
	Name string `json:"-"`
	// Mirror is false for the source itself (the primary location).
	Mirror   bool `json:"mirror"`
	Insecure bool `json:"insecure"`
	Blocked  bool `json:"blocked"`
	// BlockedBy is the registries.conf prefix that blocks this physical reference.
	BlockedBy string `json:"blockedBy,omitempty"`
	// SigstoreAttachments is whether registries.d makes the runtime fetch
	// sigstore signatures from this physical location.
	SigstoreAttachments bool `json:"sigstoreAttachments,omitempty"`
	// Skipped says why the runtime does not try this mirror for this reference.
	Skipped string `json:"skipped,omitempty"`
	// Err is set when the rewritten reference would not parse; the runtime
	// then fails the whole pull.
	Err string `json:"error,omitempty"`
}

// PolicyVerdict is policy.json's answer for a reference.
type PolicyVerdict struct {
	Transport string `json:"transport"`
	// Scope is the policy.json scope that decided: a transport scope, "" for
	// the transport default, or "default" for the global default.
	Scope        string   `json:"scope"`
	Requirements []string `json:"requirements"`
	// Allowed is true when every requirement is insecureAcceptAnything;
	// any reject refuses; other requirements need valid signatures.
	Allowed bool   `json:"allowed"`
	Verdict string `json:"verdict"`
}

// Explanation answers "where would this image be pulled from, and is it allowed".
type Explanation struct {
	Input     string `json:"input"`
	Reference string `json:"reference"`
	// Registry is the registries.conf prefix that applies ("" for none).
	Registry    string        `json:"registry"`
	PullSources []PullSource  `json:"pullSources"`
	Blocked     bool          `json:"blocked"`
	Policy      PolicyVerdict `json:"policy"`
	Pullable    bool          `json:"pullable"`
	// Result is "pullable", "blocked" (every source tried is blocked),
	// "rejected" (by policy.json), "signature-required" (policy.json
	// accepts it only with a valid signature, which explain cannot check),
	// or "error" (the runtime cannot even build the list of sources).
	Result string `json:"result"`
	// Signatures are the signature requirements of the policy.json scope
	// that decides (empty when it needs no signature).
	Signatures []SignatureRule `json:"signatures,omitempty"`
	// Namespace is the answer for one namespace's pods (ExplainWith).
	Namespace *NamespaceVerdict `json:"namespace,omitempty"`
	Notes     []string          `json:"notes,omitempty"`
}

// ParseImageRef parses an image reference as the runtime's docker transport
// does: short names are qualified to docker.io, a missing tag is :latest, and
// a tag together with a digest is refused.
func ParseImageRef(s string) (reference.Named, error) {
	ref, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", s, err)
	}
	_, tagged := ref.(reference.Tagged)
	_, digested := ref.(reference.Digested)
	if tagged && digested {
		return nil, fmt.Errorf("invalid image reference %q: a tag and a digest together are not supported by the runtime", s)
	}
	return reference.TagNameOnly(ref), nil
}

// pullSources is the runtime's PullSourcesFromReference, with the mirrors it
// skips kept (and marked) so explain can say why.
func (n *NodeRegistries) pullSources(ref reference.Named) []PullSource {
	return n.pullSourcesVia(ref, n.find(ref.Name()))
}

// pullSourcesVia is pullSources through a given registries.conf entry (the
// runtime's Registry.PullSourcesFromReference).
func (n *NodeRegistries) pullSourcesVia(ref reference.Named, r *Registry) []PullSource {
	if r == nil {
		return []PullSource{n.source(ref.String(), Endpoint{}, false)}
	}
	_, digested := ref.(reference.Canonical)
	var out []PullSource
	for _, m := range r.Mirrors {
		skip := ""
		switch {
		case r.MirrorByDigestOnly && !digested:
			skip = "mirror-by-digest-only registry; the reference is by tag"
		case m.PullFromMirror == PullDigestOnly && !digested:
			skip = "digest-only mirror; the reference is by tag"
		case m.PullFromMirror == PullTagOnly && digested:
			skip = "tag-only mirror; the reference is by digest"
		}
		ps := n.rewrite(ref, r, m, true)
		if skip != "" {
			ps.Skipped, ps.Err = skip, "" // the runtime skips it before rewriting
		}
		out = append(out, ps)
	}
	return append(out, n.rewrite(ref, r, Endpoint{Location: r.Location, Insecure: r.Insecure}, false))
}

// rewrite is the runtime's Endpoint.rewriteReference: the endpoint location
// replaces the matched prefix; an empty location (wildcard primary) keeps the
// reference as it is.
func (n *NodeRegistries) rewrite(ref reference.Named, r *Registry, ep Endpoint, mirror bool) PullSource {
	s := ref.String()
	if ep.Location == "" {
		return n.source(s, ep, mirror)
	}
	l := refMatchingPrefix(s, r.effectivePrefix())
	if l < 0 {
		ps := n.source(s, ep, mirror)
		ps.Err = fmt.Sprintf("registries.conf entry %q does not match %s", r.effectivePrefix(), s)
		return ps
	}
	phys := ep.Location + s[l:]
	ps := n.source(phys, ep, mirror)
	if _, err := reference.ParseNamed(phys); err != nil {
		ps.Err = fmt.Sprintf("rewriting reference: %v", err)
	}
	return ps
}

// source describes one physical reference: its registry entry decides
// whether it is blocked, and insecure comes from the endpoint.
func (n *NodeRegistries) source(phys string, ep Endpoint, mirror bool) PullSource {
	ps := PullSource{Reference: phys, Mirror: mirror, Insecure: ep.Insecure}
	if named, err := reference.ParseNamed(phys); err == nil {
		ps.Name = named.Name()
		if br := n.find(named.Name()); br != nil && br.Blocked {
			ps.Blocked, ps.BlockedBy = true, br.effectivePrefix()
		}
	}
	return ps
}

// verdict is the runtime's policy lookup for the docker transport: the full
// reference, then ever shorter namespaces, then "*.domain" scopes, then the
// transport default, then the global default.
func (p *PolicyFile) verdict(ref reference.Named) PolicyVerdict {
	v := PolicyVerdict{Transport: "docker", Scope: "default"}
	reqs := p.Default
	if scopes, ok := p.Transports["docker"]; ok {
		identity := ref.Name()
		if t, ok := ref.(reference.Tagged); ok {
			identity += ":" + t.Tag()
		} else if d, ok := ref.(reference.Digested); ok {
			identity += "@" + d.Digest().String()
		}
		found := false
		for _, s := range append([]string{identity}, append(policyNamespaces(ref.Name()), "")...) {
			if r, ok := scopes[s]; ok {
				v.Scope, reqs, found = s, r, true
				break
			}
		}
		if !found {
			v.Scope = "default"
		}
	}
	v.Allowed = true
	rejected := false
	for _, r := range reqs {
		var probe struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(r, &probe)
		v.Requirements = append(v.Requirements, probe.Type)
		switch probe.Type {
		case "insecureAcceptAnything":
		case "reject":
			rejected = true
			v.Allowed = false
		default:
			v.Allowed = false
		}
	}
	switch {
	case rejected:
		v.Verdict = "rejected"
	case v.Allowed:
		v.Verdict = "accepted"
	default:
		v.Verdict = "accepted only with valid signatures (" + strings.Join(v.Requirements, ", ") + ")"
	}
	return v
}

// Explain answers for one image reference: the ordered pull sources, which of
// them are skipped or blocked, and the policy.json verdict, which is made on
// the reference as written, never on the mirror that serves it.
func (n *Node) Explain(input string) (*Explanation, error) {
	ref, err := ParseImageRef(input)
	if err != nil {
		return nil, err
	}
	e := &Explanation{Input: input, Reference: ref.String()}
	if r := n.Registries.find(ref.Name()); r != nil {
		e.Registry = r.effectivePrefix()
	}
	e.PullSources = n.Registries.pullSources(ref)
	e.Policy = n.Policy.verdict(ref)
	n.explainSignatures(e, ref)
	tried, usable := 0, 0
	for _, s := range e.PullSources {
		if s.Skipped != "" {
			continue
		}
		tried++
		if s.Err != "" {
			e.Notes = append(e.Notes, fmt.Sprintf("the runtime fails this pull before trying any source: %s: %s", s.Reference, s.Err))
			usable, tried = 0, -1
			break
		}
		if !s.Blocked {
			usable++
		}
	}
	e.Blocked = tried >= 0 && usable == 0
	e.Pullable = !e.Blocked && tried >= 0 && e.Policy.Allowed
	switch {
	case tried < 0:
		e.Result = "error"
	case e.Blocked:
		e.Result = "blocked"
	case !e.Policy.Allowed && e.Policy.Verdict != "rejected":
		e.Result = "signature-required"
	case !e.Policy.Allowed:
		e.Result = "rejected"
	default:
		e.Result = "pullable"
	}
	if reference.Domain(ref) == "docker.io" && !strings.HasPrefix(input, "docker.io/") && !strings.HasPrefix(input, "index.docker.io/") {
		e.Notes = append(e.Notes, fmt.Sprintf("%q is not fully qualified: explained as %s; the runtime may instead try the unqualified-search-registries %v", input, ref.String(), n.Registries.Search))
	}
	if e.Registry != "" && !isWildcard(e.Registry) && !strings.Contains(hostOf(e.Registry), ":") && strings.Contains(reference.Domain(ref), ":") {
		e.Notes = append(e.Notes, fmt.Sprintf("registries.conf entry %q also matches the port %s (a runtime quirk), but a policy.json scope %q would not", e.Registry, reference.Domain(ref), e.Registry))
	}
	return e, nil
}

func writeSignatureRules(b *strings.Builder, indent string, rules []SignatureRule) {
	for _, r := range rules {
		fmt.Fprintf(b, "%ssignature: %s, root of trust %s\n", indent, r.Type, r.RootOfTrust)
		for _, k := range r.Keys {
			fmt.Fprintf(b, "%s  trusts %s\n", indent, k)
		}
		if r.Subject != "" {
			fmt.Fprintf(b, "%s  signer must be %s\n", indent, r.Subject)
		}
		if r.Rekor != "" {
			fmt.Fprintf(b, "%s  Rekor proof verified with %s\n", indent, r.Rekor)
		}
		fmt.Fprintf(b, "%s  identity %s: needs %s\n", indent, r.Identity, r.Expects)
	}
}

func hostOf(scope string) string {
	h, _, _ := strings.Cut(scope, "/")
	return h
}

// String renders an explanation for people.
func (e *Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reference: %s\n", e.Reference)
	if e.Registry == "" {
		b.WriteString("registries.conf: no entry matches; pulled from the source itself\n")
	} else {
		fmt.Fprintf(&b, "registries.conf: entry %q applies\n", e.Registry)
	}
	b.WriteString("pull sources, in order:\n")
	i := 0
	for _, s := range e.PullSources {
		kind := "source"
		if s.Mirror {
			kind = "mirror"
		}
		var flags []string
		if s.Insecure {
			flags = append(flags, "insecure")
		}
		if s.Blocked {
			flags = append(flags, "BLOCKED by "+s.BlockedBy)
		}
		if s.SigstoreAttachments {
			flags = append(flags, "sigstore attachments")
		}
		if s.Err != "" {
			flags = append(flags, "error: "+s.Err)
		}
		f := ""
		if len(flags) > 0 {
			f = " (" + strings.Join(flags, ", ") + ")"
		}
		if s.Skipped != "" {
			fmt.Fprintf(&b, "   -  %s %s: skipped, %s\n", kind, s.Reference, s.Skipped)
			continue
		}
		i++
		fmt.Fprintf(&b, "  %2d. %s %s%s\n", i, kind, s.Reference, f)
	}
	scope := fmt.Sprintf("transports.%s[%q]", e.Policy.Transport, e.Policy.Scope)
	if e.Policy.Scope == "default" {
		scope = `"default"`
	}
	fmt.Fprintf(&b, "policy.json: %s by %s %v\n", e.Policy.Verdict, scope, e.Policy.Requirements)
	writeSignatureRules(&b, "  ", e.Signatures)
	if v := e.Namespace; v != nil {
		file := v.File
		if file == "" {
			file = "policy.json (the namespace has no policy of its own)"
		}
		nsScope := fmt.Sprintf("transports.%s[%q]", v.Policy.Transport, v.Policy.Scope)
		if v.Policy.Scope == "default" {
			nsScope = `"default"`
		}
		fmt.Fprintf(&b, "namespace %s: %s: %s by %s %v\n", v.Namespace, file, v.Policy.Verdict, nsScope, v.Policy.Requirements)
		writeSignatureRules(&b, "  ", v.Signatures)
	}
	switch {
	case e.Result == "error":
		b.WriteString("result: the runtime fails before pulling (a mirror location cannot be rewritten for this reference)\n")
	case e.Blocked:
		b.WriteString("result: refused — every source that would be tried is blocked\n")
	case e.Result == "signature-required":
		b.WriteString("result: pullable only with a valid signature (berth policy verify checks the image's signatures)\n")
	case !e.Policy.Allowed:
		fmt.Fprintf(&b, "result: refused by policy.json\n")
	default:
		b.WriteString("result: pullable\n")
	}
	if v := e.Namespace; v != nil {
		fmt.Fprintf(&b, "result for pods in namespace %s: %s\n", v.Namespace, map[string]string{
			"pullable":           "pullable",
			"rejected":           "refused by " + CRIOPolicyPath(v.Namespace),
			"signature-required": "pullable only with a valid signature",
			"blocked":            "refused — every source that would be tried is blocked",
			"error":              "the runtime fails before pulling",
		}[v.Result])
	}
	for _, n := range e.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}
