package noderoot

import (
	"path/filepath"
	"strings"
)

// Paths a node's runtime reads, relative to the root, beside the ones
// internal/policy renders.
const (
	// RegistriesConfDir holds registries.conf drop-ins, read in name order.
	RegistriesConfDir = "etc/containers/registries.conf.d"
	// RegistriesDDir holds registries.d: where signatures are looked up
	// (use-sigstore-attachments, lookaside).
	RegistriesDDir = "etc/containers/registries.d"
	// crioPoliciesDir holds CRI-O's per-namespace policies, NAMESPACE.json
	// (CRI-O's signature_policy_dir).
	crioPoliciesDir        = "etc/crio/policies"
	sigstoreRegistriesPath = RegistriesDDir + "/sigstore-registries.yaml"
)

// File is the path of rel (slash-separated) under root.
func File(root, rel string) string {
	return filepath.Join(readable(root), filepath.FromSlash(rel))
}

// NamespacePolicy is the path of a namespace's CRI-O policy under root
// (CRI-O uses it instead of policy.json for that namespace's pods when it
// exists).
func NamespacePolicy(root, namespace string) string {
	return File(root, crioPoliciesDir+"/"+strings.TrimSpace(namespace)+".json")
}
