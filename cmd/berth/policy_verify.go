package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/nodeverify"
)

func newPolicyVerifyCmd() *cobra.Command {
	var (
		o      nodeverify.Options
		output string
	)
	cmd := &cobra.Command{
		Use:   "verify --root DIR [--namespace NS] IMAGE_REF...",
		Short: "Fetch each image and its signatures as a node would, and say whether the node would accept it",
		Long: `Verify does the I/O explain does not: for each image reference it resolves
the reference through the root's registries.conf (mirrors first, blocked and
insecure entries as written), fetches the manifest from the first pull source
that serves it — for a manifest list, the instance for --os/--arch/--variant —
fetches its signatures where the runtime would (sigstore attachments, the
"sha256-<hex>.sig" tags, for scopes registries.d marks
use-sigstore-attachments), and evaluates the root's policy.json. With
--namespace NS it uses etc/crio/policies/NS.json instead when the root has
one, as CRI-O does for a pod in that namespace (an ImagePolicy's rules).

The verdict is the node's by construction: it is made by the container
runtime's own library (go.podman.io/image/v5, what CRI-O and podman link),
with the same calls a pull makes before it reads a layer, on the root's
files. A refusal is printed in that library's words, with the stage that
refused: reference (does not parse), fetch (no pull source served it) or
policy (fetched, and the policy refused it or its signatures).

Only manifests and signatures are fetched, never layers. The exit code is 1
when any image is refused.

  berth policy verify --root node-root quay.io/openshift-release-dev/ocp-release@sha256:…
  berth policy verify --root node-root --namespace team-a -o json registry.example.com/team-a/app:v1`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output must be text or json, not %q", output)
			}
			if o.Root == "" {
				return errors.New("--root DIR is required (a node root written by berth policy render)")
			}
			verdicts, err := nodeverify.Verify(cmd.Context(), o, args)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			refused := 0
			for _, v := range verdicts {
				if !v.Accepted {
					refused++
				}
			}
			if output == "json" {
				if err := writeJSON(w, verdicts); err != nil {
					return err
				}
			} else {
				for _, v := range verdicts {
					if v.Accepted {
						fmt.Fprintf(w, "%s: accepted (%s, by %s)\n", v.Reference, v.Digest, v.Policy)
					} else {
						fmt.Fprintf(w, "%s: refused at %s (by %s): %s\n", v.Reference, v.Stage, v.Policy, v.Reason)
					}
				}
			}
			if refused > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d image(s) refused", refused, len(verdicts))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Root, "root", "", "node root written by berth policy render")
	cmd.Flags().StringVar(&o.Namespace, "namespace", "", "the pod's namespace: judge by etc/crio/policies/NS.json when the root has one (an ImagePolicy in NS)")
	cmd.Flags().StringVar(&o.AuthFile, "authfile", "", "registry credentials (containers-auth.json or a Docker config.json, such as the cluster's pull secret); default: the runtime library's usual lookup")
	cmd.Flags().StringVar(&o.OS, "os", "linux", "the node's OS, to choose from a manifest list")
	cmd.Flags().StringVar(&o.Arch, "arch", "", "the node's architecture, to choose from a manifest list (default: this machine's)")
	cmd.Flags().StringVar(&o.Variant, "variant", "", "the node's architecture variant, to choose from a manifest list")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
