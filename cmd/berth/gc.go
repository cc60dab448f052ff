package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/server"
	"github.com/spf13/cobra"
)

// storeFlags name the root `berth serve` uses: --root, or the filesystem
// storage of a serve config file.
type storeFlags struct {
	root, cfgPath, output string
	dryRun                bool
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.root, "root", "", `storage directory of berth serve (default "./berth-data")`)
	cmd.Flags().StringVar(&f.cfgPath, "config", "", "berth serve's config file (its filesystem storage is used)")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "report what would be removed; remove nothing")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", `output format: "" (a table) or "json"`)
}

// load reads the config (if any) or takes --root.
func (f *storeFlags) load() (*config.Config, error) {
	if f.output != "" && f.output != "json" {
		return nil, fmt.Errorf("--output: %q is not \"json\"", f.output)
	}
	cfg := &config.Config{}
	if f.cfgPath != "" {
		c, err := config.Load(f.cfgPath)
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	if f.root != "" {
		if f.cfgPath != "" {
			return nil, errors.New("--root and --config name the store twice; give one")
		}
		cfg.Storage.Filesystem = &config.Filesystem{RootDirectory: f.root}
	}
	cfg.Defaults()
	cfg.ReadEnv(os.Getenv)
	if cfg.Storage.EmptyDir != nil {
		return nil, fmt.Errorf("%s: storage is emptyDir; an emptyDir store lives inside its berth serve process, whose config gc and prune schedule it", f.cfgPath)
	}
	return cfg, nil
}

// recordRun keeps the outcome of a gc or prune run (dry runs and failures
// too) for the console's status page, and returns the run's own error. A
// run that could not be recorded still did its work: that is a warning on
// stderr, not a failure.
func recordRun(cmd *cobra.Command, meta *metadata.Store, run metadata.MaintenanceRun, runErr error) error {
	run.Finished = time.Now()
	if runErr != nil {
		run.Error = runErr.Error()
	}
	if err := meta.RecordRun(cmd.Context(), run); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "berth %s: the run was not recorded for the status page: %v\n", run.Kind, err)
	}
	return runErr
}

func newGCCmd() *cobra.Command {
	var f storeFlags
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove blob links and blob bytes nothing references (safe while berth serve runs)",
		Long: `Collect garbage in berth serve's store, online: no read-only window.

First, links from a repository to a blob that no manifest of that repository
references, made more than --grace ago, are removed. Then blob-store bytes that
no repository links and no manifest is or references, committed more than
--grace ago, are deleted, each re-checked just before its delete. The grace
period must outlast the slowest push that should survive a concurrent run.

Bytes left by a crash between a commit and its metadata write are collected
the same way. Manifests are removed by berth prune (or API deletes); their
bytes go at the next gc. The default for --grace (or gc.gracePeriod in
--config) is 1h.`,
		Example: `  berth gc --root /var/lib/berth --dry-run
  berth gc --config registry.yaml --grace 2h -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load()
			if err != nil {
				return err
			}
			g := cfg.GC.GracePeriod.D()
			if cmd.Flags().Changed("grace") {
				if grace <= 0 {
					return fmt.Errorf("--grace: %v is not positive (use 1s to collect almost at once, with no push in flight)", grace)
				}
				g = grace
			}
			st, err := server.OpenStores(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			blobs, meta := st.Blobs, st.Meta
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			run := metadata.MaintenanceRun{Kind: metadata.RunGC, Started: time.Now(), DryRun: f.dryRun}
			res, err := gc.Collect(cmd.Context(), blobs, meta, gc.Options{Grace: g, DryRun: f.dryRun, Log: log})
			if res != nil {
				run.Blobs, run.Bytes = len(res.Deleted), res.BytesFreed
			}
			if err := recordRun(cmd, meta, run, err); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.output == "json" {
				return writeJSON(out, res)
			}
			verb := "removed"
			if res.DryRun {
				verb = "would remove"
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			for _, l := range res.Links {
				fmt.Fprintf(tw, "link\t%s\t%s\t%d\n", l.Repo, l.Digest, l.Size)
			}
			for _, b := range res.Deleted {
				fmt.Fprintf(tw, "blob\t\t%s\t%d\n", b.Digest, b.Size)
			}
			tw.Flush()
			fmt.Fprintf(out, "gc %s %d links and %d blobs (%d bytes) of %d scanned; %d spared as younger than %v\n",
				verb, len(res.Links), len(res.Deleted), res.BytesFreed, res.Scanned, res.Young, g)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().DurationVar(&grace, "grace", gc.DefaultGrace, "spare bytes and links younger than this")
	return cmd
}

func newPruneCmd() *cobra.Command {
	var f storeFlags
	var keep int
	var younger time.Duration
	var repos []string
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete old image revisions, as oc adm prune images does (safe while berth serve runs)",
		Long: `Delete old manifests from berth serve's metadata; their bytes go at the next gc.

Kept: every manifest a tag points at; the newest --keep-tag-revisions distinct
manifests of each tag's history; anything pushed less than --keep-younger-than
ago; manifests never tagged that are neither an index's child nor a referrer of
a present subject (digest-only pushes, as mirroring makes); and what those
reach as index children or referrers. Everything else goes, including
referrers of deleted subjects. Each delete re-checks that no tag or manifest
took a reference to it meanwhile.`,
		Example: `  berth prune --root /var/lib/berth --dry-run
  berth prune --keep-tag-revisions 5 --keep-younger-than 24h -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load()
			if err != nil {
				return err
			}
			opts := gc.PruneOptions{KeepTagRevisions: cfg.Prune.KeepTagRevisions, KeepYoungerThan: cfg.Prune.KeepYoungerThan.D(), Repositories: repos, DryRun: f.dryRun}
			if cmd.Flags().Changed("keep-tag-revisions") {
				if keep < 1 {
					return fmt.Errorf("--keep-tag-revisions: %d must be 1 or more (the tagged revision is always kept)", keep)
				}
				opts.KeepTagRevisions = keep
			}
			if cmd.Flags().Changed("keep-younger-than") {
				if younger <= 0 {
					return fmt.Errorf("--keep-younger-than: %v is not positive", younger)
				}
				opts.KeepYoungerThan = younger
			}
			st, err := server.OpenStores(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			meta := st.Meta
			opts.Log = slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			run := metadata.MaintenanceRun{Kind: metadata.RunPrune, Started: time.Now(), DryRun: f.dryRun}
			res, err := gc.Prune(cmd.Context(), meta, opts)
			if res != nil {
				run.Manifests = len(res.Deleted)
			}
			if err := recordRun(cmd, meta, run, err); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.output == "json" {
				return writeJSON(out, res)
			}
			verb := "deleted"
			if res.DryRun {
				verb = "would delete"
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			for _, p := range res.Deleted {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Repo, p.Digest, p.Reason)
			}
			tw.Flush()
			fmt.Fprintf(out, "prune %s %d manifests; kept %d", verb, len(res.Deleted), res.Kept)
			if len(res.Skipped) > 0 {
				fmt.Fprintf(out, " (%d referenced meanwhile)", len(res.Skipped))
			}
			fmt.Fprintln(out)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&keep, "keep-tag-revisions", gc.DefaultKeepTagRevisions, "keep this many newest manifests of each tag's history")
	cmd.Flags().DurationVar(&younger, "keep-younger-than", gc.DefaultKeepYoungerThan, "keep manifests pushed more recently than this")
	cmd.Flags().StringSliceVar(&repos, "repository", nil, "prune only these repositories (repeatable; default all)")
	return cmd
}
