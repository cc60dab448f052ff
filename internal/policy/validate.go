package policy

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"

	"github.com/distribution/reference"
)

// maxScopes is the API's MaxItems for each registrySources list.
const maxScopes = 1024

// Validate returns every problem with the inputs, in input order. Render
// refuses inputs with any problem, so a malformed input never writes a file.
func Validate(in *Inputs) []Problem {
	var ps []Problem
	add := func(o Origin, field, format string, args ...any) {
		ps = append(ps, Problem{Origin: o, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if in.ReleaseImage != "" {
		if _, err := reference.ParseNamed(in.ReleaseImage); err != nil {
			add(Origin{}, "--release-image", "cannot parse release image %q: %v (it must be fully qualified, e.g. quay.io/openshift-release-dev/ocp-release@sha256:…)", in.ReleaseImage, err)
		}
	}
	if img := in.Image; img != nil {
		o := img.Origin
		rs := img.Spec.RegistrySources
		lists := []struct {
			kind  ScopeKind
			field string
			items []string
		}{
			{ScopeInsecure, "spec.registrySources.insecureRegistries", rs.InsecureRegistries},
			{ScopeBlocked, "spec.registrySources.blockedRegistries", rs.BlockedRegistries},
			{ScopeAllowed, "spec.registrySources.allowedRegistries", rs.AllowedRegistries},
		}
		for _, l := range lists {
			if len(l.items) > maxScopes {
				add(o, l.field, "has %d items; at most %d are allowed", len(l.items), maxScopes)
			}
			for i, s := range l.items {
				if msg := ValidateScope(l.kind, s); msg != "" {
					add(o, fmt.Sprintf("%s[%d]", l.field, i), "%s", msg)
				}
			}
		}
		if len(rs.BlockedRegistries) > 0 && len(rs.AllowedRegistries) > 0 {
			add(o, "spec.registrySources", "Only one of blockedRegistries or allowedRegistries may be set")
		}
		seen := map[string]bool{}
		for i, h := range rs.ContainerRuntimeSearchRegistries {
			f := fmt.Sprintf("spec.registrySources.containerRuntimeSearchRegistries[%d]", i)
			switch {
			case !hostnameRE.MatchString(h) || len(h) > 253:
				add(o, f, "invalid search registry %q: must be a hostname (no port, path or wildcard)", h)
			case seen[h]:
				add(o, f, "duplicate value %q", h)
			}
			seen[h] = true
		}
		for i, l := range img.Spec.AllowedRegistriesForImport {
			f := fmt.Sprintf("spec.allowedRegistriesForImport[%d].domainName", i)
			if _, _, err := splitDomainName(l.DomainName); err != nil {
				add(o, f, "%v", err)
			}
		}
		if h := img.Status.InternalRegistryHostname; h != "" {
			if _, _, err := splitDomainName(h); err != nil || strings.Contains(h, "*") {
				add(o, "status.internalRegistryHostname", "invalid hostname %q", h)
			}
		}
	}
	ps = append(ps, validateMirrorSets(in)...)
	ps = append(ps, validateCAs(in)...)
	ps = append(ps, validateSignaturePolicies(in)...)
	if len(ps) == 0 {
		// Scope conflicts are judged against the lists the render derives,
		// which only valid inputs have.
		ps = append(ps, signatureScopeConflicts(in)...)
	}
	for i := range ps {
		ps[i] = in.locate(ps[i])
	}
	// Report in input order: file, then document, then line.
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Origin, ps[j].Origin
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Doc != b.Doc {
			return a.Doc < b.Doc
		}
		return a.Line < b.Line
	})
	return ps
}

// mirrorEntry is one mirror-set entry from any of the three kinds, with
// where it came from.
type mirrorEntry struct {
	origin Origin
	field  string
	kind   string // "digest" or "tag"
	set    MirrorSet
	icsp   bool
}

// mirrorEntries lists every entry in the cluster's order: IDMS, then ICSP
// (digest sets), then ITMS (tag sets).
func mirrorEntries(in *Inputs) []mirrorEntry {
	var es []mirrorEntry
	for _, o := range in.IDMSs {
		for i, s := range o.Spec.ImageDigestMirrors {
			es = append(es, mirrorEntry{o.Origin, fmt.Sprintf("spec.imageDigestMirrors[%d]", i), "digest", s, false})
		}
	}
	for _, o := range in.ICSPs {
		for i, s := range o.Spec.RepositoryDigestMirrors {
			es = append(es, mirrorEntry{o.Origin, fmt.Sprintf("spec.repositoryDigestMirrors[%d]", i), "digest", MirrorSet{Source: s.Source, Mirrors: s.Mirrors}, true})
		}
	}
	for _, o := range in.ITMSs {
		for i, s := range o.Spec.ImageTagMirrors {
			es = append(es, mirrorEntry{o.Origin, fmt.Sprintf("spec.imageTagMirrors[%d]", i), "tag", s, false})
		}
	}
	return es
}

func effectivePolicy(p string) string {
	if p == "" {
		return AllowContactingSource
	}
	return p
}

func validateMirrorSets(in *Inputs) []Problem {
	var ps []Problem
	add := func(e mirrorEntry, field, format string, args ...any) {
		ps = append(ps, Problem{Origin: e.origin, Field: e.field + field, Message: fmt.Sprintf(format, args...)})
	}
	type firstPolicy struct {
		policy string
		e      mirrorEntry
	}
	policies := map[string]firstPolicy{}
	for _, e := range mirrorEntries(in) {
		s := e.set
		if !validSource(s.Source) {
			add(e, ".source", "invalid format for source %q", s.Source)
		}
		seen := map[string]bool{}
		for j, m := range s.Mirrors {
			if !validMirror(m) {
				add(e, fmt.Sprintf(".mirrors[%d]", j), "invalid format for mirror %q", m)
			} else if seen[m] && !e.icsp {
				// IDMS/ITMS mirrors are a listType=set: the API refuses duplicates.
				add(e, fmt.Sprintf(".mirrors[%d]", j), "duplicate value %q", m)
			}
			seen[m] = true
		}
		switch s.MirrorSourcePolicy {
		case "", NeverContactSource, AllowContactingSource:
		default:
			add(e, ".mirrorSourcePolicy", "unsupported value %q: must be NeverContactSource or AllowContactingSource", s.MirrorSourcePolicy)
		}
		pol := effectivePolicy(s.MirrorSourcePolicy)
		if pol == NeverContactSource && seen[s.Source] {
			add(e, ".mirrorSourcePolicy", "cannot set mirrorSourcePolicy: NeverContactSource if the source %q is one of the mirrors", s.Source)
		}
		if f, ok := policies[s.Source]; ok && f.policy != pol {
			add(e, ".mirrorSourcePolicy", "conflicting mirrorSourcePolicy is set for the same source %q in imagedigestmirrorsets, imagetagmirrorsets, or imagecontentsourcepolicies (%s here, %s in %s %s)", s.Source, pol, f.policy, f.e.origin, f.e.field)
		} else if !ok {
			policies[s.Source] = firstPolicy{pol, e}
		}
	}
	return ps
}

// splitDomainName splits an allowedRegistriesForImport domainName into host
// and port ("" when absent).
func splitDomainName(d string) (host, port string, err error) {
	if d == "" {
		return "", "", fmt.Errorf("domainName must not be empty")
	}
	parts := strings.Split(d, ":")
	switch len(parts) {
	case 1:
		host = parts[0]
	case 2:
		host, port = parts[0], parts[1]
		if port == "" {
			return "", "", fmt.Errorf("invalid domainName %q: empty port", d)
		}
	default:
		return "", "", fmt.Errorf("invalid domainName %q: too many colons", d)
	}
	if host == "" || strings.ContainsAny(d, "/@ ") {
		return "", "", fmt.Errorf("invalid domainName %q: must be host or host:port (wildcards * and ? allowed)", d)
	}
	return host, port, nil
}

// caKeyRE is a ConfigMap key naming a registry: "host" or "host..port".
var caKeyRE = makeCAKeyRE()

func makeCAKeyRE() func(string) bool {
	return func(k string) bool {
		host, port, found := strings.Cut(k, "..")
		if !hostnameRE.MatchString(host) || len(host) > 253 {
			return false
		}
		if found {
			if port == "" || len(port) > 5 {
				return false
			}
			for _, c := range port {
				if c < '0' || c > '9' {
					return false
				}
			}
		}
		return true
	}
}

// trustedCAMaps returns the ConfigMaps whose CAs reach the node: the one
// named by spec.additionalTrustedCA (namespace openshift-config) and the
// managed image-registry-ca (openshift-config-managed) when supplied.
func trustedCAMaps(in *Inputs) (user *ConfigMap, managed *ConfigMap) {
	name := ""
	if in.Image != nil {
		name = in.Image.Spec.AdditionalTrustedCA.Name
	}
	for i := range in.ConfigMaps {
		cm := &in.ConfigMaps[i]
		ns := cm.Metadata.Namespace
		switch {
		case name != "" && cm.Metadata.Name == name && (ns == "" || ns == "openshift-config"):
			user = cm
		case cm.Metadata.Name == "image-registry-ca" && (ns == "" || ns == "openshift-config-managed"):
			managed = cm
		}
	}
	return user, managed
}

// caBundle decodes one ConfigMap value the cluster's way: a data value that
// decodes as base64 is decoded, otherwise used as is.
func caBundle(v string) []byte {
	if b, err := base64.StdEncoding.DecodeString(v); err == nil {
		return b
	}
	return []byte(v)
}

func validateCAs(in *Inputs) []Problem {
	var ps []Problem
	user, managed := trustedCAMaps(in)
	for _, cm := range []*ConfigMap{user, managed} {
		if cm == nil {
			continue
		}
		check := func(field, key string, pemBytes []byte) {
			if !caKeyRE(key) {
				ps = append(ps, Problem{cm.Origin, field, fmt.Sprintf("key %q does not name a registry: use \"host\" or \"host..port\"", key)})
				return
			}
			if err := checkPEM(pemBytes); err != nil {
				ps = append(ps, Problem{cm.Origin, field, fmt.Sprintf("value for %q: %v", key, err)})
			}
		}
		for _, k := range sortedKeys(cm.Data) {
			check("data."+k, k, caBundle(cm.Data[k]))
		}
		for _, k := range sortedKeys(cm.BinaryData) {
			check("binaryData."+k, k, cm.BinaryData[k])
		}
	}
	return ps
}

// checkPEM accepts a bundle of one or more PEM certificates that parse.
func checkPEM(b []byte) error {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block of type %s is not a CERTIFICATE", blk.Type)
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return fmt.Errorf("certificate %d does not parse: %v", n+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no PEM certificate found")
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
