package noderoot

import (
	"path/filepath"

	"github.com/berth-registry/berth/internal/policy"
)

// RegistriesConfDir holds registries.conf drop-ins, read in name order
// (relative to the root, like the paths internal/policy names).
const RegistriesConfDir = "etc/containers/registries.conf.d"

// File is the path of rel (slash-separated) under root.
func File(root, rel string) string {
	return filepath.Join(readable(root), filepath.FromSlash(rel))
}

// NamespacePolicy is the path of a namespace's CRI-O policy under root
// (CRI-O uses it instead of policy.json for that namespace's pods when it
// exists).
func NamespacePolicy(root, namespace string) string {
	return File(root, policy.CRIOPolicyPath(namespace))
}
