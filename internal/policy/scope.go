package policy

import (
	"regexp"
	"strings"
)

// The grammar of scopes, sources and mirrors, as the cluster's CRD patterns
// spell it: a host (DNS labels, optional port) followed by lower-case path
// components, or — for scopes and sources only — a wildcard "*.domain".
const (
	labelPattern   = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	hostPattern    = labelPattern + `(?:\.` + labelPattern + `)*(?::[0-9]+)?`
	pathComponent  = `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
	locationRegexp = hostPattern + `(?:/` + pathComponent + `)*`
	wildcardRegexp = `\*(?:\.` + labelPattern + `)+`
)

var (
	locationRE = regexp.MustCompile(`^` + locationRegexp + `$`)
	wildcardRE = regexp.MustCompile(`^` + wildcardRegexp + `$`)
	hostnameRE = regexp.MustCompile(`^` + labelPattern + `(?:\.` + labelPattern + `)*$`)
)

// maxScopeLen is the API's MaxLength for one registrySources entry.
const maxScopeLen = 256

// ScopeKind says which list a scope came from; it picks the cluster's error wording.
type ScopeKind string

// The lists of spec.registrySources that hold scopes.
const (
	ScopeInsecure ScopeKind = "insecure"
	ScopeBlocked  ScopeKind = "blocked"
	ScopeAllowed  ScopeKind = "allowed"
)

// ValidateScope reports why s is not a valid insecure, blocked or allowed
// registry scope, in the cluster's words, or "" when it is valid. A scope is
// "host[:port][/path…]" or "*.domain"; tags, digests, empty strings and any
// other use of "*" are rejected.
func ValidateScope(kind ScopeKind, s string) string {
	bad := `invalid entry for ` + string(kind) + ` registries "` + s + `"`
	switch {
	case s == "":
		return bad + ": must not be empty"
	case len(s) > maxScopeLen:
		return bad + ": longer than 256 characters"
	case strings.Contains(s, "*"):
		// The controller's rule (IsValidRegistriesConfScope) and the CRD's: "*." then a domain, nothing else.
		if !strings.HasPrefix(s, "*.") || strings.ContainsAny(s[2:], "/@:*") || !wildcardRE.MatchString(s) {
			return bad + `: a wildcard must be "*." followed by a domain, with no port, path or further "*"`
		}
		return ""
	case strings.ContainsAny(s, "@") || hasTag(s):
		return bad + ": must be host[:port][/namespace…] without a tag or digest"
	case !locationRE.MatchString(s):
		return bad + ": must be host[:port][/namespace…] (lower-case path components)"
	}
	return ""
}

// hasTag reports whether the last path component carries ":tag".
func hasTag(s string) bool {
	i := strings.Index(s, "/")
	if i < 0 {
		return false
	}
	return strings.Contains(s[i:], ":")
}

// validSource reports whether s may be a mirror-set source (IDMS/ITMS
// "source", ICSP has no CRD pattern so the controller applies this one).
func validSource(s string) bool {
	return s != "" && len(s) <= 4096 && (wildcardRE.MatchString(s) || locationRE.MatchString(s))
}

// validMirror reports whether m may be a mirror location: never a wildcard.
func validMirror(m string) bool {
	return m != "" && len(m) <= 4096 && locationRE.MatchString(m)
}

// isWildcard reports whether scope is a "*.domain" scope.
func isWildcard(scope string) bool { return strings.HasPrefix(scope, "*.") }

// nestedScope reports whether sub is inside super, exactly as the cluster's
// ScopeIsNestedInsideScope decides it: equal; super followed by "/"; or super
// is "*.d" and the host of sub (port ignored) ends with ".d".
func nestedScope(sub, super string) bool {
	if sub == super {
		return true
	}
	if len(sub) > len(super) && strings.HasPrefix(sub, super) && sub[len(super)] == '/' {
		return true
	}
	if isWildcard(super) {
		if strings.Contains(sub, ":") {
			host := strings.Split(sub, ":")[0]
			return strings.HasSuffix(host, super[1:]) && !strings.Contains(host, "/")
		}
		return strings.HasSuffix(strings.Split(sub, "/")[0], super[1:])
	}
	return false
}

// refMatchingPrefix is the runtime's prefix match (sysregistriesv2): the
// length of the matched part of ref, or -1. Note that prefix "example.com"
// also matches "example.com:5000/…", which the runtime calls unintended.
func refMatchingPrefix(ref, prefix string) int {
	if isWildcard(prefix) {
		index := strings.Index(ref, prefix[1:])
		if index == -1 || strings.Contains(ref[:index], "/") {
			return -1
		}
		index += len(prefix) - 1
		if index == len(ref) {
			return index
		}
		switch ref[index] {
		case ':', '/', '@':
			return index
		}
		return -1
	}
	switch {
	case len(ref) < len(prefix):
		return -1
	case len(ref) == len(prefix):
		if ref == prefix {
			return len(prefix)
		}
		return -1
	default:
		if !strings.HasPrefix(ref, prefix) {
			return -1
		}
		switch ref[len(prefix)] {
		case ':', '/', '@':
			return len(prefix)
		}
		return -1
	}
}

// policyNamespaces lists the policy.json scopes that can decide for the
// repository name, most specific first, the way the runtime's docker
// transport does (DockerReferenceNamespaces): the repository and its parent
// namespaces, the host with its port, then "*.parent" domains without the port.
func policyNamespaces(name string) []string {
	var res []string
	for {
		res = append(res, name)
		i := strings.LastIndex(name, "/")
		if i == -1 {
			break
		}
		name = name[:i]
	}
	if i := strings.Index(name, ":"); i != -1 {
		name = name[:i]
	}
	for {
		i := strings.Index(name, ".")
		if i == -1 {
			break
		}
		name = name[i+1:]
		res = append(res, "*."+name)
	}
	return res
}
