package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/units"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// exitImagesFailed is the exit status when some images could not be copied
// (the others were); usage and setup errors exit 1.
const exitImagesFailed = 2

// mirrorFlags are shared by every mirror subcommand.
type mirrorFlags struct {
	authfile       string
	srcInsecure    bool
	destInsecure   bool
	caFiles        []string
	certsDir       string
	jobs           int
	blobJobs       int
	perRegistry    int
	retries        int
	platforms      []string
	noReferrers    bool
	policyRoot     string
	report         string
	progress       string
	progressPeriod time.Duration
	quiet          bool
	since          string
	archiveSize    string
	archiveDir     string
	unpackDir      string
}

func newMirrorCmd() *cobra.Command {
	f := &mirrorFlags{}
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "Copy images and release payloads between registries, or through a directory for disconnected networks",
		Long: `Copy images and release payloads between registries, or through an OCI image
layout directory carried to a network that never touches the internet.

Every platform is copied and manifest lists keep their digest; signatures,
attestations and other referrers travel along; blobs the destination already
has are skipped, blobs shared by several images are transferred once, blobs
in the same registry are mounted. Transient errors (429, 5xx, dropped
connections) are retried with backoff, honouring Retry-After.

Credentials are looked up in --authfile, then $REGISTRY_AUTH_FILE, then
podman's auth.json ($XDG_RUNTIME_DIR/containers, ~/.config/containers), then
docker's config.json; the log says which file served which registry.

Exit status: 0 when everything was copied, 2 when some images failed (each is
listed, the rest were copied), 1 for usage or setup errors.

Disconnected workflow:
  berth mirror release --from quay.io/openshift-release-dev/ocp-release:4.16.0-x86_64 \
      --to mirror.example.com/ocp/release --to-dir /media/usb
  # carry /media/usb across, then:
  berth mirror release --from-dir /media/usb --to mirror.example.com/ocp/release

Media with a size limit: add --archive-size 4GiB (and --archive-dir DIR) to
the --to-dir run. The directory is then packed into berth-archive-0001.tar,
berth-archive-0002.tar, ... (each at most that size; a blob larger than the
limit is split into parts across consecutive archives) plus
berth-archives.json, the manifest of every file's sha256 and the archives
holding it. Carry the archives and the manifest; on the other side give
their directory to --from-dir (or unpack it with berth mirror unpack). Every
archive must be present before anything is read; a missing one is named.
--from-dir pushes straight from the archives: small files are extracted
and verified first, each large blob is read from its archive and hashed as
it is pushed, so no second copy of the set lands on disk; a blob damaged in
transit fails its images (never reaching the registry) and is named. With
--unpack-dir the archives are unpacked there first, every file and archive
verified before anything is pushed, and the directory kept.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.authfile, "authfile", "", "credentials FILE (auths JSON as in a pull secret); searched before $REGISTRY_AUTH_FILE, podman's and docker's files")
	pf.BoolVar(&f.srcInsecure, "src-insecure", false, "allow plain HTTP and unverified TLS for source registries")
	pf.BoolVar(&f.destInsecure, "dest-insecure", false, "allow plain HTTP and unverified TLS for destination registries")
	pf.StringSliceVar(&f.caFiles, "ca-file", nil, "PEM file of extra CA certificates to trust (repeatable)")
	pf.StringVar(&f.certsDir, "certs-dir", "", "certs.d directory: DIR/HOST[:PORT]/*.crt are trusted")
	pf.IntVar(&f.jobs, "jobs", 4, "images copied at once")
	pf.IntVar(&f.blobJobs, "blob-jobs", 8, "blobs (layers) in flight at once across all images")
	pf.IntVar(&f.perRegistry, "max-per-registry", 6, "blob transfers touching one registry at once")
	pf.IntVar(&f.retries, "retries", 5, "attempts per registry operation (429, 5xx and network errors are retried with backoff)")
	pf.StringSliceVar(&f.platforms, "platform", nil, "copy only these platforms of multi-arch images, os/arch[/variant] (repeatable); the filtered index gets a NEW digest, reported per image")
	pf.BoolVar(&f.noReferrers, "no-referrers", false, "do not copy signatures, attestations, SBOMs and other referrers")
	pf.StringVar(&f.policyRoot, "policy-root", "", "a node root written by berth policy render: with --no-referrers, warn for each image whose signatures its ClusterImagePolicy or ImagePolicy would require")
	pf.StringVar(&f.report, "report", "", "write a JSON report with every image's result to this file")
	pf.StringVar(&f.progress, "progress", "auto", "progress display: auto (bars on a terminal, lines otherwise), bars, lines or none")
	pf.DurationVar(&f.progressPeriod, "progress-interval", 5*time.Second, "how often a progress line is printed when not on a terminal")
	pf.BoolVarP(&f.quiet, "quiet", "q", false, "print only errors and the final summary")
	pf.StringVar(&f.since, "since", "", "with --to-dir: a state FILE written by berth mirror state on the receiving side; blobs it lists are not written (incremental transfer)")
	pf.StringVar(&f.archiveSize, "archive-size", "", "with --to-dir: after writing, pack the directory into numbered tar files of at most this size (e.g. 4GiB, 700MiB, 4.7GB; at least 16KiB) in --archive-dir; files that do not fit are split across archives")
	pf.StringVar(&f.archiveDir, "archive-dir", "", "where --archive-size writes berth-archive-NNNN.tar and berth-archives.json (default: DIR-archives next to --to-dir, so the directory stays a working copy and only the archives are carried)")
	pf.StringVar(&f.unpackDir, "unpack-dir", "", "with --from-dir pointing at archives: unpack (and verify) everything into this directory first and keep it (default: push straight from the archives, extracting only small files into a temporary directory)")
	cmd.AddCommand(newMirrorImageCmd(f), newMirrorReleaseCmd(f), newMirrorApplyCmd(f), newMirrorDeleteCmd(f), newMirrorStateCmd(f), newMirrorUnpackCmd(f))
	return cmd
}

func newMirrorImageCmd(f *mirrorFlags) *cobra.Command {
	var (
		mappingFile  string
		toDir        string
		fromDir      string
		manifestsDir string
		objName      string
	)
	cmd := &cobra.Command{
		Use:   "image SRC DST | -f FILE | --to-dir DIR SRC... | --from-dir DIR DST_PREFIX",
		Short: "Copy images by tag or digest, registry to registry or through a directory",
		Long: `Copy images by tag or digest.

  berth mirror image SRC DST            registry to registry; DST without a tag takes SRC's tag
  berth mirror image -f mapping.txt     one "SRC DST" (or SRC=DST) pair a line, # comments
  berth mirror image --to-dir DIR SRC...  into an OCI image layout, each under its repository path
  berth mirror image --from-dir DIR DST_PREFIX  push what DIR holds to DST_PREFIX/<repository>

A directory is a standard OCI image layout (skopeo oci:DIR:REPO:TAG, regctl
ocidir://DIR:REPO:TAG and crane read it) plus berth-mirror.json listing every
image's source reference and digest. Rerunning an interrupted copy moves only
what is missing, checked by digest.

--manifests-dir DIR writes how clusters should find the copies: sources
named by digest become ImageDigestMirrorSet (idms.yaml) and
ImageContentSourcePolicy (icsp.yaml) entries, sources named by tag an
ImageTagMirrorSet (itms.yaml) entry, mapping each source repository to its
destination repository. A tag copied to a different tag gets no tag mirror
(a node asks the mirror for the source's tag) and a warning says so. With
--from-dir the sources are those recorded when the directory was written.`,
		Example: `  berth mirror image quay.io/org/app:1.2 mirror.local:5000/org/app
  berth mirror image quay.io/org/app@sha256:... mirror.local:5000/org/app:1.2 --platform linux/amd64
  berth mirror image --to-dir ./bundle quay.io/org/app:1.2 quay.io/org/db:7
  berth mirror image --from-dir ./bundle mirror.local:5000/mirrored`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if toDir != "" && fromDir != "" {
				return errors.New("--to-dir and --from-dir exclude each other: copy into a directory, carry it, then copy out of it")
			}
			if err := f.checkArchiveFlags(toDir, fromDir); err != nil {
				return err
			}
			if manifestsDir != "" && toDir != "" {
				return errors.New("--manifests-dir describes mirrors in a registry: use it when pushing (SRC DST, -f FILE or --from-dir), not with --to-dir")
			}
			env, err := f.setup(cmd)
			if err != nil {
				return err
			}
			req := mirror.ImageRequest{File: mappingFile}
			if mappingFile != "" {
				if req.Mappings, err = mirror.ReadMappingFile(mappingFile); err != nil {
					return err
				}
			}
			switch {
			case fromDir != "":
				if len(args) != 1 || mappingFile != "" {
					return errors.New("--from-dir DIR takes exactly one argument, the destination prefix (REGISTRY[/PATH])")
				}
				l, cleanup, err := f.openFromDir(ctx, cmd, fromDir)
				if err != nil {
					return err
				}
				defer cleanup()
				req.FromDir, req.DstPrefix = l, args[0]
			case toDir != "":
				if req.ToDir, err = f.openToDir(toDir); err != nil {
					return err
				}
				for _, a := range args {
					req.Mappings = append(req.Mappings, mirror.Mapping{Src: a})
				}
			case len(args) == 2 && mappingFile == "":
				req.Mappings = []mirror.Mapping{{Src: args[0], Dst: args[1]}}
			case len(args) != 0 || mappingFile == "":
				return errors.New("want SRC DST, or -f FILE (or --to-dir / --from-dir)")
			}
			jobs, err := env.client.PlanImageMirror(req)
			if err != nil {
				return err
			}
			runErr := env.run(ctx, cmd, jobs)
			var ee *exitError
			if runErr != nil && !errors.As(runErr, &ee) {
				return runErr
			}
			if manifestsDir != "" {
				digest, tag, notes := mirror.JobMirrorSets(jobs)
				for _, n := range notes {
					env.log.Warn(n)
				}
				written, err := mirror.WriteMirrorSets(manifestsDir, objName, digest, tag, false)
				if err != nil {
					return err
				}
				if len(written) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "Mirror configuration written: %s (digest sources: ImageDigestMirrorSet/ImageContentSourcePolicy; tag sources: ImageTagMirrorSet).\n", strings.Join(written, ", "))
				}
			}
			if runErr == nil && toDir != "" {
				return f.pack(ctx, cmd, toDir)
			}
			return runErr
		},
	}
	cmd.Flags().StringVarP(&mappingFile, "filename", "f", "", "mapping file: one \"SRC DST\" pair a line (with --to-dir, DST is the name inside the directory)")
	cmd.Flags().StringVar(&toDir, "to-dir", "", "write the images into this OCI image layout directory instead of a registry")
	cmd.Flags().StringVar(&fromDir, "from-dir", "", "read the images from this OCI image layout directory (or directory of --archive-size archives) and push them under DST_PREFIX")
	cmd.Flags().StringVar(&manifestsDir, "manifests-dir", "", "when pushing to a registry: write the mirror configuration here, valid input for berth policy render: idms.yaml + icsp.yaml for sources named by digest, itms.yaml (ImageTagMirrorSet) for sources named by tag whose destination keeps the tag")
	cmd.Flags().StringVar(&objName, "name", "berth-mirror", "metadata.name prefix of the objects --manifests-dir writes")
	return cmd
}

func newMirrorReleaseCmd(f *mirrorFlags) *cobra.Command {
	var (
		from, to, toRelease, toDir, fromDir, manifestsDir, objName string
		dryRun                                                     bool
	)
	cmd := &cobra.Command{
		Use:   "release --from RELEASE --to REGISTRY/REPO [--to-dir DIR | --from-dir DIR] [--dry-run]",
		Short: "Mirror a release payload and every component it pins, and print the mirror configuration",
		Long: `Mirror a release payload: the release image and every component its
release-manifests/image-references pins (components named by tag are refused),
all into one repository, tagged <version>-<arch>-<component> (the release
image itself <version>-<arch>), by digest.

On success it prints the imageContentSources snippet for install-config.yaml
and writes ImageDigestMirrorSet (idms.yaml) and ImageContentSourcePolicy
(icsp.yaml) objects — sorted, deduplicated, split under 250 KB — into
--manifests-dir; both are valid input for "berth policy render".

With --to-dir the payload goes into a directory to carry to the disconnected
network; --from-dir there pushes it to --to (which may differ from the --to
used when writing the directory). --dry-run prints every source and
destination and copies nothing.`,
		Example: `  berth mirror release --from quay.io/openshift-release-dev/ocp-release:4.16.0-x86_64 --to mirror.local:5000/ocp/release
  berth mirror release --from quay.io/openshift-release-dev/ocp-release:4.16.0-x86_64 --to mirror.local:5000/ocp/release --to-dir /media/usb
  berth mirror release --from-dir /media/usb --to mirror.local:5000/ocp/release --manifests-dir ./cluster`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q: use --from and --to", args)
			}
			if to == "" {
				return errors.New("--to REGISTRY/REPO is required: the repository that receives the release")
			}
			if (from == "") == (fromDir == "") {
				return errors.New("give exactly one of --from RELEASE_REF or --from-dir DIR")
			}
			if toDir != "" && fromDir != "" {
				return errors.New("--to-dir and --from-dir exclude each other")
			}
			if err := f.checkArchiveFlags(toDir, fromDir); err != nil {
				return err
			}
			env, err := f.setup(cmd)
			if err != nil {
				return err
			}
			req := mirror.ReleaseRequest{From: from, To: to, ToReleaseImage: toRelease}
			if toDir != "" && !dryRun {
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
			plan, jobs, err := env.client.PlanReleaseMirror(ctx, req)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if dryRun {
				fmt.Fprintf(out, "# release %s (%s): %d images, nothing copied (--dry-run)\n", plan.Version, plan.Arch, len(plan.Images))
				for _, pi := range plan.Images {
					fmt.Fprintf(out, "%s %s\n", pi.Source, pi.Destination)
				}
				fmt.Fprintln(out)
				fmt.Fprint(out, mirror.InstallConfigSnippet(plan.Mirrors, false))
				return nil
			}
			runErr := env.run(ctx, cmd, jobs)
			var ee *exitError
			if runErr != nil && !errors.As(runErr, &ee) {
				return runErr
			}
			if manifestsDir == "" {
				manifestsDir = "."
				if toDir != "" {
					manifestsDir = toDir
				}
			}
			if objName == "" {
				objName = "release-" + plan.Version
			}
			if _, err := mirror.WriteMirrorSets(manifestsDir, objName, plan.Mirrors, nil, true); err != nil {
				return err
			}
			fmt.Fprintf(out, "\nRelease %s (%s) mirrored to %s.\n", plan.Version, plan.Arch, to)
			fmt.Fprintf(out, "To use it, add to install-config.yaml:\n\n%s\n", mirror.InstallConfigSnippet(plan.Mirrors, false))
			fmt.Fprintf(out, "For a running cluster apply %s (or the older %s).\n",
				filepath.Join(manifestsDir, "idms.yaml"), filepath.Join(manifestsDir, "icsp.yaml"))
			if runErr == nil && toDir != "" {
				return f.pack(ctx, cmd, toDir)
			}
			return runErr
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "release image reference, by tag or digest")
	fl.StringVar(&to, "to", "", "REGISTRY/REPO receiving the release image and every component")
	fl.StringVar(&toRelease, "to-release-image", "", "where the release image itself goes (default TO:<version>-<arch>)")
	fl.StringVar(&toDir, "to-dir", "", "write the payload into this OCI image layout directory instead of --to's registry")
	fl.StringVar(&fromDir, "from-dir", "", "push a payload written by --to-dir from this directory to --to")
	fl.BoolVar(&dryRun, "dry-run", false, "print every source and destination and the mirror configuration; copy nothing")
	fl.StringVar(&manifestsDir, "manifests-dir", "", "directory for idms.yaml and icsp.yaml (default: --to-dir, else the current directory)")
	fl.StringVar(&objName, "name", "", "metadata.name prefix of the generated objects (default release-<version>)")
	return cmd
}

// checkArchiveFlags rejects archive flags where they mean nothing.
func (f *mirrorFlags) checkArchiveFlags(toDir, fromDir string) error {
	if f.archiveSize != "" {
		if toDir == "" {
			return errors.New("--archive-size packs a --to-dir directory: add --to-dir DIR")
		}
		if _, err := f.archiveBytes(); err != nil {
			return err
		}
	}
	if f.archiveDir != "" && f.archiveSize == "" {
		return errors.New("--archive-dir is where --archive-size writes its archives: add --archive-size SIZE")
	}
	if f.unpackDir != "" && fromDir == "" {
		return errors.New("--unpack-dir applies with --from-dir pointing at a directory of archives")
	}
	return nil
}

func (f *mirrorFlags) archiveBytes() (int64, error) {
	n, err := units.ParseBytes(f.archiveSize)
	if err != nil {
		return 0, fmt.Errorf("--archive-size: %w", err)
	}
	if n < mirror.MinArchiveSize {
		return 0, fmt.Errorf("--archive-size %s: at least 16KiB (%d bytes)", f.archiveSize, mirror.MinArchiveSize)
	}
	return n, nil
}

// pack packs the layout at dir when --archive-size asks for it.
func (f *mirrorFlags) pack(ctx context.Context, cmd *cobra.Command, dir string) error {
	if f.archiveSize == "" {
		return nil
	}
	n, err := f.archiveBytes()
	if err != nil {
		return err
	}
	adir := f.archiveDir
	if adir == "" {
		adir = mirror.DefaultArchiveDir(dir)
	}
	set, err := mirror.PackLayout(ctx, dir, adir, n)
	if err != nil {
		return fmt.Errorf("--archive-size: packing %s into %s: %w", dir, adir, err)
	}
	var total int64
	split := 0
	for _, a := range set.Archives {
		total += a.Size
	}
	for _, fl := range set.Files {
		if len(fl.Parts) > 1 {
			split++
		}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "mirror: packed %d files into %d archives (%s, %d files split across archives) in %s; carry every berth-archive-*.tar and %s\n",
		len(set.Files), len(set.Archives), units.FormatBytes(total), split, adir, mirror.ArchiveManifestFile)
	return nil
}

// openFromDir opens --from-dir: a layout, or a directory of archives,
// unpacked (and verified) into --unpack-dir when one is given, else read in
// place with only its small files extracted into a temporary directory.
// The returned cleanup removes a temporary directory.
func (f *mirrorFlags) openFromDir(ctx context.Context, cmd *cobra.Command, dir string) (*mirror.Layout, func(), error) {
	nop := func() {}
	if !mirror.IsArchiveDir(dir) {
		l, err := mirror.OpenLayout(dir, false)
		return l, nop, err
	}
	target, cleanup := f.unpackDir, nop
	if target == "" {
		tmp, err := os.MkdirTemp("", "berth-unpack-")
		if err != nil {
			return nil, nop, fmt.Errorf("--from-dir %s holds archives and unpacking needs a directory (give --unpack-dir): %w", dir, err)
		}
		target, cleanup = tmp, func() { os.RemoveAll(tmp) }
	}
	// Blobs verified by this unpack are pushed without hashing them again.
	progress, stop := f.unpackProgress(ctx, cmd, dir)
	open := mirror.OpenUnpacked
	if f.unpackDir == "" {
		open = mirror.OpenArchives
	}
	l, st, err := open(ctx, dir, target, mirror.UnpackOptions{Progress: progress})
	stop()
	if err != nil {
		cleanup()
		return nil, nop, fmt.Errorf("--from-dir %s: %w; nothing was pushed", dir, err)
	}
	if f.unpackDir == "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "mirror: reading %d archives in place from %s: %s of small files extracted and verified, large blobs verified as they are pushed\n",
			st.Archives, dir, units.FormatBytes(st.Bytes))
	} else {
		fmt.Fprintf(cmd.ErrOrStderr(), "mirror: unpacked %d archives from %s into %s: %d files, %s, every digest verified\n",
			st.Archives, dir, target, st.Files, units.FormatBytes(st.Bytes))
	}
	return l, cleanup, nil
}

// unpackProgress shows an unpack's progress as --progress asks: a bar on a
// terminal, a line every --progress-interval otherwise.
func (f *mirrorFlags) unpackProgress(ctx context.Context, cmd *cobra.Command, dir string) (func(done, total int64), func()) {
	stderr := cmd.ErrOrStderr()
	mode := f.progress
	if f.quiet {
		mode = "none"
	}
	if mode == "auto" || mode == "" {
		mode = "lines"
		if fh, ok := stderr.(*os.File); ok && isatty.IsTerminal(fh.Fd()) {
			mode = "bars"
		}
	}
	start := time.Now()
	switch mode {
	case "bars":
		p := mpb.NewWithContext(ctx, mpb.WithOutput(stderr), mpb.WithWidth(40), mpb.WithAutoRefresh())
		var bar *mpb.Bar
		return func(done, total int64) {
				if bar == nil {
					bar = p.AddBar(total, mpb.PrependDecorators(decor.Name("unpack and verify ")),
						mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")))
				}
				bar.SetCurrent(done)
			}, func() {
				if bar != nil {
					bar.SetTotal(-1, true)
				}
				p.Wait()
			}
	case "lines":
		var last time.Time
		period := f.progressPeriod
		return func(done, total int64) {
			if now := time.Now(); period > 0 && now.Sub(last) >= period {
				last = now
				secs := now.Sub(start).Seconds()
				fmt.Fprintf(stderr, "mirror: unpacking %s: %s of %s verified (%.0f%%), %.1f MiB/s\n",
					dir, units.FormatBytes(done), units.FormatBytes(total), 100*float64(done)/float64(max(total, 1)), float64(done)/(1<<20)/max(secs, 0.001))
			}
		}, func() {}
	}
	return nil, func() {}
}

func newMirrorUnpackCmd(f *mirrorFlags) *cobra.Command {
	var fromDir, toDir string
	cmd := &cobra.Command{
		Use:   "unpack --from-dir ARCHIVE_DIR --to-dir DIR",
		Short: "Unpack and verify archives written by --archive-size into an OCI image layout",
		Long: `Unpack the berth-archive-NNNN.tar files that --archive-size wrote into an
OCI image layout directory, verifying every file against the sha256 in
berth-archives.json and every archive against its own sha256.

Every archive the manifest lists must be present; missing ones are all named
before anything is read. A corrupt archive stops the unpack with its name;
files already verified stay in DIR (so a rerun with a good copy completes
it), and DIR must not be pushed until an unpack has succeeded.

"berth mirror image|release|apply --from-dir ARCHIVE_DIR --unpack-dir DIR"
does the same and then pushes; without --unpack-dir they push straight from
the archives.`,
		Example: `  berth mirror unpack --from-dir /media/dvd --to-dir ./bundle
  berth mirror image --from-dir ./bundle mirror.local:5000/mirrored`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if fromDir == "" || toDir == "" || len(args) > 0 {
				return errors.New("want: berth mirror unpack --from-dir ARCHIVE_DIR --to-dir DIR")
			}
			if !mirror.IsArchiveDir(fromDir) {
				return fmt.Errorf("--from-dir %s: no %s in it: not a directory of archives written by --archive-size", fromDir, mirror.ArchiveManifestFile)
			}
			progress, stop := f.unpackProgress(cmd.Context(), cmd, fromDir)
			st, err := mirror.UnpackArchivesWith(cmd.Context(), fromDir, toDir, mirror.UnpackOptions{Progress: progress})
			stop()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "unpacked %d archives into %s: %d files, %s, every digest verified\n", st.Archives, toDir, st.Files, units.FormatBytes(st.Bytes))
			return nil
		},
	}
	cmd.Flags().StringVar(&fromDir, "from-dir", "", "directory holding berth-archives.json and the berth-archive-NNNN.tar files")
	cmd.Flags().StringVar(&toDir, "to-dir", "", "OCI image layout directory to unpack into (created if absent)")
	return cmd
}

// openToDir opens (creating) the --to-dir layout, with what --since says
// the receiving side holds assumed present.
func (f *mirrorFlags) openToDir(dir string) (*mirror.Layout, error) {
	l, err := mirror.OpenLayout(dir, true)
	if err != nil || f.since == "" {
		return l, err
	}
	st, err := mirror.ReadStateFile(f.since)
	if err != nil {
		return nil, err
	}
	l.AssumePresent(st)
	return l, nil
}

func newMirrorStateCmd(f *mirrorFlags) *cobra.Command {
	var (
		fromDir     string
		registries  []string
		mappingFile string
	)
	cmd := &cobra.Command{
		Use:   "state --from-dir DIR | --registry HOST[:PORT]/REPO[:TAG]... | -f MAPPING",
		Short: "Print, as JSON, every digest the receiving side holds, for --since on the sending side",
		Long: `Print every blob and manifest digest the receiving side already holds, as
the JSON that --since reads.

  --from-dir DIR        what an OCI image layout directory holds (the
                        directories already imported, or kept)
  --registry REF        what a registry holds, asked over its API:
                        HOST[:PORT]/REPO covers every tag of the repository,
                        HOST[:PORT]/REPO:TAG (or @DIGEST) one image; every
                        manifest reachable from them is listed with its
                        config, layers, platform entries and referrers.
                        Repeatable; combine with --from-dir and -f freely.
  -f MAPPING            the destination repositories of a mapping file
                        (one "SRC DST" a line), each queried as a whole

Run it on the receiving side, carry the output back, and give it to --since
with --to-dir: the next directory then carries only what the receiver lacks.
Nothing is sequenced: a lost directory only means the next state lists less
and more is shipped. Digests count per registry, so push the next directory
into the repositories you queried. Credentials, --dest-insecure, --ca-file
and --certs-dir apply to the queried registries.`,
		Example: `  berth mirror state --from-dir /srv/imported > state.json
  berth mirror state --registry mirror.local:5000/ocp/release > state.json
  berth mirror release --from quay.io/openshift-release-dev/ocp-release:4.16.1-x86_64 \
      --to mirror.local:5000/ocp/release --to-dir /media/usb --since state.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 || (fromDir == "" && len(registries) == 0 && mappingFile == "") {
				return errors.New("want: berth mirror state --from-dir DIR | --registry HOST[:PORT]/REPO[:TAG] (repeatable) | -f MAPPING")
			}
			st := &mirror.State{Blobs: []string{}}
			if fromDir != "" {
				l, err := mirror.OpenLayout(fromDir, false)
				if err != nil {
					return fmt.Errorf("--from-dir: %w", err)
				}
				ls, err := l.State()
				if err != nil {
					return err
				}
				st.Blobs = append(st.Blobs, ls.Blobs...)
			}
			refs := append([]string(nil), registries...)
			if mappingFile != "" {
				ms, err := mirror.ReadMappingFile(mappingFile)
				if err != nil {
					return fmt.Errorf("-f: %w", err)
				}
				repos, err := mirror.MappingRepositories(mappingFile, ms)
				if err != nil {
					return err
				}
				refs = append(refs, repos...)
			}
			if len(refs) > 0 {
				env, err := f.setup(cmd)
				if err != nil {
					return err
				}
				rs, err := env.client.RegistryState(cmd.Context(), refs)
				if err != nil {
					return err
				}
				st.Blobs = append(st.Blobs, rs.Blobs...)
				env.log.Info("registry state", "repositories", len(refs), "digests", len(rs.Blobs))
			}
			st.Blobs = sortedUnique(st.Blobs)
			raw, err := json.MarshalIndent(st, "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", raw)
			return err
		},
	}
	cmd.Flags().StringVar(&fromDir, "from-dir", "", "an OCI image layout directory to list")
	cmd.Flags().StringSliceVar(&registries, "registry", nil, "HOST[:PORT]/REPO (every tag) or HOST[:PORT]/REPO:TAG to query (repeatable)")
	cmd.Flags().StringVarP(&mappingFile, "filename", "f", "", "mapping file whose destination repositories are queried")
	return cmd
}

