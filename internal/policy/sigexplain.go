package policy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"sigs.k8s.io/yaml"
)

// ParseRegistriesD decodes one registries.d file as the runtime does
// (unknown keys are ignored, as the runtime ignores them).
func ParseRegistriesD(name string, data []byte) (*RegistriesD, error) {
	var d RegistriesD
	if err := yaml.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%s: %v", name, cleanErr(err))
	}
	return &d, nil
}

// LoadSignatureFiles adds what the runtime reads for signatures to n: the
// registries.d files (the runtime reads every *.yaml there, in lexical
// order; a key defined in two files is an error, as it is for the runtime)
// and CRI-O's per-namespace policies, each named NAMESPACE.json.
func (n *Node) LoadSignatureFiles(registriesD []NamedFile, crioPolicies []NamedFile) error {
	sort.SliceStable(registriesD, func(i, j int) bool { return baseName(registriesD[i].Name) < baseName(registriesD[j].Name) })
	merged := &RegistriesD{Docker: map[string]RegistriesDEntry{}}
	defaultFrom := ""
	from := map[string]string{}
	for _, f := range registriesD {
		d, err := ParseRegistriesD(f.Name, f.Data)
		if err != nil {
			return err
		}
		if d.DefaultDocker != nil {
			if defaultFrom != "" {
				return fmt.Errorf("%s: default-docker is also defined in %s", f.Name, defaultFrom)
			}
			merged.DefaultDocker, defaultFrom = d.DefaultDocker, f.Name
		}
		for k, v := range d.Docker {
			if prev, ok := from[k]; ok {
				return fmt.Errorf("%s: docker namespace %q is also defined in %s", f.Name, k, prev)
			}
			merged.Docker[k], from[k] = v, f.Name
		}
	}
	n.RegistriesD = merged
	n.Namespaces = map[string]*PolicyFile{}
	for _, f := range crioPolicies {
		b := baseName(f.Name)
		ns, ok := strings.CutSuffix(b, ".json")
		if !ok || ns == "" {
			return fmt.Errorf("%s: a CRI-O namespace policy is named NAMESPACE.json", f.Name)
		}
		p, err := ParsePolicyJSON(f.Name, f.Data)
		if err != nil {
			return err
		}
		n.Namespaces[ns] = p
	}
	return nil
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// LoadNodeRoot loads everything a node's runtime reads from the files of a
// node root, keyed by slash-separated path relative to the root (as
// Rendered.Files is): registries.conf, registries.conf.d/*.conf,
// policy.json, registries.d/*.yaml and crio/policies/*.json.
func LoadNodeRoot(files map[string][]byte) (*Node, error) {
	var drops, regd, crio []NamedFile
	for _, p := range sortedKeys(files) {
		dir, name := splitDir(p)
		switch {
		case dir == "etc/containers/registries.conf.d" && strings.HasSuffix(name, ".conf"):
			drops = append(drops, NamedFile{p, files[p]})
		case dir == RegistriesDDir && strings.HasSuffix(name, ".yaml"):
			regd = append(regd, NamedFile{p, files[p]})
		case dir == CRIOPoliciesDir && strings.HasSuffix(name, ".json"):
			crio = append(crio, NamedFile{p, files[p]})
		}
	}
	conf, ok := files[RegistriesConfPath]
	if !ok {
		return nil, fmt.Errorf("%s: missing", RegistriesConfPath)
	}
	pol, ok := files[PolicyJSONPath]
	if !ok {
		return nil, fmt.Errorf("%s: missing", PolicyJSONPath)
	}
	n, err := LoadNode(NamedFile{RegistriesConfPath, conf}, drops, NamedFile{PolicyJSONPath, pol})
	if err != nil {
		return nil, err
	}
	if err := n.LoadSignatureFiles(regd, crio); err != nil {
		return nil, err
	}
	return n, nil
}

func splitDir(p string) (dir, name string) {
	i := strings.LastIndex(p, "/")
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// useSigstoreAttachments is the runtime's registries.d lookup for one
// physical reference: its identity, then ever shorter namespaces and
// "*.domain" forms, then default-docker; the first entry that sets the
// field decides.
func (d *RegistriesD) useSigstoreAttachments(ref reference.Named) bool {
	if d == nil {
		return false
	}
	for _, s := range append([]string{policyIdentity(ref)}, policyNamespaces(ref.Name())...) {
		if e, ok := d.Docker[s]; ok && e.UseSigstoreAttachments != nil {
			return *e.UseSigstoreAttachments
		}
	}
	if d.DefaultDocker != nil && d.DefaultDocker.UseSigstoreAttachments != nil {
		return *d.DefaultDocker.UseSigstoreAttachments
	}
	return false
}

func policyIdentity(ref reference.Named) string {
	identity := ref.Name()
	if t, ok := ref.(reference.Tagged); ok {
		identity += ":" + t.Tag()
	} else if d, ok := ref.(reference.Digested); ok {
		identity += "@" + d.Digest().String()
	}
	return identity
}

// ExplainOptions are what Explain may be asked besides the reference.
type ExplainOptions struct {
	// Namespace also answers for pods of this namespace: CRI-O judges them
	// by etc/crio/policies/NAMESPACE.json when it exists.
	Namespace string
}

// SignatureRule is one signature requirement of the policy scope that decides.
type SignatureRule struct {
	// Type is the requirement's type: sigstoreSigned or signedBy.
	Type string `json:"type"`
	// RootOfTrust is PublicKey, FulcioCAWithRekor or PKI (GPGKeys for signedBy).
	RootOfTrust string `json:"rootOfTrust"`
	// Keys describes each key or CA certificate: its kind and SHA-256 fingerprint.
	Keys []string `json:"keys,omitempty"`
	// Rekor is the Rekor public key the signature's log proof must verify with.
	Rekor string `json:"rekor,omitempty"`
	// Subject is what the signing certificate must name (Fulcio or PKI).
	Subject string `json:"subject,omitempty"`
	// Identity is the signedIdentity rule in the runtime's terms.
	Identity string `json:"identity"`
	// Expects is what the signature must claim for this reference.
	Expects string `json:"expects,omitempty"`
}

// NamespaceVerdict is the answer for pods of one namespace.
type NamespaceVerdict struct {
	Namespace string `json:"namespace"`
	// File is the CRI-O policy the namespace's pods are judged by; "" when
	// the namespace has none and the cluster policy.json applies.
	File       string          `json:"file"`
	Policy     PolicyVerdict   `json:"policy"`
	Signatures []SignatureRule `json:"signatures,omitempty"`
	// Result is Explanation.Result for the namespace's pods: the same pull
	// sources, judged by the namespace's policy.
	Result string `json:"result"`
}

// requirementProbe reads the fields of policy.json requirements Berth explains.
type requirementProbe struct {
	Type               string        `json:"type"`
	KeyType            string        `json:"keyType"`
	KeyPath            string        `json:"keyPath"`
	KeyPaths           []string      `json:"keyPaths"`
	KeyData            []byte        `json:"keyData"`
	KeyDatas           [][]byte      `json:"keyDatas"`
	Fulcio             *fulcioProbe  `json:"fulcio"`
	RekorPublicKeyPath string        `json:"rekorPublicKeyPath"`
	RekorPublicKeyData []byte        `json:"rekorPublicKeyData"`
	PKI                *pkiProbe     `json:"pki"`
	SignedIdentity     *identityJSON `json:"signedIdentity"`
}

type fulcioProbe struct {
	CAPath       string `json:"caPath"`
	CAData       []byte `json:"caData"`
	OIDCIssuer   string `json:"oidcIssuer"`
	SubjectEmail string `json:"subjectEmail"`
}

type pkiProbe struct {
	CARootsPath         string `json:"caRootsPath"`
	CARootsData         []byte `json:"caRootsData"`
	CAIntermediatesPath string `json:"caIntermediatesPath"`
	CAIntermediatesData []byte `json:"caIntermediatesData"`
	SubjectEmail        string `json:"subjectEmail"`
	SubjectHostname     string `json:"subjectHostname"`
}

// signatureRules describes the requirements that need signatures.
func signatureRules(p *PolicyFile, scope string, ref reference.Named) []SignatureRule {
	var reqs []json.RawMessage
	switch scope {
	case "default":
		reqs = p.Default
	default:
		reqs = p.Transports["docker"][scope]
	}
	var out []SignatureRule
	for _, raw := range reqs {
		var r requirementProbe
		if err := json.Unmarshal(raw, &r); err != nil {
			continue
		}
		if r.Type != "sigstoreSigned" && r.Type != "signedBy" {
			continue
		}
		out = append(out, describeRequirement(&r, ref))
	}
	return out
}

func describeRequirement(r *requirementProbe, ref reference.Named) SignatureRule {
	s := SignatureRule{Type: r.Type}
	for _, p := range append([]string{r.KeyPath}, r.KeyPaths...) {
		if p != "" {
			s.Keys = append(s.Keys, "key file "+p)
		}
	}
	if r.Type == "signedBy" {
		s.RootOfTrust = "GPGKeys"
		if len(r.KeyData) > 0 {
			s.Keys = append(s.Keys, fmt.Sprintf("inline GPG keyring %s", fingerprint(r.KeyData)))
		}
	} else {
		switch {
		case r.Fulcio != nil:
			s.RootOfTrust = PolicyTypeFulcioCAWithRekor
			s.Keys = append(s.Keys, describePEM("Fulcio CA", r.Fulcio.CAData, r.Fulcio.CAPath)...)
			s.Subject = fmt.Sprintf("OIDC issuer %s, email %s", r.Fulcio.OIDCIssuer, r.Fulcio.SubjectEmail)
		case r.PKI != nil:
			s.RootOfTrust = PolicyTypePKI
			s.Keys = append(s.Keys, describePEM("root CA", r.PKI.CARootsData, r.PKI.CARootsPath)...)
			s.Keys = append(s.Keys, describePEM("intermediate CA", r.PKI.CAIntermediatesData, r.PKI.CAIntermediatesPath)...)
			var sub []string
			if r.PKI.SubjectEmail != "" {
				sub = append(sub, "email "+r.PKI.SubjectEmail)
			}
			if r.PKI.SubjectHostname != "" {
				sub = append(sub, "hostname "+r.PKI.SubjectHostname)
			}
			s.Subject = strings.Join(sub, ", ")
		default:
			s.RootOfTrust = PolicyTypePublicKey
			s.Keys = append(s.Keys, describePEM("key", r.KeyData, "")...)
			for _, k := range r.KeyDatas {
				s.Keys = append(s.Keys, describePEM("key", k, "")...)
			}
		}
		if len(r.RekorPublicKeyData) > 0 {
			if ks := describePEM("Rekor key", r.RekorPublicKeyData, ""); len(ks) > 0 {
				s.Rekor = ks[0]
			}
		} else if r.RekorPublicKeyPath != "" {
			s.Rekor = "Rekor key file " + r.RekorPublicKeyPath
		}
	}
	id := identityJSON{Type: "matchRepoDigestOrExact"} // the runtime's default for sigstoreSigned
	if r.SignedIdentity != nil {
		id = *r.SignedIdentity
	} else if r.Type == "signedBy" {
		id = identityJSON{Type: "matchRepoDigestOrExact"}
	}
	s.Identity, s.Expects = describeIdentity(id, ref)
	return s
}

// describePEM names each PEM block of data: keys by algorithm, certificates
// by subject, each with its fingerprint.
func describePEM(what string, data []byte, path string) []string {
	if len(data) == 0 {
		if path != "" {
			return []string{what + " file " + path}
		}
		return nil
	}
	var out []string
	rest := data
	for {
		blk, r := pem.Decode(rest)
		if blk == nil {
			break
		}
		rest = r
		switch blk.Type {
		case "CERTIFICATE":
			desc := what + " certificate"
			if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
				desc += " " + c.Subject.String()
			}
			out = append(out, desc+" "+fingerprint(blk.Bytes))
		default:
			k, err := parsePublicKeyBlock(blk)
			desc := what
			if err == nil {
				desc = keyKind(k) + " " + what
			}
			der := blk.Bytes
			if blk.Type == "RSA PUBLIC KEY" {
				if rk, ok := k.(*rsa.PublicKey); ok {
					if b, err := x509.MarshalPKIXPublicKey(rk); err == nil {
						der = b
					}
				}
			}
			out = append(out, desc+" "+fingerprint(der))
		}
	}
	if len(out) == 0 {
		out = append(out, what+" (not PEM) "+fingerprint(data))
	}
	return out
}

func keyKind(k any) string {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	case asn1.ObjectIdentifier:
		return "algorithm " + k.String()
	}
	return fmt.Sprintf("%T", k)
}

