package policy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"sigs.k8s.io/yaml"
)

// The runtime's JSON form of a sigstoreSigned requirement (the field order
// of go.podman.io/image/v5/signature's prSigstoreSigned, which the cluster
// marshals).
type sigstoreSignedJSON struct {
	Type               string       `json:"type"`
	KeyData            []byte       `json:"keyData,omitempty"`
	Fulcio             *fulcioJSON  `json:"fulcio,omitempty"`
	RekorPublicKeyData []byte       `json:"rekorPublicKeyData,omitempty"`
	PKI                *pkiJSON     `json:"pki,omitempty"`
	SignedIdentity     identityJSON `json:"signedIdentity"`
}

type fulcioJSON struct {
	CAData       []byte `json:"caData,omitempty"`
	OIDCIssuer   string `json:"oidcIssuer,omitempty"`
	SubjectEmail string `json:"subjectEmail,omitempty"`
}

type pkiJSON struct {
	CARootsData         []byte `json:"caRootsData,omitempty"`
	CAIntermediatesData []byte `json:"caIntermediatesData,omitempty"`
	SubjectEmail        string `json:"subjectEmail,omitempty"`
	SubjectHostname     string `json:"subjectHostname,omitempty"`
}

type identityJSON struct {
	Type             string `json:"type"`
	DockerReference  string `json:"dockerReference,omitempty"`
	DockerRepository string `json:"dockerRepository,omitempty"`
	Prefix           string `json:"prefix,omitempty"`
	SignedPrefix     string `json:"signedPrefix,omitempty"`
}

func unb64(s string) []byte {
	b, _ := base64.StdEncoding.DecodeString(s) // validated
	return b
}