func sortedUnique(ss []string) []string {
	sort.Strings(ss)
	out := ss[:0]
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// mirrorEnv is what one mirror command run needs, built from the flags.
type mirrorEnv struct {
	f      *mirrorFlags
	client *mirror.Client
	opts   mirror.Options
	log    *slog.Logger
}

func (f *mirrorFlags) setup(cmd *cobra.Command) (*mirrorEnv, error) {
	level := slog.LevelInfo
	if f.quiet {
		level = slog.LevelError
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	switch f.progress {
	case "auto", "bars", "lines", "none":
	default:
		return nil, fmt.Errorf("--progress %q: want auto, bars, lines or none", f.progress)
	}
	if f.jobs < 1 || f.blobJobs < 1 || f.perRegistry < 1 || f.retries < 1 {
		return nil, errors.New("--jobs, --blob-jobs, --max-per-registry and --retries must be at least 1")
	}
	platforms, err := mirror.ParsePlatforms(f.platforms)
	if err != nil {
		return nil, fmt.Errorf("--platform: %w", err)
	}
	kc := mirror.NewFileKeychain(mirror.AuthFiles(f.authfile, os.Getenv), f.authfile != "", log)
	if err := kc.Err(); err != nil {
		return nil, err
	}
	client, err := mirror.NewClient(mirror.ClientOptions{
		Keychain:             kc,
		InsecureSources:      f.srcInsecure,
		InsecureDestinations: f.destInsecure,
		CAFiles:              f.caFiles,
		CertsDir:             f.certsDir,
	})
	if err != nil {
		return nil, err
	}
	return &mirrorEnv{
		f:      f,
		client: client,
		log:    log,
		opts: mirror.Options{
			Jobs:        f.jobs,
			BlobJobs:    f.blobJobs,
			PerRegistry: f.perRegistry,
			Retry:       mirror.RetryPolicy{Attempts: f.retries, Base: 250 * time.Millisecond, Max: 30 * time.Second},
			Platforms:   platforms,
			NoReferrers: f.noReferrers,
			Log:         log,
		},
	}, nil
}

// run copies jobs with progress, prints the summary and writes the report.
func (e *mirrorEnv) run(ctx context.Context, cmd *cobra.Command, jobs []mirror.Job) error {
	stderr := cmd.ErrOrStderr()
	if e.f.noReferrers && e.f.policyRoot != "" {
		if err := warnSignaturesLeftBehind(stderr, e.f.policyRoot, jobs); err != nil {
			return err
		}
	}
	mode := e.f.progress
	if e.f.quiet {
		mode = "none"
	}
	if mode == "auto" {
		mode = "lines"
		if fh, ok := stderr.(*os.File); ok && isatty.IsTerminal(fh.Fd()) {
			mode = "bars"
		}
	}
	var bars *barObserver
	if mode == "bars" {
		bars = newBarObserver(ctx, stderr, len(jobs))
		e.opts.Observer = bars
	}
	copier := mirror.NewCopier(e.opts)
	stopLines := func() {}
	if mode == "lines" {
		stopLines = progressLines(stderr, copier, e.f.progressPeriod)
	}
	s := copier.Run(ctx, jobs)
	stopLines()
	if bars != nil {
		bars.wait()
	}
	out := cmd.OutOrStdout()
	for _, r := range s.Results {
		if r.Error != "" {
			continue
		}
		if !e.f.quiet {
			fmt.Fprintf(out, "%s -> %s@%s\n", r.Source, r.Destination, r.Digest)
		}
		for _, n := range r.Notes {
			e.log.Warn(n, "image", r.Source)
		}
	}
	fmt.Fprintln(stderr, "mirror:", s.String())
	if e.f.report != "" {
		raw, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(e.f.report, append(raw, '\n'), 0o644); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	if err := s.Err(); err != nil {
		return &exitError{code: exitImagesFailed, err: err}
	}
	return nil
}

// progressLines prints one line every period until stopped.
func progressLines(w io.Writer, c *mirror.Copier, period time.Duration) func() {
	if period <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p := c.Progress()
				secs := time.Since(start).Seconds()
				fmt.Fprintf(w, "mirror: %d/%d images, %d blobs, %.1f MiB, %.1f MiB/s\n",
					p.ImagesDone, p.ImagesTotal, p.BlobsDone, float64(p.Bytes)/(1<<20), float64(p.Bytes)/(1<<20)/secs)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// barObserver draws an overall bar, a bar per image in progress and a bar
// per blob being transferred (terminal only).
type barObserver struct {
	p     *mpb.Progress
	total *mpb.Bar
	mu    sync.Mutex
	imgs  map[string]*mpb.Bar
	blobs map[string]*mpb.Bar
}

func newBarObserver(ctx context.Context, w io.Writer, n int) *barObserver {
	p := mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithAutoRefresh())
	total := p.AddBar(int64(n), mpb.PrependDecorators(decor.Name("images "), decor.CountersNoUnit("%d/%d")),
		mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO)))
	return &barObserver{p: p, total: total, imgs: map[string]*mpb.Bar{}, blobs: map[string]*mpb.Bar{}}
}

func (b *barObserver) Observe(e mirror.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e.Kind {
	case mirror.ImageStarted:
		b.imgs[e.Image] = b.p.AddSpinner(0, mpb.BarRemoveOnComplete(),
			mpb.PrependDecorators(decor.Name(shorten(e.Image, 60)+" ")),
			mpb.AppendDecorators(decor.CurrentKibiByte("% .1f")))
	case mirror.BlobStarted:
		b.blobs[e.Image+e.Digest.String()] = b.p.AddBar(e.Size, mpb.BarRemoveOnComplete(),
			mpb.PrependDecorators(decor.Name("  "+e.Digest.Hex[:12]+" ")),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f")))
	case mirror.BlobProgress:
		if bar := b.blobs[e.Image+e.Digest.String()]; bar != nil {
			bar.IncrInt64(e.N)
		}
		if bar := b.imgs[e.Image]; bar != nil {
			bar.IncrInt64(e.N)
		}
	case mirror.BlobDone:
		if bar := b.blobs[e.Image+e.Digest.String()]; bar != nil {
			bar.SetTotal(-1, true)
			delete(b.blobs, e.Image+e.Digest.String())
		}
	case mirror.ImageDone:
		if bar := b.imgs[e.Image]; bar != nil {
			bar.SetTotal(-1, true)
			delete(b.imgs, e.Image)
		}
		b.total.Increment()
	}
}

func (b *barObserver) wait() {
	b.mu.Lock()
	for k, bar := range b.blobs {
		bar.Abort(true)
		delete(b.blobs, k)
	}
	for k, bar := range b.imgs {
		bar.Abort(true)
		delete(b.imgs, k)
	}
	b.mu.Unlock()
	b.p.Wait()
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}