// describeIdentity says what an identity rule demands, and what it means
// for ref.
func describeIdentity(id identityJSON, ref reference.Named) (rule, expects string) {
	_, digested := ref.(reference.Digested)
	exactOrRepo := func(r reference.Named) string {
		if digested {
			return "a signature for repository " + r.Name() + " with some tag or digest (the reference is by digest; a name-only identity, which cosign writes by default, is refused: use MatchRepository for those)"
		}
		return "a signature for exactly " + r.String()
	}
	switch id.Type {
	case "matchRepoDigestOrExact":
		return "matchRepoDigestOrExact", exactOrRepo(ref)
	case "matchRepository":
		return "matchRepository", "a signature for repository " + ref.Name()
	case "matchExact":
		return "matchExact", "a signature for exactly " + ref.String()
	case "exactReference":
		return "exactReference " + id.DockerReference, "a signature for exactly " + id.DockerReference
	case "exactRepository":
		return "exactRepository " + id.DockerRepository, "a signature for repository " + id.DockerRepository
	case "remapIdentity":
		rule = fmt.Sprintf("remapIdentity %s -> %s", id.Prefix, id.SignedPrefix)
		s := ref.String()
		if refMatchesIdentityPrefix(ref.Name(), id.Prefix) {
			if r, err := reference.ParseNamed(strings.Replace(s, id.Prefix, id.SignedPrefix, 1)); err == nil {
				return rule, exactOrRepo(r)
			}
			return rule, "nothing: the remapped reference does not parse"
		}
		return rule, exactOrRepo(ref) + " (the prefix does not match; no remapping)"
	}
	return id.Type, ""
}

