package policy

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// The signature files a render writes, relative to the node root.
const (
	// RegistriesDDir is where the runtime reads per-registry signature
	// storage settings (every *.yaml file, in lexical order).
	RegistriesDDir = "etc/containers/registries.d"
	// SigstoreRegistriesPath turns on sigstore attachments for every
	// signature scope and the mirrors that serve it.
	SigstoreRegistriesPath = RegistriesDDir + "/sigstore-registries.yaml"
	// CRIOPoliciesDir holds one policy.json per namespace with an
	// ImagePolicy, named NAMESPACE.json; CRI-O uses it for that namespace's
	// pods instead of the cluster policy.json.
	CRIOPoliciesDir = "etc/crio/policies"
)

// CRIOPolicyPath is the per-namespace policy file CRI-O reads for ns.
func CRIOPolicyPath(ns string) string { return CRIOPoliciesDir + "/" + ns + ".json" }

// ClusterImagePolicy is config.openshift.io/v1 (or v1alpha1)
// ClusterImagePolicy: signature requirements for scopes, cluster-wide.
type ClusterImagePolicy struct {
	Origin     Origin          `json:"-"`
	Metadata   ObjectMeta      `json:"-"`
	APIVersion string          `json:"-"`
	Spec       ImagePolicySpec `json:"spec"`
	// Status is accepted (exported objects carry one) and ignored.
	Status json.RawMessage `json:"status,omitempty"`
}

// ImagePolicy is config.openshift.io/v1 (or v1alpha1) ImagePolicy: the
// same requirements for the pods of one namespace.
type ImagePolicy struct {
	Origin     Origin          `json:"-"`
	Metadata   ObjectMeta      `json:"-"`
	APIVersion string          `json:"-"`
	Spec       ImagePolicySpec `json:"spec"`
	// Status is accepted (exported objects carry one) and ignored.
	Status json.RawMessage `json:"status,omitempty"`
}

// ImagePolicySpec is the spec both kinds share.
type ImagePolicySpec struct {
	// Scopes are policy.json docker scopes: host[:port][/path][:tag|@digest] or *.domain.
	Scopes []string        `json:"scopes"`
	Policy SignaturePolicy `json:"policy"`
}

// SignaturePolicy is spec.policy.
type SignaturePolicy struct {
	RootOfTrust    RootOfTrust     `json:"rootOfTrust"`
	SignedIdentity *SignedIdentity `json:"signedIdentity,omitempty"`
}

// The policyType values.
const (
	PolicyTypePublicKey         = "PublicKey"
	PolicyTypeFulcioCAWithRekor = "FulcioCAWithRekor"
	PolicyTypePKI               = "PKI"
)

// RootOfTrust is spec.policy.rootOfTrust, a union on PolicyType. The
// *Data fields hold base64 of PEM, as the API's []byte fields do.
type RootOfTrust struct {
	PolicyType        string             `json:"policyType"`
	PublicKey         *PublicKeyRoot     `json:"publicKey,omitempty"`
	FulcioCAWithRekor *FulcioCAWithRekor `json:"fulcioCAWithRekor,omitempty"`
	PKI               *PKIRoot           `json:"pki,omitempty"`
}

// PublicKeyRoot is rootOfTrust.publicKey.
type PublicKeyRoot struct {
	KeyData      string `json:"keyData"`
	RekorKeyData string `json:"rekorKeyData,omitempty"`
}

// FulcioCAWithRekor is rootOfTrust.fulcioCAWithRekor.
type FulcioCAWithRekor struct {
	FulcioCAData  string        `json:"fulcioCAData"`
	RekorKeyData  string        `json:"rekorKeyData"`
	FulcioSubject FulcioSubject `json:"fulcioSubject"`
}

// FulcioSubject is fulcioCAWithRekor.fulcioSubject.
type FulcioSubject struct {
	OIDCIssuer  string `json:"oidcIssuer"`
	SignedEmail string `json:"signedEmail"`
}

