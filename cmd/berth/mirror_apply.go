package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/berth-registry/berth/internal/mirror/apply"
	"github.com/berth-registry/berth/internal/mirror/imageset"
	"github.com/spf13/cobra"
)

func newMirrorApplyCmd(f *mirrorFlags) *cobra.Command {
	var (
		file, to, toDir, fromDir, manifestsDir, updateService, graphImage, sigStore string
		dryRun                                                                      bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f ISC.yaml (--to REGISTRY[/PREFIX] | --to-dir DIR | --from-dir DIR --to REGISTRY[/PREFIX])",
		Short: "Mirror what an oc-mirror v2 ImageSetConfiguration names: releases, operator catalogs, additional images",
		Long: `Mirror an image set described by a mirror.openshift.io/v2alpha1
ImageSetConfiguration, the file oc-mirror v2 reads, unchanged:

  mirror.platform.channels   release versions from the update graph
                             (--update-service): the channel head, a
                             minVersion..maxVersion range, shortestPath
                             between them, or full; each release with every
                             component its payload pins
  mirror.platform.graph      also the graph-data image, and an UpdateService
  mirror.operators           each catalog filtered to the packages, channels
                             and versions named (channel heads without a
                             version filter; dependencies added unless
                             skipDependencies), rebuilt with its opm cache,
                             then every bundle and related image by digest
  mirror.additionalImages    by tag or digest
  mirror.blockedImages       regular expressions: matching images are left out

The three workflows:
  --to REGISTRY[/PREFIX]                   mirror to mirror
  --to-dir DIR [--archive-size 4GiB]       mirror to disk: an OCI layout (and
                                           archives) to carry across
  --from-dir DIR --to REGISTRY[/PREFIX]    disk to mirror: verify and push what
                                           the directory holds that the
                                           configuration names

After a push the cluster resources are written into --manifests-dir
(default: DIR/cluster-resources with --from-dir, else ./cluster-resources):
ImageDigestMirrorSet and ImageTagMirrorSet (input for berth policy render),
a CatalogSource and a ClusterCatalog per rebuilt catalog (by digest), and an
UpdateService with graph: true, and the release signature ConfigMap
(namespace openshift-config-managed) when --signature-store has signatures.

Reruns are incremental: what the destination (or, with --since STATE, the
receiving side) holds is not copied again; an interrupted run resumes by
digest. Nothing is written before the whole plan resolves, so a bad
configuration, an unknown package or an impossible version range stops the
run with every problem named. --dry-run prints the plan: every source and
destination and every catalog filter decision.`,
		Example: `  # isc.yaml
  kind: ImageSetConfiguration
  apiVersion: mirror.openshift.io/v2alpha1
  mirror:
    platform:
      channels:
      - name: stable-4.16
        minVersion: 4.16.10
        maxVersion: 4.16.12
    operators:
    - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.16
      packages:
      - name: aws-load-balancer-operator
    additionalImages:
    - name: registry.redhat.io/ubi9/ubi:latest

  berth mirror apply -f isc.yaml --to mirror.local:5000/ocp --dry-run
  berth mirror apply -f isc.yaml --to mirror.local:5000/ocp
  berth mirror apply -f isc.yaml --to-dir /media/usb/set --archive-size 4GiB
  berth mirror apply -f isc.yaml --from-dir /media/usb/set-archives --to mirror.local:5000/ocp`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q: the image set is read from -f FILE", args)
			}
			if file == "" {
				return errors.New("-f ISC.yaml is required: the ImageSetConfiguration to mirror")
			}
			if err := f.checkArchiveFlags(toDir, fromDir); err != nil {
				return err
			}
			cfg, err := imageset.ReadImageSetConfiguration(file)
			if err != nil {
				return err
			}
			env, err := f.setup(cmd)
			if err != nil {
				return err
			}
			req := apply.Request{Config: cfg, To: to, Graphs: &imageset.GraphClient{URL: updateService}, GraphImage: graphImage}
			if sigStore != "none" && fromDir == "" {
				req.Signatures = &imageset.SignatureClient{URL: sigStore}
			}
			if toDir != "" {
				if req.ToDir, err = f.openToDir(toDir); err != nil {
					return err
				}
			}
			if fromDir != "" {
				l, cleanup, err := f.openFromDir(ctx, cmd, fromDir)
				if err != nil {
					return err
				}
				defer cleanup()
				req.FromDir = l
			}
			plan, err := apply.New(ctx, env.client, req)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if dryRun {
				fmt.Fprintf(out, "# %s: %d images, %d catalogs; nothing copied (--dry-run)\n", file, len(plan.Jobs), len(plan.Catalogs))
				return plan.WriteDryRun(out)
			}
			for _, n := range plan.Notes {
				env.log.Warn(n)
			}
			if err := plan.RebuildCatalogs(ctx); err != nil {
				return err
			}
			for _, cp := range plan.Catalogs {
				fmt.Fprintf(out, "catalog %s rebuilt as %s/%s:%s@%s (%d bundle and related images)\n",
					cp.Plan.Source, cp.Target.Name(), cp.Repo, cp.Tag, cp.Rebuilt.Digest, len(cp.Result.Images))
				for _, d := range cp.Result.Decisions {
					if d.Action == "add" {
						env.log.Info("dependency added", "catalog", cp.Plan.Source, "decision", d.String())
					}
				}
			}
			runErr := env.run(ctx, cmd, plan.Jobs)
			var ee *exitError
			if runErr != nil && !errors.As(runErr, &ee) {
				return runErr
			}
			if toDir != "" {
				if err := plan.WriteRecord(); err != nil {
					return err
				}
				if runErr == nil {
					return f.pack(ctx, cmd, toDir)
				}
				return runErr
			}
			if manifestsDir == "" {
				manifestsDir = "cluster-resources"
				if fromDir != "" {
					manifestsDir = filepath.Join(fromDir, "cluster-resources")
				}
			}
			written, err := apply.WriteResources(manifestsDir, plan.Resources())
			if err != nil {
				return fmt.Errorf("cluster resources: %w", err)
			}
			if len(written) > 0 {
				fmt.Fprintf(out, "Cluster resources written: %s\n", strings.Join(written, ", "))
			}
			return runErr
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&file, "filename", "f", "", "the ImageSetConfiguration (mirror.openshift.io/v2alpha1) to mirror")
	fl.StringVar(&to, "to", "", "REGISTRY[/PREFIX] receiving the image set (mirror to mirror, or with --from-dir)")
	fl.StringVar(&toDir, "to-dir", "", "write the image set into this OCI image layout directory (mirror to disk)")
	fl.StringVar(&fromDir, "from-dir", "", "push the image set a --to-dir run wrote (a layout, or a directory of its archives) to --to")
	fl.StringVar(&manifestsDir, "manifests-dir", "", "where the cluster resources go (default DIR/cluster-resources with --from-dir, else ./cluster-resources)")
	fl.StringVar(&updateService, "update-service", "", "update-graph (Cincinnati) service URL for release channels (default "+imageset.DefaultOCPGraphURL+")")
	fl.StringVar(&graphImage, "graph-image", "", "graph-data image mirrored for graph: true (default "+imageset.DefaultGraphImage+")")
	fl.StringVar(&sigStore, "signature-store", imageset.DefaultSignatureStore, "where release signatures are read (URL/sha256=<hex>/signature-N), for the signature ConfigMap; none to skip")
	fl.BoolVar(&dryRun, "dry-run", false, "print every source and destination and every catalog filter decision; copy nothing")
	return cmd
}