// refMatchesIdentityPrefix is the runtime's refMatchesPrefix for
// remapIdentity, on the repository name only: equal, or followed by "/".
func refMatchesIdentityPrefix(name, prefix string) bool {
	if len(name) <= len(prefix) {
		return name == prefix
	}
	return strings.HasPrefix(name, prefix) && name[len(prefix)] == '/'
}

// ExplainWith is Explain with options: with a namespace it also answers for
// that namespace's pods.
func (n *Node) ExplainWith(input string, opt ExplainOptions) (*Explanation, error) {
	e, err := n.Explain(input)
	if err != nil || opt.Namespace == "" {
		return e, err
	}
	ref, _ := ParseImageRef(input)
	v := &NamespaceVerdict{Namespace: opt.Namespace}
	p := n.Policy
	if np, ok := n.Namespaces[opt.Namespace]; ok {
		p, v.File = np, CRIOPolicyPath(opt.Namespace)
	} else {
		e.Notes = append(e.Notes, fmt.Sprintf("namespace %s has no %s: its pods are judged by policy.json", opt.Namespace, CRIOPolicyPath(opt.Namespace)))
	}
	v.Policy = p.verdict(ref)
	v.Signatures = signatureRules(p, v.Policy.Scope, ref)
	switch {
	case e.Result == "error" || e.Result == "blocked":
		v.Result = e.Result
	case v.Policy.Allowed:
		v.Result = "pullable"
	case v.Policy.Verdict == "rejected":
		v.Result = "rejected"
	default:
		v.Result = "signature-required"
	}
	e.Namespace = v
	return e, nil
}

// explainSignatures fills the signature parts of an explanation.
func (n *Node) explainSignatures(e *Explanation, ref reference.Named) {
	e.Signatures = signatureRules(n.Policy, e.Policy.Scope, ref)
	sigstore := false
	for _, s := range e.Signatures {
		if s.Type == "sigstoreSigned" {
			sigstore = true
		}
	}
	for i := range e.PullSources {
		s := &e.PullSources[i]
		if s.Name == "" {
			continue
		}
		if phys, err := reference.ParseNamed(s.Reference); err == nil {
			s.SigstoreAttachments = n.RegistriesD.useSigstoreAttachments(phys)
		}
		if sigstore && s.Skipped == "" && s.Err == "" && !s.Blocked && !s.SigstoreAttachments {
			e.Notes = append(e.Notes, fmt.Sprintf("a sigstore signature is required, but registries.d does not enable use-sigstore-attachments for %s: a pull from there finds no signature and is refused", s.Name))
		}
	}
}