// PKIRoot is rootOfTrust.pki.
type PKIRoot struct {
	CARootsData           string         `json:"caRootsData"`
	CAIntermediatesData   string         `json:"caIntermediatesData,omitempty"`
	PKICertificateSubject PKICertSubject `json:"pkiCertificateSubject"`
}

// PKICertSubject is pki.pkiCertificateSubject: at least one of the two.
type PKICertSubject struct {
	Email    string `json:"email,omitempty"`
	Hostname string `json:"hostname,omitempty"`
}

// The signedIdentity.matchPolicy values.
const (
	MatchRepoDigestOrExact = "MatchRepoDigestOrExact"
	MatchRepository        = "MatchRepository"
	ExactRepository        = "ExactRepository"
	RemapIdentity          = "RemapIdentity"
)

// SignedIdentity is spec.policy.signedIdentity, a union on MatchPolicy.
type SignedIdentity struct {
	MatchPolicy     string               `json:"matchPolicy"`
	ExactRepository *ExactRepositoryRule `json:"exactRepository,omitempty"`
	RemapIdentity   *RemapIdentityRule   `json:"remapIdentity,omitempty"`
}

// ExactRepositoryRule is signedIdentity.exactRepository.
type ExactRepositoryRule struct {
	Repository string `json:"repository"`
}

// RemapIdentityRule is signedIdentity.remapIdentity.
type RemapIdentityRule struct {
	Prefix       string `json:"prefix"`
	SignedPrefix string `json:"signedPrefix"`
}

// The API's limits.
const (
	maxPolicyScopes   = 256
	maxPolicyScopeLen = 512
	maxKeyDataLen     = 8192
)

