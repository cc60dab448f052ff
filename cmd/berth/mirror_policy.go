package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/noderoot"
	"github.com/berth-registry/berth/internal/policy"
)

// warnSignaturesLeftBehind: with --no-referrers an image's signatures stay
// at the source, so a node whose signature policy (a ClusterImagePolicy, or
// an ImagePolicy for some namespace) requires them for the image's original
// reference will refuse the mirrored copy. Each such image is named with the
// scope and the policy file that would refuse it.
func warnSignaturesLeftBehind(w io.Writer, root string, jobs []mirror.Job) error {
	node, err := noderoot.Load(root)
	if err != nil {
		return fmt.Errorf("--policy-root %s: %w", root, err)
	}
	namespaces := make([]string, 0, len(node.Namespaces))
	for ns := range node.Namespaces {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	for _, j := range jobs {
		src := jobSource(j)
		if strings.HasPrefix(src, "oci:") {
			continue
		}
		e, err := node.Explain(src)
		if err != nil {
			continue // not a reference a node would judge
		}
		if rule, ok := sigstoreRule(e.Signatures); ok {
			fmt.Fprintf(w, "warning: --no-referrers leaves the signatures of %s behind, but %s requires sigstore signatures for it (scope %q, root of trust %s, signedIdentity %s): nodes will refuse the mirrored image\n",
				src, policy.PolicyJSONPath, e.Policy.Scope, rule.RootOfTrust, rule.Identity)
		}
		for _, ns := range namespaces {
			e, err := node.ExplainWith(src, policy.ExplainOptions{Namespace: ns})
			if err != nil || e.Namespace == nil {
				continue
			}
			if rule, ok := sigstoreRule(e.Namespace.Signatures); ok && len(e.Signatures) == 0 {
				fmt.Fprintf(w, "warning: --no-referrers leaves the signatures of %s behind, but %s requires sigstore signatures for it in namespace %s (scope %q, root of trust %s, signedIdentity %s): that namespace's pods will refuse the mirrored image\n",
					src, e.Namespace.File, ns, e.Namespace.Policy.Scope, rule.RootOfTrust, rule.Identity)
			}
		}
	}
	return nil
}

func sigstoreRule(rules []policy.SignatureRule) (policy.SignatureRule, bool) {
	for _, r := range rules {
		if r.Type == "sigstoreSigned" {
			return r, true
		}
	}
	return policy.SignatureRule{}, false
}

// jobSource is the reference a node pulls for a job's image: the source as
// recorded (a directory's records keep the original registry reference).
func jobSource(j mirror.Job) string {
	if j.From != "" {
		return j.From
	}
	host := j.Source.Name()
	s := host + "/" + j.SrcRepo
	if strings.HasPrefix(host, "oci:") {
		s = host + ":" + j.SrcRepo
	}
	switch {
	case j.SrcRef == "":
	case strings.Contains(j.SrcRef, ":"):
		s += "@" + j.SrcRef
	default:
		s += ":" + j.SrcRef
	}
	return s
}
