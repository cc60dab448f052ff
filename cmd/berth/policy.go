package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/noderoot"
	"github.com/berth-registry/berth/internal/policy"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Render the cluster's registry configuration into the files a node's runtime reads",
		Long: `Turn OpenShift's image configuration (Image "cluster", ImageContentSourcePolicy,
ImageDigestMirrorSet, ImageTagMirrorSet, the trusted-CA ConfigMap, and the
signature policies ClusterImagePolicy and ImagePolicy) into the
registries.conf, policy.json, registries.d, CRI-O namespace policies and
certs.d files a node's container runtime reads, following the cluster's own
rules; check such inputs; explain where a node would pull an image from,
whether its policy admits it and which signatures it requires; and verify,
by fetching the image and its signatures, that a node would accept it.`,
	}
	cmd.AddCommand(newPolicyRenderCmd(), newPolicyCheckCmd(), newPolicyExplainCmd(), newPolicyVerifyCmd(), newPolicyCacheCmd())
	return cmd
}

type policyInputFlags struct {
	releaseImage string
}

func (f *policyInputFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.releaseImage, "release-image", "", "the cluster's release payload (e.g. quay.io/openshift-release-dev/ocp-release@sha256:…); a blocked scope that covers it is dropped unless an unblocked mirror serves it")
}

func newPolicyRenderCmd() *cobra.Command {
	var (
		in         policyInputFlags
		out        string
		baseConf   string
		basePolicy string
	)
	cmd := &cobra.Command{
		Use:   "render --out DIR FILE|DIR...",
		Short: "Write registries.conf, policy.json, registries.d, CRI-O namespace policies and certs.d under a node root, and say what changed",
		Long: `Render reads YAML files (multi-document; directories are read recursively for
*.yaml, *.yml and *.json) and writes, under --out as a node root:

  etc/containers/registries.conf
  etc/containers/registries.conf.d/01-image-searchRegistries.conf  (when search registries are set)
  etc/containers/policy.json
  etc/containers/registries.d/sigstore-registries.yaml  (when a signature policy has scopes)
  etc/crio/policies/NAMESPACE.json                      (per namespace with an ImagePolicy)
  etc/docker/certs.d/HOST[:PORT]/ca.crt and etc/containers/certs.d/HOST[:PORT]/ca.crt

The inputs are config.openshift.io/v1 Image "cluster", ImageDigestMirrorSet,
ImageTagMirrorSet, operator.openshift.io/v1alpha1 ImageContentSourcePolicy,
a v1 ConfigMap of registry CAs, and the signature policies
config.openshift.io/v1 (or v1alpha1) ClusterImagePolicy and ImagePolicy:

  apiVersion: config.openshift.io/v1
  kind: ClusterImagePolicy
  metadata: {name: apps}
  spec:
    scopes: [registry.example.com/apps]       # repository, registry or *.domain
    policy:
      rootOfTrust:
        policyType: PublicKey                 # or FulcioCAWithRekor, PKI
        publicKey: {keyData: <base64 of the PEM public key>}
      signedIdentity: {matchPolicy: MatchRepository}  # or MatchRepoDigestOrExact (the default), ExactRepository, RemapIdentity

cosign writes only the repository into a signature, which
MatchRepoDigestOrExact and RemapIdentity never accept: use MatchRepository or
ExactRepository for images cosign signed with its default identity.

Each ClusterImagePolicy scope becomes a sigstoreSigned requirement in
policy.json and a use-sigstore-attachments entry in registries.d (so the
runtime fetches signatures from the registry and from its mirrors). An
ImagePolicy (namespaced, same spec) adds its scopes to that namespace's
etc/crio/policies/NAMESPACE.json; a ClusterImagePolicy scope equal to or
covering an ImagePolicy scope wins, and the ImagePolicy scope is dropped
with a warning.

The whole root is replaced at once: files are written to a directory beside
--out and swapped into place, so a failed render leaves the old root intact and
a malformed input writes nothing. It then prints what changed against the
previous root (or the stock files) and whether a node would reload CRI-O,
drain, or reboot to apply it.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out DIR is required")
			}
			inputs, err := loadPolicyInputs(args, in.releaseImage)
			if err != nil {
				return err
			}
			base, err := loadBase(baseConf, basePolicy)
			if err != nil {
				return err
			}
			r, err := policy.Render(inputs, base)
			if err != nil {
				return err
			}
			old, err := noderoot.Previous(out, base)
			if err != nil {
				return err
			}
			if err := noderoot.Write(out, r.Files); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "rendered %s:\n", out)
			fmt.Fprint(w, policy.Summarize(old, r.Files))
			for _, warn := range r.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", warn)
			}
			return nil
		},
	}
	in.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "node root to write (replaced as a whole; must be empty, absent, or a previous render)")
	cmd.Flags().StringVar(&baseConf, "base-registries-conf", "", "registries.conf to start from instead of the node's stock one")
	cmd.Flags().StringVar(&basePolicy, "base-policy", "", "policy.json to start from instead of the node's stock one")
	return cmd
}

func newPolicyCheckCmd() *cobra.Command {
	var in policyInputFlags
	cmd := &cobra.Command{
		Use:   "check FILE|DIR...",
		Short: "Validate inputs only: report every problem at once, exit 1 on any",
		Long: `Check parses and validates the inputs the way render does (every kind render
reads, ClusterImagePolicy and ImagePolicy included: scope grammar, root of
trust and its base64 PEM data, signedIdentity, and scopes that conflict with
allowedRegistries or blockedRegistries), without writing anything. Every problem is printed, each naming its file, document (0-based),
the line the document starts on, and the field. The exit code is 1 when there
is any problem.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			inputs, problems, err := readPolicyInputs(args, in.releaseImage)
			if err != nil {
				return err
			}
			// Parse problems and validation problems of the documents that did parse, together.
			problems = append(problems, policy.Validate(inputs)...)
			for _, p := range problems {
				fmt.Fprintln(cmd.OutOrStdout(), p.String())
			}
			if len(problems) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d problem(s) found", len(problems))}
			}
			r, err := policy.Render(inputs, policy.StockBase())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			for _, w := range r.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
	in.register(cmd)
	return cmd
}

