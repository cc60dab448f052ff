package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/pullthrough"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/server"
)

func newImportCmd() *cobra.Command {
	var (
		root, cfgPath, tags, mode, authFile, caFile string
		imageConfig                                 []string
		insecure                                    bool
	)
	cmd := &cobra.Command{
		Use:   "import FROM TO",
		Short: "Import tags from an upstream repository into the registry, as oc import-image does",
		Long: `Copy the image FROM (HOST[:PORT]/REPOSITORY[:TAG]) names into the local
repository TO of berth serve's store, under the same tag, through the
registry's push path: each move of a tag is kept in its history. Without a
tag, every tag is imported (--tags narrows them with a regular expression).
A manifest list brings only its linux/amd64 image unless --import-mode
PreserveOriginal, which keeps the list and its digest.

With --image-config (the cluster's Image "cluster", files or directories), a
source the Image's allowedRegistriesForImport does not admit is refused, as
the cluster's API server refuses it.

Scheduled imports run inside berth serve: imports[] in its config, with
from, to, schedule (default 15m), tags, importMode, authFile, caFile and
insecure.`,
		Example: `  berth import quay.io/org/app:v1 team/app --root /var/lib/berth
  berth import quay.io/org/app team/app --tags 'v1\..*' --image-config cluster-config/ --config registry.yaml`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, to := args[0], args[1]
			if len(imageConfig) > 0 {
				in, err := loadPolicyInputs(imageConfig, "")
				if err != nil {
					return err
				}
				transport := policy.ImportSecure
				if insecure {
					transport = policy.ImportInsecure
				}
				v, err := policy.ExplainImport(in, from, transport)
				if err != nil {
					return err
				}
				if !v.Allowed {
					return fmt.Errorf("import of %s refused: %s", from, v.Reason)
				}
			}
			if mode != "Legacy" && mode != "PreserveOriginal" {
				return fmt.Errorf("--import-mode: %q is not Legacy or PreserveOriginal", mode)
			}
			cfg := &config.Config{}
			if cfgPath != "" {
				c, err := config.Load(cfgPath)
				if err != nil {
					return err
				}
				cfg = c
			}
			if root != "" {
				if cfgPath != "" {
					return errors.New("--root and --config name the store twice; give one")
				}
				cfg.Storage.Filesystem = &config.Filesystem{RootDirectory: root}
			}
			cfg.Defaults()
			cfg.ReadEnv(os.Getenv)
			if cfg.Storage.EmptyDir != nil {
				return errors.New("the store is emptyDir, which lives inside its berth serve process: use imports[] in its config")
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			spec, err := pullthrough.NewImportSpec(from, to, tags, mode, authFile, caFile, insecure, 30*time.Second, log)
			if err != nil {
				return err
			}
			st, err := server.OpenStores(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			reg := registry.New(st.Blobs, st.Meta, registry.Options{Secret: []byte(cfg.HTTPSecret)})
			res, err := pullthrough.Import(cmd.Context(), reg, spec, nil)
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, r := range res {
				what := "unchanged"
				if r.Changed {
					what = "imported"
				}
				fmt.Fprintf(tw, "%s:%s\t%s\t%s\n", to, r.Tag, r.Digest, what)
			}
			tw.Flush()
			return err
		},
	}
	cmd.Flags().StringVar(&root, "root", "", `storage directory of berth serve (default "./berth-data")`)
	cmd.Flags().StringVar(&cfgPath, "config", "", "berth serve's config file (its storage is used)")
	cmd.Flags().StringVar(&tags, "tags", "", "regular expression the imported tags match in full (default: FROM's tag, or all)")
	cmd.Flags().StringVar(&mode, "import-mode", "Legacy", "Legacy (one image of a manifest list) or PreserveOriginal (the list, digest kept)")
	cmd.Flags().StringVar(&authFile, "authfile", "", "auths JSON file with credentials for FROM's registry")
	cmd.Flags().StringVar(&caFile, "ca-file", "", "extra PEM CA bundle trusted for FROM's registry")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "reach FROM's registry over plain HTTP")
	cmd.Flags().StringArrayVar(&imageConfig, "image-config", nil, "the cluster's Image config (file or directory; repeatable); refuses sources outside allowedRegistriesForImport")
	return cmd
}
