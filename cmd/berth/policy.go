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
	"golang.org/x/sys/unix"

	"github.com/berth-registry/berth/internal/policy"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Render the cluster's registry configuration into the files a node's runtime reads",
		Long: `Turn OpenShift's image configuration (Image "cluster", ImageContentSourcePolicy,
ImageDigestMirrorSet, ImageTagMirrorSet and the trusted-CA ConfigMap) into the
registries.conf, policy.json and certs.d files a node's container runtime reads,
following the cluster's own rules; check such inputs; and explain where a node
would pull an image from and whether its policy admits it.`,
	}
	cmd.AddCommand(newPolicyRenderCmd(), newPolicyCheckCmd(), newPolicyExplainCmd(), newPolicyCacheCmd())
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
		Short: "Write registries.conf, policy.json and certs.d under a node root, and say what changed",
		Long: `Render reads YAML files (multi-document; directories are read recursively for
*.yaml, *.yml and *.json) and writes, under --out as a node root:

  etc/containers/registries.conf
  etc/containers/registries.conf.d/01-image-searchRegistries.conf  (when search registries are set)
  etc/containers/policy.json
  etc/docker/certs.d/HOST[:PORT]/ca.crt and etc/containers/certs.d/HOST[:PORT]/ca.crt

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
			old, err := previousRoot(out, base)
			if err != nil {
				return err
			}
			if err := writeRootAtomically(out, r.Files); err != nil {
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
		Long: `Check parses and validates the inputs the way render does, without writing
anything. Every problem is printed, each naming its file, document (0-based),
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
		output         string
		importCheck    bool
		from           []string
		importInsecure string
	)
	cmd := &cobra.Command{
		Use:   "explain --root DIR IMAGE_REF | explain --import -f FILE|DIR IMAGE_REF",
		Short: "Explain where a node pulls an image from and whether policy admits it",
		Long: `Explain reads a rendered node root (--root) the way the container runtime does
and prints, for one image reference: the pull sources in order (mirror or
source, insecure or not, skipped because a mirror is digest-only or tag-only,
blocked and by which entry), and policy.json's verdict with the scope that
decided it. policy.json judges the reference as written, never the mirror that
serves it.

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
			node, err := loadNodeRoot(root)
			if err != nil {
				return err
			}
			e, err := node.Explain(args[0])
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
	cmd.Flags().StringVar(&root, "root", "", "node root to read etc/containers/registries.conf(.d) and policy.json from")
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

// renderedPath reports whether a path (relative to a node root) is one that
// render writes; a root holding anything else is not ours to replace.
func renderedPath(p string) bool {
	switch p {
	case policy.RegistriesConfPath, policy.SearchDropInPath, policy.PolicyJSONPath:
		return true
	}
	for _, d := range []string{policy.DockerCertsDir, policy.ContainersCertsDir} {
		rest, ok := strings.CutPrefix(p, d+"/")
		if ok && strings.Count(rest, "/") == 1 && strings.HasSuffix(rest, "/ca.crt") {
			return true
		}
	}
	return false
}

// previousRoot returns the files of an existing root, or the base files when
// there is none, so the summary says what a node would see change.
func previousRoot(root string, base policy.Base) (map[string][]byte, error) {
	old := map[string][]byte{}
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		old[policy.RegistriesConfPath] = base.RegistriesConf
		old[policy.PolicyJSONPath] = base.PolicyJSON
		return old, nil
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !renderedPath(rel) {
			return fmt.Errorf("--out %s holds %s, which berth policy render did not write; refusing to replace it (use an empty or new directory)", root, rel)
		}
		old[rel], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(old) == 0 {
		old[policy.RegistriesConfPath] = base.RegistriesConf
		old[policy.PolicyJSONPath] = base.PolicyJSON
	}
	return old, nil
}

// writeRootAtomically writes files into a directory beside root and swaps it
// into place, so readers see the old root or the new one, never a mix.
func writeRootAtomically(root string, files map[string][]byte) (err error) {
	if root, err = filepath.Abs(root); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(root), "."+filepath.Base(root)+".tmp-")
	if err != nil {
		return err
	}
	tmp = filepath.Clean(tmp)
	defer func() {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for rel, data := range files {
		p := filepath.Join(tmp, filepath.FromSlash(rel))
		if !strings.HasPrefix(p, tmp+string(filepath.Separator)) {
			return fmt.Errorf("refusing to write %q outside the root", rel)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeFileSync(p, data); err != nil {
			return err
		}
	}
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, root); err != nil {
			return err
		}
		tmp = ""
		return nil
	}
	// Swap both directories in one step; tmp then holds the old root and is removed.
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, root, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// No atomic exchange on this filesystem: move the old root aside,
		// move the new one in, and put the old one back if that fails.
		old := tmp + ".old"
		if err := os.Rename(root, old); err != nil {
			return err
		}
		if err := os.Rename(tmp, root); err != nil {
			os.Rename(old, root)
			return err
		}
		tmp = old
		return nil
	}
	if err != nil {
		return fmt.Errorf("swapping %s into place: %w", root, err)
	}
	return nil
}

func writeFileSync(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadNodeRoot reads what the runtime reads from a node root.
func loadNodeRoot(root string) (*policy.Node, error) {
	read := func(rel string) (policy.NamedFile, error) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		b, err := os.ReadFile(p)
		return policy.NamedFile{Name: p, Data: b}, err
	}
	conf, err := read(policy.RegistriesConfPath)
	if err != nil {
		return nil, err
	}
	pol, err := read(policy.PolicyJSONPath)
	if err != nil {
		return nil, err
	}
	dropDir := filepath.Join(root, "etc", "containers", "registries.conf.d")
	names, err := filepath.Glob(filepath.Join(dropDir, "*.conf"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var drops []policy.NamedFile
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		drops = append(drops, policy.NamedFile{Name: n, Data: b})
	}
	return policy.LoadNode(conf, drops, pol)
}