// sigstoreRequirement is the cluster's policyItemFromSpec: one
// sigstoreSigned requirement for a valid policy.
func sigstoreRequirement(p *SignaturePolicy) json.RawMessage {
	r := sigstoreSignedJSON{Type: "sigstoreSigned"}
	rt := p.RootOfTrust
	switch rt.PolicyType {
	case PolicyTypePublicKey:
		r.KeyData = unb64(rt.PublicKey.KeyData)
		if rt.PublicKey.RekorKeyData != "" {
			r.RekorPublicKeyData = unb64(rt.PublicKey.RekorKeyData)
		}
	case PolicyTypeFulcioCAWithRekor:
		f := rt.FulcioCAWithRekor
		r.Fulcio = &fulcioJSON{CAData: unb64(f.FulcioCAData), OIDCIssuer: f.FulcioSubject.OIDCIssuer, SubjectEmail: f.FulcioSubject.SignedEmail}
		r.RekorPublicKeyData = unb64(f.RekorKeyData)
	case PolicyTypePKI:
		k := rt.PKI
		r.PKI = &pkiJSON{CARootsData: unb64(k.CARootsData), SubjectEmail: k.PKICertificateSubject.Email, SubjectHostname: k.PKICertificateSubject.Hostname}
		if k.CAIntermediatesData != "" {
			r.PKI.CAIntermediatesData = unb64(k.CAIntermediatesData)
		}
	}
	r.SignedIdentity = identityJSON{Type: "matchRepoDigestOrExact"}
	if id := p.SignedIdentity; id != nil {
		switch id.MatchPolicy {
		case MatchRepository:
			r.SignedIdentity = identityJSON{Type: "matchRepository"}
		case ExactRepository:
			r.SignedIdentity = identityJSON{Type: "exactRepository", DockerRepository: id.ExactRepository.Repository}
		case RemapIdentity:
			r.SignedIdentity = identityJSON{Type: "remapIdentity", Prefix: id.RemapIdentity.Prefix, SignedPrefix: id.RemapIdentity.SignedPrefix}
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // plain types only
	}
	return b
}

// scopeRequirements maps a policy.json scope to the requirements the
// signature policies add to it; a scope named by several policies gets all
// of their requirements (every one must be satisfied).
type scopeRequirements map[string][]json.RawMessage

// signatureScopes is the cluster's getValidScopePolicies: every
// ClusterImagePolicy scope, and the ImagePolicy scopes by namespace,
// without those equal to or nested in a ClusterImagePolicy scope (each
// dropped with a message, as the cluster sets the ImagePolicy Pending).
func signatureScopes(in *Inputs) (cluster scopeRequirements, namespaces map[string]scopeRequirements, dropped []string) {
	cluster = scopeRequirements{}
	namespaces = map[string]scopeRequirements{}
	for i := range in.ClusterImagePolicies {
		p := &in.ClusterImagePolicies[i]
		req := sigstoreRequirement(&p.Spec.Policy)
		for _, s := range p.Spec.Scopes {
			cluster[s] = append(cluster[s], req)
		}
	}
	for i := range in.ImagePolicies {
		p := &in.ImagePolicies[i]
		req := sigstoreRequirement(&p.Spec.Policy)
		ns := p.Metadata.Namespace
		var conflicts []string
		for _, s := range p.Spec.Scopes {
			if cs := coveringScope(cluster, s); cs != "" {
				conflicts = append(conflicts, fmt.Sprintf("%q (within ClusterImagePolicy scope %q)", s, cs))
				continue
			}
			if namespaces[ns] == nil {
				namespaces[ns] = scopeRequirements{}
			}
			namespaces[ns][s] = append(namespaces[ns][s], req)
		}
		if len(conflicts) > 0 {
			dropped = append(dropped, fmt.Sprintf("%s: ImagePolicy %s/%s has conflicting scope(s) %s that equal to or nest inside existing clusterimagepolicy, only policy from clusterimagepolicy scope(s) will be applied (the cluster sets the ImagePolicy Pending)", p.Origin, ns, p.Metadata.Name, strings.Join(conflicts, ", ")))
		}
	}
	return cluster, namespaces, dropped
}

// coveringScope is the first (in sorted order) cluster scope that s equals
// or nests in, or "".
func coveringScope(cluster scopeRequirements, s string) string {
	for _, cs := range sortedKeys(cluster) {
		if nestedScope(s, cs) {
			return cs
		}
	}
	return ""
}

// signatureScopeConflicts is the cluster's
// validateImagePolicyWithAllowedBlockedRegistries, reported per scope with
// its origin: a signature scope inside a blocked scope, or outside every
// allowed scope, fails the render.
func signatureScopeConflicts(in *Inputs) []Problem {
	if len(in.ClusterImagePolicies)+len(in.ImagePolicies) == 0 || in.Image == nil {
		return nil
	}
	rs := in.Image.Spec.RegistrySources
	if len(rs.BlockedRegistries) == 0 && len(rs.AllowedRegistries) == 0 {
		return nil
	}
	lists, _ := blockedAndAllowed(in, rs, mergeMirrorSets(mirrorEntries(in), "digest"), func(string, ...any) {})
	allowed := lists.allowed
	if len(rs.AllowedRegistries) == 0 {
		// Berth: the payload repository alone is not an allowedRegistries
		// list (the cluster then refuses every scope outside it).
		allowed = nil
	}
	cluster, _, _ := signatureScopes(in)
	var ps []Problem
	check := func(kind string, o Origin, field, s string) {
		if len(allowed) > 0 {
			in := false
			for _, a := range allowed {
				if nestedScope(s, a) {
					in = true
					break
				}
			}
			if !in {
				ps = append(ps, Problem{o, field, fmt.Sprintf("%s configured for the scope %q is not nested inside allowedRegistries %v", kind, s, allowed)})
			}
		}
		for _, b := range lists.policyBlocked {
			if nestedScope(s, b) {
				ps = append(ps, Problem{o, field, fmt.Sprintf("%s configured for the scope %q is nested inside blockedRegistries (%q)", kind, s, b)})
				break
			}
		}
	}
	for _, p := range in.ClusterImagePolicies {
		for i, s := range p.Spec.Scopes {
			check("clusterimagePolicy", p.Origin, fmt.Sprintf("spec.scopes[%d]", i), s)
		}
	}
	for _, p := range in.ImagePolicies {
		for i, s := range p.Spec.Scopes {
			if coveringScope(cluster, s) != "" {
				continue // dropped: the cluster does not check it
			}
			check("imagePolicy", p.Origin, fmt.Sprintf("spec.scopes[%d]", i), s)
		}
	}
	return ps
}

// addRequirements appends each scope's requirements to the docker
// transport, and to atomic for scopes of fewer than three "/".
func (p *PolicyFile) addRequirements(reqs scopeRequirements) {
	if p.Transports == nil {
		p.Transports = map[string]map[string][]json.RawMessage{}
	}
	for _, t := range []string{"docker", "atomic"} {
		if p.Transports[t] == nil {
			p.Transports[t] = map[string][]json.RawMessage{}
		}
	}
	for _, s := range sortedKeys(reqs) {
		p.Transports["docker"][s] = append(p.Transports["docker"][s], reqs[s]...)
		if strings.Count(s, "/") < 3 {
			p.Transports["atomic"][s] = append(p.Transports["atomic"][s], reqs[s]...)
		}
	}
}

// namespacePolicies is the cluster's updateNamespacedPolicyJSONs: each
// namespace's file is the cluster policy.json plus its own scopes.
func namespacePolicies(clusterPolicy []byte, namespaces map[string]scopeRequirements) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, ns := range sortedKeys(namespaces) {
		p, err := ParsePolicyJSON("policy.json", clusterPolicy)
		if err != nil {
			return nil, err
		}
		p.addRequirements(namespaces[ns])
		files[CRIOPolicyPath(ns)] = p.Encode()
	}
	return files, nil
}

