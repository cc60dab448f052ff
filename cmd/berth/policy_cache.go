package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/pullthrough"
)

func newPolicyCacheCmd() *cobra.Command {
	var (
		serveConfig, cache, name, out string
	)
	cmd := &cobra.Command{
		Use:   "cache-mirrors --serve-config FILE --cache HOST[:PORT]",
		Short: "Write the ImageDigestMirrorSet and ImageTagMirrorSet that point nodes at a pull-through cache",
		Long: `Read berth serve's config and write, for every pullThrough upstream, an
ImageDigestMirrorSet and an ImageTagMirrorSet entry whose source is the
upstream's prefix (quay.io, docker.io) and whose mirror is the cache
(HOST[:PORT]/<prefix>), as one YAML stream: apply it to the cluster, or feed
it to "berth policy render" to see the registries.conf nodes get.`,
		Example: `  berth policy cache-mirrors --serve-config /etc/berth/config.yaml --cache cache.corp:5000 > cache-mirrors.yaml
  berth policy render --out node-root cache-mirrors.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if serveConfig == "" || cache == "" {
				return fmt.Errorf("--serve-config and --cache are required")
			}
			cfg, err := config.Load(serveConfig)
			if err != nil {
				return err
			}
			if cfg.PullThrough == nil {
				return fmt.Errorf("%s: no pullThrough block, so there is no cache to point nodes at", serveConfig)
			}
			y, err := pullthrough.MirrorSets(name, cfg.PullThrough, cache)
			if err != nil {
				return fmt.Errorf("%s: %w", serveConfig, err)
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(y)
				return err
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(out, y, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&serveConfig, "serve-config", "", "berth serve's config file (its pullThrough block)")
	cmd.Flags().StringVar(&cache, "cache", "", "the cache's HOST[:PORT] as nodes reach it")
	cmd.Flags().StringVar(&name, "name", "berth-cache", "name of the objects (suffixed -0, -1, ...)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of stdout")
	return cmd
}
