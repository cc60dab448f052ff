package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/bench"
	"github.com/berth-registry/berth/internal/units"
)

// sizeFlag is a byte count flag that accepts units ("1GiB", "16MiB").
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	if f.n == nil {
		return ""
	}
	return units.FormatBytes(*f.n)
}
func (f sizeFlag) Set(s string) error {
	n, err := units.ParseBytes(s)
	if err != nil {
		return err
	}
	*f.n = n
	return nil
}
func (f sizeFlag) Type() string { return "size" }

func newBenchCmd() *cobra.Command {
	cfg := bench.Config{}.Defaults()
	cfg.CeilingDir = ""
	var output string
	cmd := &cobra.Command{
		Use:   "bench URL",
		Short: "Measure a registry (any registry) with a fixed workload, next to this machine's ceilings",
		Long: `bench pushes and pulls a fixed workload against the registry at URL
(host:port, http://host:port or https://host) and prints what it measured:

  - one large blob (--blob-size) pushed monolithic (POST, PUT ?digest=) and
    chunked (PATCH with Content-Range, --chunk-size), then pulled: MiB/s;
  - --images small images (3 × 1 MiB layers + config + manifest) pushed and
    pulled by --workers: images/s, p50/p99 per image;
  - manifest GET by tag with --manifest-workers for --duration: req/s, p50/p99;
  - with --pid, the server's CPU seconds and peak RSS, per phase and in all;
  - this machine's ceilings: one core of sha256, write+fsync of a blob-sized
    file in --ceiling-dir, one loopback TCP stream.

Progress goes to stderr; the table (or --output json) to stdout. Compare
registries in one session, alternating, and quote medians (see
scripts/bench-compare.sh and "berth bench compare").`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("--output %q: want table or json", output)
			}
			cfg.Target = args[0]
			cfg.Progress = cmd.ErrOrStderr()
			rep, err := bench.Run(cmd.Context(), cfg)
			if rep == nil {
				return err
			}
			if werr := writeBenchReport(cmd, output, rep); werr != nil {
				return werr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.Var(sizeFlag{&cfg.BlobSize}, "blob-size", "size of the large blob")
	f.Var(sizeFlag{&cfg.ChunkSize}, "chunk-size", "PATCH size of the chunked large-blob push")
	f.IntVar(&cfg.Images, "images", cfg.Images, "small images to push and pull")
	f.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent workers for small images")
	f.IntVar(&cfg.ManifestWorkers, "manifest-workers", cfg.ManifestWorkers, "concurrent workers for manifest GET")
	f.DurationVar(&cfg.ManifestDuration, "duration", cfg.ManifestDuration, "how long manifest GET runs")
	f.IntVar(&cfg.PID, "pid", 0, "the server's process id, to report its CPU time and peak RSS (Linux /proc)")
	f.StringVar(&cfg.CeilingDir, "ceiling-dir", "", "directory for the durable-write ceiling (default: the temp dir); use the registry's disk")
	f.StringVar(&cfg.Repo, "repo", cfg.Repo, "repository name prefix")
	f.BoolVar(&cfg.Insecure, "insecure", false, "skip TLS certificate verification (https with a self-signed certificate)")
	f.Uint64Var(&cfg.Seed, "seed", 0, "content seed (0: random, reported); the same seed pushes the same bytes")
	f.StringVarP(&output, "output", "o", "table", "table or json")
	cmd.AddCommand(newBenchCompareCmd())
	return cmd
}

func writeBenchReport(cmd *cobra.Command, output string, rep *bench.Report) error {
	if output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return bench.WriteTable(cmd.OutOrStdout(), rep)
}

func newBenchCompareCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "compare LABEL=FILE[,FILE...]...",
		Short: "Print the medians of saved `berth bench --output json` reports side by side",
		Long: `compare reads reports saved with "berth bench --output json", groups them by
label (one label per registry, one file per round) and prints the median of
every figure per label, side by side; with two labels, also first/second.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var groups []bench.Group
			for _, a := range args {
				label, files, ok := strings.Cut(a, "=")
				if !ok || label == "" || files == "" {
					return fmt.Errorf("argument %q: want LABEL=FILE[,FILE...]", a)
				}
				g := bench.Group{Label: label}
				for _, p := range strings.Split(files, ",") {
					b, err := os.ReadFile(p)
					if err != nil {
						return err
					}
					var r bench.Report
					if err := json.Unmarshal(b, &r); err != nil {
						return fmt.Errorf("%s: not a bench report: %w", p, err)
					}
					g.Reports = append(g.Reports, &r)
				}
				groups = append(groups, g)
			}
			return bench.WriteComparison(cmd.OutOrStdout(), groups)
		},
	}
}