// RegistriesD is the part of a registries.d file Berth reads and writes.
type RegistriesD struct {
	DefaultDocker *RegistriesDEntry           `json:"default-docker,omitempty"`
	Docker        map[string]RegistriesDEntry `json:"docker,omitempty"`
}

// RegistriesDEntry is one registries.d namespace's signature storage.
type RegistriesDEntry struct {
	Lookaside              string `json:"lookaside,omitempty"`
	LookasideStaging       string `json:"lookaside-staging,omitempty"`
	SigStore               string `json:"sigstore,omitempty"`
	SigStoreStaging        string `json:"sigstore-staging,omitempty"`
	UseSigstoreAttachments *bool  `json:"use-sigstore-attachments,omitempty"`
}

// sigstoreRegistriesD is the cluster's generateSigstoreRegistriesdConfig:
// use-sigstore-attachments for every signature scope and for every place
// the rendered registries.conf pulls those scopes from (the runtime looks
// the setting up by the physical reference it fetches, mirror or source).
// conf is nil when registries.conf was not regenerated, as the cluster
// then adds no mirrors.
func sigstoreRegistriesD(scopes []string, conf *RegistriesConf) []byte {
	yes := true
	on := RegistriesDEntry{UseSigstoreAttachments: &yes}
	d := RegistriesD{Docker: map[string]RegistriesDEntry{}}
	var n *NodeRegistries
	if conf != nil {
		n = Merge(conf)
	}
	for _, s := range scopes {
		d.Docker[s] = on
		if n == nil {
			continue
		}
		for _, e := range scopeEndpoints(n, s, n.find(s)) {
			d.Docker[e] = on
		}
		for i := range conf.Registries {
			rs := conf.Registries[i].scope()
			if rs != s && nestedScope(rs, s) {
				for _, e := range scopeEndpoints(n, rs, n.find(rs)) {
					d.Docker[e] = on
				}
			}
		}
	}
	b, err := yaml.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

// scopeEndpoints is the cluster's addScopeMirrorsSigstoreRegistriesdConfig:
// the repositories a tag and a digest reference inside scope are pulled
// from, by reg, with the dummy path the cluster adds to host scopes removed.
func scopeEndpoints(n *NodeRegistries, scope string, reg *Registry) []string {
	if reg == nil {
		return nil
	}
	const dummyPath = "/a"
	if isWildcard(scope) {
		scope = "matched" + scope[1:]
	}
	added := false
	if !strings.Contains(scope, "/") {
		scope += dummyPath
		added = true
	}
	named, err := reference.ParseNamed(scope)
	if err != nil {
		return nil
	}
	repo := reference.TrimNamed(named)
	tagged, err1 := reference.WithTag(repo, "aaa")
	digested, err2 := reference.WithDigest(repo, "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	if err1 != nil || err2 != nil {
		return nil
	}
	var out []string
	for _, ref := range []reference.Named{digested, tagged} {
		for _, ps := range n.pullSourcesVia(ref, reg) {
			if ps.Skipped != "" || ps.Err != "" || ps.Name == "" {
				continue
			}
			if !ps.Mirror && reg.Location == "" {
				continue // a wildcard entry's own location: only its mirrors count
			}
			e := ps.Name
			if added {
				e = strings.TrimSuffix(e, dummyPath)
			}
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

// warnSignedPayload says what a disconnected cluster needs when a
// signature scope covers the release payload: every mirror that serves it
// must also serve its signatures (sha256-DIGEST.sig), or nodes refuse it.
func warnSignedPayload(in *Inputs, cluster scopeRequirements, conf *RegistriesConf, warn func(string, ...any)) {
	if in.ReleaseImage == "" || conf == nil {
		return
	}
	release, err := reference.ParseNamed(in.ReleaseImage)
	if err != nil {
		return
	}
	scope := ""
	for _, s := range policyNamespaces(release.Name()) {
		if cluster[s] != nil {
			scope = s
			break
		}
	}
	if scope == "" {
		return
	}
	var mirrors []string
	for _, s := range Merge(conf).pullSources(release) {
		if s.Mirror && s.Skipped == "" && s.Err == "" {
			mirrors = append(mirrors, s.Name)
		}
	}
	if len(mirrors) > 0 {
		warn("ClusterImagePolicy scope %q covers the release payload %s: nodes pull it from %s, which must also hold its sigstore signature tags (sha256-<digest>.sig; berth mirror copies them unless --no-referrers), or every node refuses the payload", scope, release.Name(), strings.Join(mirrors, ", "))
	}
}