func newPolicyExplainCmd() *cobra.Command {
	var (
		root           string
		namespace      string
		output         string
		importCheck    bool
		from           []string
		importInsecure string
	)
	cmd := &cobra.Command{
		Use:   "explain --root DIR [--namespace NS] IMAGE_REF | explain --import -f FILE|DIR IMAGE_REF",
		Short: "Explain where a node pulls an image from and whether policy admits it",
		Long: `Explain reads a rendered node root (--root) the way the container runtime does
and prints, for one image reference: the pull sources in order (mirror or
source, insecure or not, skipped because a mirror is digest-only or tag-only,
blocked and by which entry, fetching sigstore attachments or not), and
policy.json's verdict with the scope that decided it and the signatures that
scope requires (a ClusterImagePolicy's sigstoreSigned: root of trust with
key fingerprints, Rekor key, certificate subject, and the signedIdentity rule
with what the signature must claim for this reference). policy.json judges the
reference as written, never the mirror that serves it. With --namespace NS it
also answers for pods of NS, by etc/crio/policies/NS.json (an ImagePolicy)
when the root has one. Explain reads files only; berth policy verify fetches
the image and its signatures and judges them.

With --import it answers instead whether the cluster's API server admits an
image stream import from the reference (allowedRegistriesForImport, the
internal registry, and the import-time blocked check), reading the inputs
given with -f.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output must be text or json, not %q", output)
			}
			w := cmd.OutOrStdout()
			if importCheck {
				if len(from) == 0 {
					return errors.New("--import needs the inputs: -f FILE|DIR")
				}
				inputs, err := loadPolicyInputs(from, "")
				if err != nil {
					return err
				}
				t := policy.ImportTransport(importInsecure)
				switch t {
				case policy.ImportSecure, policy.ImportInsecure, policy.ImportAny:
				default:
					return fmt.Errorf("--transport must be secure, insecure or any, not %q", importInsecure)
				}
				v, err := policy.ExplainImport(inputs, args[0], t)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(w, v)
				}
				if v.Allowed {
					fmt.Fprintf(w, "import of %s: allowed (by %s)\n", v.Reference, v.MatchedBy)
				} else {
					fmt.Fprintf(w, "import of %s: forbidden: %s\n", v.Reference, v.Reason)
				}
				for _, n := range v.Notes {
					fmt.Fprintf(w, "note: %s\n", n)
				}
				return nil
			}
			if root == "" {
				return errors.New("--root DIR is required (a node root written by berth policy render)")
			}
			node, err := noderoot.Load(root)
			if err != nil {
				return err
			}
			e, err := node.ExplainWith(args[0], policy.ExplainOptions{Namespace: namespace})
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(w, e)
			}
			fmt.Fprint(w, e.String())
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "node root to read etc/containers/registries.conf(.d), policy.json, registries.d and etc/crio/policies from")
	cmd.Flags().StringVar(&namespace, "namespace", "", "also answer for pods of this namespace (its etc/crio/policies/NS.json, written for an ImagePolicy)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&importCheck, "import", false, "answer whether an image stream import from IMAGE_REF is admitted, instead of a node pull")
	cmd.Flags().StringArrayVarP(&from, "file", "f", nil, "with --import: input YAML file or directory (repeatable)")
	cmd.Flags().StringVar(&importInsecure, "transport", "secure", "with --import: secure (port 443 when none is given), insecure (80), or any (the tag's importPolicy.insecure is set)")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// loadPolicyInputs reads every file (directories recursively) into Inputs;
// parse and validation problems from all files are reported together.
func loadPolicyInputs(args []string, releaseImage string) (*policy.Inputs, error) {
	in, problems, err := readPolicyInputs(args, releaseImage)
	if err != nil {
		return nil, err
	}
	problems = append(problems, policy.Validate(in)...)
	if len(problems) > 0 {
		return nil, &policy.ValidationError{Problems: problems}
	}
	return in, nil
}

// readPolicyInputs parses every file, returning the documents that parsed
// and the problems of those that did not.
func readPolicyInputs(args []string, releaseImage string) (*policy.Inputs, []policy.Problem, error) {
	in := &policy.Inputs{ReleaseImage: releaseImage}
	var problems []policy.Problem
	for _, a := range args {
		files, err := inputFiles(a)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, nil, err
			}
			problems = append(problems, in.Parse(f, data)...)
		}
	}
	return in, problems, nil
}

func inputFiles(arg string) ([]string, error) {
	st, err := os.Stat(arg)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{arg}, nil
	}
	var files []string
	err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, p)
			}
		}
		return nil
	})
	sort.Strings(files)
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("%s: no *.yaml, *.yml or *.json files", arg)
	}
	return files, err
}

func loadBase(confPath, policyPath string) (policy.Base, error) {
	b := policy.StockBase()
	var err error
	if confPath != "" {
		if b.RegistriesConf, err = os.ReadFile(confPath); err != nil {
			return b, err
		}
	}
	if policyPath != "" {
		if b.PolicyJSON, err = os.ReadFile(policyPath); err != nil {
			return b, err
		}
	}
	return b, nil
}
