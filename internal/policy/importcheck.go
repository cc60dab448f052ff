package policy

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// ImportTransport is how an image stream import reaches a registry, which
// decides the port a reference without one is checked against.
type ImportTransport string

// The import transports: secure (443), insecure (80), and "any", used when
// the tag's importPolicy.insecure is set, which matches entries on 80, 443 or *.
const (
	ImportSecure   ImportTransport = "secure"
	ImportInsecure ImportTransport = "insecure"
	ImportAny      ImportTransport = "any"
)

// ImportVerdict is the answer to "may an image stream import this reference".
type ImportVerdict struct {
	Reference string `json:"reference"`
	Allowed   bool   `json:"allowed"`
	// MatchedBy is the allowedRegistriesForImport entry (as host:port) that admitted it.
	MatchedBy string `json:"matchedBy,omitempty"`
	// Reason is the cluster's refusal message when not allowed.
	Reason string   `json:"reason,omitempty"`
	Notes  []string `json:"notes,omitempty"`
}

type hostPort struct{ host, port string }

func (h hostPort) String() string { return h.host + ":" + h.port }

// ExplainImport answers as the cluster's API server does for image stream
// imports: allowedRegistriesForImport (with the internal registry always
// admitted and an empty list allowing all), then the import-time blocked
// check, which refuses only a reference whose registry host is exactly a
// blocked entry's location with no mirrors.
func ExplainImport(in *Inputs, input string, transport ImportTransport) (*ImportVerdict, error) {
	ref, err := reference.ParseNormalizedNamed(input)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", input, err)
	}
	v := &ImportVerdict{Reference: ref.String()}
	var spec ImageSpec
	internal := ""
	if in.Image != nil {
		spec = in.Image.Spec
		internal = in.Image.Status.InternalRegistryHostname
	}
	var list []hostPort
	if internal != "" {
		h, p, _ := splitDomainName(internal)
		if p == "" {
			p = "443"
		}
		list = append(list, hostPort{h, p})
	}
	for _, l := range spec.AllowedRegistriesForImport {
		h, p, err := splitDomainName(l.DomainName)
		if err != nil {
			return nil, err
		}
		if p == "" {
			p = "443"
			if l.Insecure {
				p = "80"
			}
		}
		list = append(list, hostPort{h, p})
	}
	domain := reference.Domain(ref)
	host, port, _ := strings.Cut(domain, ":")
	if port == "" {
		switch transport {
		case ImportSecure:
			port = "443"
		case ImportInsecure:
			port = "80"
		}
	}
	candidates := []string{host}
	if host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io" {
		candidates = []string{"docker.io", host}
	}
	if len(spec.AllowedRegistriesForImport) == 0 {
		v.Allowed = true
		v.MatchedBy = "*:* (allowedRegistriesForImport is empty: every registry is allowed)"
	} else {
	match:
		for _, e := range list {
			for _, c := range candidates {
				if !wildcardMatch(e.host, c) {
					continue
				}
				if port == "" {
					if e.port == "80" || e.port == "443" || e.port == "*" {
						v.Allowed, v.MatchedBy = true, e.String()
						break match
					}
				} else if wildcardMatch(e.port, port) {
					v.Allowed, v.MatchedBy = true, e.String()
					break match
				}
			}
		}
		if !v.Allowed {
			quoted := make([]string, 0, 5)
			for i, e := range list {
				if i == 5 {
					break
				}
				quoted = append(quoted, fmt.Sprintf("%q", e.String()))
			}
			v.Reason = fmt.Sprintf("registry %q not allowed by whitelist: %s", domain, strings.Join(quoted, ", "))
			if len(list) > 5 {
				v.Reason += fmt.Sprintf(" … and %d more ...", len(list)-5)
			}
			return v, nil
		}
	}
	// The import-time blocked check: exact host match on a blocked entry without mirrors.
	if in.Image != nil && len(in.Image.Spec.RegistrySources.BlockedRegistries) > 0 {
		var conf RegistriesConf
		entries := mirrorEntries(in)
		editRegistries(&conf, nil, in.Image.Spec.RegistrySources.BlockedRegistries, mergeMirrorSets(entries, "digest"), mergeMirrorSets(entries, "tag"))
		for _, r := range conf.Registries {
			if r.Location == domain && r.Blocked && len(r.Mirrors) == 0 {
				v.Allowed = false
				v.MatchedBy = ""
				v.Reason = fmt.Sprintf("registry %s blocked", domain)
				return v, nil
			}
		}
		for _, b := range in.Image.Spec.RegistrySources.BlockedRegistries {
			if nestedScope(ref.Name(), b) {
				v.Notes = append(v.Notes, fmt.Sprintf("blocked scope %q covers this reference, but the cluster's import check compares whole registry hosts only, so the import is not refused (node pulls still are)", b))
			}
		}
	}
	return v, nil
}

// wildcardMatch matches s against a glob with "*" (any run) and "?" (one character).
func wildcardMatch(pattern, s string) bool {
	p, t := []rune(pattern), []rune(s)
	dp := make([]bool, len(t)+1)
	dp[0] = true
	for _, pc := range p {
		next := make([]bool, len(t)+1)
		if pc == '*' {
			next[0] = dp[0]
		}
		for j := 1; j <= len(t); j++ {
			switch pc {
			case '*':
				next[j] = next[j-1] || dp[j]
			case '?':
				next[j] = dp[j-1]
			default:
				next[j] = dp[j-1] && pc == t[j-1]
			}
		}
		dp = next
	}
	return dp[len(t)]
}