var (
	// policyScopeRE is the CRD's ImageScope rule without a wildcard: a
	// domain with a dot (or localhost), optional port, lower-case path,
	// then an optional tag and an optional digest.
	policyScopeRE = regexp.MustCompile(`^((((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+(?::[0-9]+)?)|(localhost(?::[0-9]+)?))(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?)(?::([\w][\w.-]{0,127}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}))?$`)
	// identityPrefixRE is the CRD's IdentityRepositoryPrefix rule: like a
	// scope without tag or digest.
	identityPrefixRE = regexp.MustCompile(`^(((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+(?::[0-9]+)?)|(localhost(?::[0-9]+)?))(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?$`)
	identityTagRE    = regexp.MustCompile(`.*:([\w][\w.-]{0,127})$`)
	localhostPortRE  = regexp.MustCompile(`^(localhost:[0-9]+)$`)
	emailRE          = regexp.MustCompile(`^\S+@\S+$`)
	dns1123SubRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	dns1123LabelRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// ValidatePolicyScope reports why s is not a valid ClusterImagePolicy or
// ImagePolicy scope, in the API server's words, or "" when it is valid.
func ValidatePolicyScope(s string) string {
	if s == "" {
		return "Required value: a scope must not be empty"
	}
	if len(s) > maxPolicyScopeLen {
		return fmt.Sprintf("Too long: may not be more than %d bytes", maxPolicyScopeLen)
	}
	host := strings.Split(s, "/")[0]
	if parts := strings.Split(host, "."); len(parts) == 1 && strings.Split(parts[0], ":")[0] != "localhost" {
		return fmt.Sprintf("invalid image scope %q: invalid image scope format, scope must contain a fully qualified domain name or 'localhost'", s)
	}
	if strings.Contains(s, "*") {
		if !wildcardRE.MatchString(s) {
			return fmt.Sprintf("invalid image scope %q: invalid image scope with wildcard, a wildcard can only be at the start of the domain and is only supported for subdomain matching, not path matching", s)
		}
		return ""
	}
	if !policyScopeRE.MatchString(s) {
		return fmt.Sprintf("invalid image scope %q: invalid repository namespace or image specification in the image scope", s)
	}
	return ""
}

// validateIdentityPrefix is the CRD's IdentityRepositoryPrefix rules.
func validateIdentityPrefix(s string) string {
	switch {
	case s == "":
		return "Required value"
	case len(s) > 512:
		return "Too long: may not be more than 512 bytes"
	case identityTagRE.MatchString(s) && !localhostPortRE.MatchString(s):
		return fmt.Sprintf("%q: invalid repository or prefix in the signedIdentity, should not include the tag or digest", s)
	case !identityPrefixRE.MatchString(s):
		return fmt.Sprintf("%q: invalid repository or prefix in the signedIdentity. The repository or prefix must start with 'localhost' or a valid '.' separated domain; path components are lower-case letters and digits separated by one period, one or two underscores or hyphens", s)
	}
	return ""
}

// signaturePolicyObject is what validation and rendering read from either kind.
type signaturePolicyObject struct {
	kind      string // "ClusterImagePolicy" or "ImagePolicy"
	origin    Origin
	name      string
	namespace string
	spec      *ImagePolicySpec
}

func (o signaturePolicyObject) String() string {
	if o.namespace != "" {
		return fmt.Sprintf("%s %s/%s", o.kind, o.namespace, o.name)
	}
	return fmt.Sprintf("%s %s", o.kind, o.name)
}

func signatureObjects(in *Inputs) []signaturePolicyObject {
	var os []signaturePolicyObject
	for i := range in.ClusterImagePolicies {
		p := &in.ClusterImagePolicies[i]
		os = append(os, signaturePolicyObject{"ClusterImagePolicy", p.Origin, p.Metadata.Name, "", &p.Spec})
	}
	for i := range in.ImagePolicies {
		p := &in.ImagePolicies[i]
		os = append(os, signaturePolicyObject{"ImagePolicy", p.Origin, p.Metadata.Name, p.Metadata.Namespace, &p.Spec})
	}
	return os
}

// validateSignaturePolicies applies the API server's rules to every
// ClusterImagePolicy and ImagePolicy.
func validateSignaturePolicies(in *Inputs) []Problem {
	var ps []Problem
	for _, o := range signatureObjects(in) {
		add := func(field, format string, args ...any) {
			ps = append(ps, Problem{Origin: o.origin, Field: field, Message: fmt.Sprintf(format, args...)})
		}
		if o.kind == "ImagePolicy" {
			switch {
			case o.namespace == "":
				add("metadata.namespace", "ImagePolicy is namespaced: metadata.namespace is required (it names %s)", CRIOPolicyPath("NAMESPACE"))
			case len(o.namespace) > 63 || !dns1123LabelRE.MatchString(o.namespace):
				add("metadata.namespace", "invalid namespace %q: must be a DNS label (lower-case letters, digits and '-', at most 63)", o.namespace)
			}
		}
		s := o.spec
		if len(s.Scopes) == 0 {
			add("spec.scopes", "Required value: at least one scope")
		}
		if len(s.Scopes) > maxPolicyScopes {
			add("spec.scopes", "Too many: %d: must have at most %d items", len(s.Scopes), maxPolicyScopes)
		}
		seen := map[string]bool{}
		for i, sc := range s.Scopes {
			f := fmt.Sprintf("spec.scopes[%d]", i)
			if msg := ValidatePolicyScope(sc); msg != "" {
				add(f, "%s", msg)
			} else if seen[sc] {
				add(f, "Duplicate value: %q", sc)
			}
			seen[sc] = true
		}
		ps = append(ps, validateRootOfTrust(o, &s.Policy.RootOfTrust)...)
		if id := s.Policy.SignedIdentity; id != nil {
			const f = "spec.policy.signedIdentity"
			switch id.MatchPolicy {
			case MatchRepoDigestOrExact, MatchRepository, ExactRepository, RemapIdentity:
			case "":
				add(f+".matchPolicy", "Required value: one of MatchRepoDigestOrExact, MatchRepository, ExactRepository, RemapIdentity")
			default:
				add(f+".matchPolicy", "Unsupported value: %q: supported values: \"MatchRepoDigestOrExact\", \"MatchRepository\", \"ExactRepository\", \"RemapIdentity\"", id.MatchPolicy)
			}
			if (id.MatchPolicy == ExactRepository) != (id.ExactRepository != nil) {
				add(f, "exactRepository is required when matchPolicy is ExactRepository, and forbidden otherwise")
			}
			if (id.MatchPolicy == RemapIdentity) != (id.RemapIdentity != nil) {
				add(f, "remapIdentity is required when matchPolicy is RemapIdentity, and forbidden otherwise")
			}
			if r := id.ExactRepository; r != nil {
				if msg := validateIdentityPrefix(r.Repository); msg != "" {
					add(f+".exactRepository.repository", "%s", msg)
				}
			}
			if r := id.RemapIdentity; r != nil {
				if msg := validateIdentityPrefix(r.Prefix); msg != "" {
					add(f+".remapIdentity.prefix", "%s", msg)
				}
				if msg := validateIdentityPrefix(r.SignedPrefix); msg != "" {
					add(f+".remapIdentity.signedPrefix", "%s", msg)
				}
			}
		}
	}
	return ps
}

func validateRootOfTrust(o signaturePolicyObject, r *RootOfTrust) []Problem {
	var ps []Problem
	const f = "spec.policy.rootOfTrust"
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Origin: o.origin, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch r.PolicyType {
	case PolicyTypePublicKey, PolicyTypeFulcioCAWithRekor, PolicyTypePKI:
	case "":
		add(f+".policyType", "Required value: one of PublicKey, FulcioCAWithRekor, PKI")
	default:
		add(f+".policyType", "Unsupported value: %q: supported values: \"PublicKey\", \"FulcioCAWithRekor\", \"PKI\"", r.PolicyType)
	}
	if (r.PolicyType == PolicyTypePublicKey) != (r.PublicKey != nil) {
		add(f, "publicKey is required when policyType is PublicKey, and forbidden otherwise")
	}
	if (r.PolicyType == PolicyTypeFulcioCAWithRekor) != (r.FulcioCAWithRekor != nil) {
		add(f, "fulcioCAWithRekor is required when policyType is FulcioCAWithRekor, and forbidden otherwise")
	}
	if (r.PolicyType == PolicyTypePKI) != (r.PKI != nil) {
		add(f, "pki is required when policyType is PKI, and forbidden otherwise")
	}
	data := func(field, v string, required bool, check func([]byte) error) {
		if v == "" {
			if required {
				add(field, "Required value: base64 of PEM data")
			}
			return
		}
		if len(v) > maxKeyDataLen {
			add(field, "Too long: may not be more than %d bytes", maxKeyDataLen)
			return
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			add(field, "not base64: %v (the API stores the PEM file base64-encoded)", err)
			return
		}
		if err := check(b); err != nil {
			add(field, "%v", err)
		}
	}
	if p := r.PublicKey; p != nil {
		data(f+".publicKey.keyData", p.KeyData, true, checkPublicKeyPEM)
		data(f+".publicKey.rekorKeyData", p.RekorKeyData, false, checkPublicKeyPEM)
	}
	if p := r.FulcioCAWithRekor; p != nil {
		data(f+".fulcioCAWithRekor.fulcioCAData", p.FulcioCAData, true, checkCertPEM)
		data(f+".fulcioCAWithRekor.rekorKeyData", p.RekorKeyData, true, checkPublicKeyPEM)
		iss := p.FulcioSubject.OIDCIssuer
		switch {
		case iss == "":
			add(f+".fulcioCAWithRekor.fulcioSubject.oidcIssuer", "Required value: the OIDC issuer URL")
		case len(iss) > 2048:
			add(f+".fulcioCAWithRekor.fulcioSubject.oidcIssuer", "Too long: may not be more than 2048 bytes")
		case !isURL(iss):
			add(f+".fulcioCAWithRekor.fulcioSubject.oidcIssuer", "%q: oidcIssuer must be a valid URL", iss)
		}
		checkEmail(add, f+".fulcioCAWithRekor.fulcioSubject.signedEmail", p.FulcioSubject.SignedEmail, true)
	}
	if p := r.PKI; p != nil {
		data(f+".pki.caRootsData", p.CARootsData, true, checkCertPEM)
		data(f+".pki.caIntermediatesData", p.CAIntermediatesData, false, checkCertPEM)
		sub := p.PKICertificateSubject
		sf := f + ".pki.pkiCertificateSubject"
		if sub.Email == "" && sub.Hostname == "" {
			add(sf, "at least one of email or hostname must be set in pkiCertificateSubject")
		}
		checkEmail(add, sf+".email", sub.Email, false)
		if h := sub.Hostname; h != "" {
			bare := strings.TrimPrefix(h, "*.")
			if len(h) > 253 || !dns1123SubRE.MatchString(bare) {
				add(sf+".hostname", "%q: hostname should be a valid dns 1123 subdomain name, optionally prefixed by '*.'. It should consist only of lowercase alphanumeric characters, hyphens, periods and the optional preceding asterisk.", h)
			}
		}
	}
	return ps
}

func checkEmail(add func(string, string, ...any), field, v string, required bool) {
	switch {
	case v == "" && required:
		add(field, "Required value: an email address")
	case v == "":
	case len(v) > 320:
		add(field, "Too long: may not be more than 320 bytes")
	case !emailRE.MatchString(v):
		add(field, "%q: invalid email address", v)
	}
}

// isURL is CEL's isURL: an absolute URI or an absolute path.
func isURL(s string) bool {
	_, err := url.ParseRequestURI(s)
	return err == nil
}

// checkCertPEM accepts one or more PEM certificates that parse, and nothing else.
func checkCertPEM(b []byte) error {
	if err := checkOnlyPEM(b); err != nil {
		return err
	}
	return checkPEM(b)
}

// checkOnlyPEM refuses bytes outside PEM blocks other than white space, as
// the API's startsWith/endsWith rules do.
func checkOnlyPEM(b []byte) error {
	rest := b
	for {
		blk, r := pem.Decode(rest)
		if blk == nil {
			break
		}
		rest = r
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return fmt.Errorf("data outside PEM blocks (the decoded value must be a PEM file)")
	}
	return nil
}

// checkPublicKeyPEM accepts exactly one PEM public key that parses.
// SubjectPublicKeyInfo with an algorithm Go does not know (ML-DSA, for
// one) is accepted when its structure is sound: the runtime may know it.
func checkPublicKeyPEM(b []byte) error {
	if err := checkOnlyPEM(b); err != nil {
		return err
	}
	blk, rest := pem.Decode(b)
	if blk == nil {
		return fmt.Errorf("no PEM public key found")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return fmt.Errorf("more than one PEM block: a key field holds one public key")
	}
	_, err := parsePublicKeyBlock(blk)
	return err
}

func parsePublicKeyBlock(blk *pem.Block) (any, error) {
	switch blk.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err == nil {
			return k, nil
		}
		var spki struct {
			Algorithm pkix.AlgorithmIdentifier
			PublicKey asn1.BitString
		}
		if rest, err2 := asn1.Unmarshal(blk.Bytes, &spki); err2 == nil && len(rest) == 0 && strings.Contains(err.Error(), "unknown public key algorithm") {
			return spki.Algorithm.Algorithm, nil
		}
		return nil, fmt.Errorf("public key does not parse: %v", err)
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key does not parse: %v", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("PEM block of type %s is not a PUBLIC KEY", blk.Type)
}

// fingerprint is "sha256:" and the hex SHA-256 of DER bytes (for a key,
// its SubjectPublicKeyInfo; for a certificate, the whole certificate), the
// value `openssl … -outform DER | sha256sum` prints.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}