func newMirrorDeleteCmd(f *mirrorFlags) *cobra.Command {
	var (
		file, to, updateService string
		keep                    []string
		dryRun                  bool
	)
	cmd := &cobra.Command{
		Use:   "delete -f DELETE.yaml --to REGISTRY[/PREFIX] [--keep ISC.yaml]... [--dry-run]",
		Short: "Remove from a mirror what a DeleteImageSetConfiguration names, keeping what other sets need",
		Long: `Delete from the mirror the images a mirror.openshift.io/v2alpha1
DeleteImageSetConfiguration names, worked out from the mirror itself:
release images and every component their payloads pin, additional images,
the bundle and related images of the named packages (read from the rebuilt
catalog on the mirror; a catalog named without packages goes whole, catalog
image included), and the platform manifests of every index.

--keep names the image sets that stay (ImageSetConfiguration files, as
applied to the same --to): an image one of them needs is kept, and the
output says which set needs it. Deleting is by digest, so every tag naming a
deleted manifest goes too. On a berth serve mirror the bytes only the
deleted images held are reclaimed by the next gc (berth gc, or the one
scheduled inside serve); a layer any remaining image uses stays.

--dry-run prints every manifest that would go and every one kept, with the
reason, and deletes nothing. A rerun after an interruption goes on: what is
already gone is not an error.`,
		Example: `  # delete.yaml
  kind: DeleteImageSetConfiguration
  apiVersion: mirror.openshift.io/v2alpha1
  delete:
    operators:
    - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.16
      packages:
      - name: aws-load-balancer-operator
    additionalImages:
    - name: registry.redhat.io/ubi9/ubi:latest

  berth mirror delete -f delete.yaml --to mirror.local:5000/ocp --keep isc.yaml --dry-run
  berth mirror delete -f delete.yaml --to mirror.local:5000/ocp --keep isc.yaml && berth gc --root /var/lib/berth`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q: the delete set is read from -f FILE", args)
			}
			if file == "" || to == "" {
				return errors.New("want -f DELETE.yaml and --to REGISTRY[/PREFIX]")
			}
			cfg, err := imageset.ReadDeleteImageSetConfiguration(file)
			if err != nil {
				return err
			}
			req := apply.DeleteRequest{Config: cfg, To: to, Graphs: &imageset.GraphClient{URL: updateService}}
			for _, k := range keep {
				kc, err := imageset.ReadImageSetConfiguration(k)
				if err != nil {
					return fmt.Errorf("--keep: %w", err)
				}
				req.Keep = append(req.Keep, kc)
			}
			env, err := f.setup(cmd)
			if err != nil {
				return err
			}
			plan, err := apply.NewDelete(cmd.Context(), env.client, req)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if dryRun {
				fmt.Fprintf(out, "# %s: %d manifests to delete, %d kept; nothing deleted (--dry-run)\n", file, len(plan.Delete), len(plan.Kept))
				return plan.WriteDryRun(out)
			}
			for _, n := range plan.Notes {
				env.log.Warn(n)
			}
			for _, k := range plan.Kept {
				env.log.Info("kept", "repository", k.Repo, "digest", k.Digest.String(), "why", k.Why)
			}
			n, err := plan.Run(cmd.Context(), func(im apply.MirroredImage) {
				if !f.quiet {
					fmt.Fprintf(out, "deleted %s@%s  # %s\n", im.Repo, im.Digest, im.Why)
				}
			})
			fmt.Fprintf(cmd.ErrOrStderr(), "mirror: %d manifests deleted, %d kept for other sets; run berth gc on the mirror to reclaim the bytes\n", n, len(plan.Kept))
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&file, "filename", "f", "", "the DeleteImageSetConfiguration (mirror.openshift.io/v2alpha1)")
	fl.StringVar(&to, "to", "", "the mirror, REGISTRY[/PREFIX], as the image sets were applied to it")
	fl.StringSliceVar(&keep, "keep", nil, "an ImageSetConfiguration that stays on the mirror: nothing it needs is deleted (repeatable)")
	fl.StringVar(&updateService, "update-service", "", "update-graph (Cincinnati) service URL for release channels (default "+imageset.DefaultOCPGraphURL+")")
	fl.BoolVar(&dryRun, "dry-run", false, "print what would be deleted and what is kept, and why; delete nothing")
	return cmd
}
