package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/selfimage"
	"github.com/spf13/cobra"
)

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Berth's own container image",
	}
	cmd.AddCommand(newImageBuildCmd())
	return cmd
}

func newImageBuildCmd() *cobra.Command {
	var (
		binary, source, ver, rev, arch, layoutDir, push, authfile, caBundle, licenses string
		insecure                                                                      bool
	)
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build Berth's container image, reproducibly, into an OCI layout (and push it)",
		Long: `Build Berth's container image without a container engine: a statically
linked berth binary (CGO_ENABLED=0, -trimpath, no build id) at /usr/bin/berth,
a non-root user (65532:65532) that owns /var/lib/berth, the data volume, and
"berth serve --root /var/lib/berth --addr :5000" as the command. Labels:
org.opencontainers.image.version, .source, .revision (from git), .title and
.licenses (when --licenses is set).

Without --binary the binary is built from the module at --source (the
current directory by default) with the Go toolchain on PATH.

Two builds of the same source give the same digest: every file's time is
SOURCE_DATE_EPOCH, else the commit time of HEAD, else ` + selfimage.DefaultCreated.Format(time.RFC3339) + `;
owners, modes, entry order and the gzip header are fixed.

The image is written to the OCI layout --layout under the tag --version
(skopeo, podman and crane read it as oci:DIR:VERSION), and pushed to --push
with the same registry client, credentials (--authfile, else the usual auth
files) and retries as berth mirror.`,
		Example: `  berth image build --version 1.2.0 --layout berth-image
  berth image build --push registry.example.com/berth/berth:1.2.0
  berth image build --push 127.0.0.1:5000/berth/berth:dev --insecure
  podman run -d --runtime runc -p 5000:5000 127.0.0.1:5000/berth/berth:dev`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))

			created, fromEnv, err := selfimage.SourceDateEpoch(os.Getenv)
			if err != nil {
				return err
			}
			gitRev, gitErr := selfimage.GitRevision(ctx, source)
			if rev == "" && gitErr == nil {
				rev = gitRev.Label()
			}
			if !fromEnv {
				created = selfimage.DefaultCreated
				if gitErr == nil {
					created = gitRev.Time
				}
			}

			if binary == "" {
				if !selfimage.IsModuleDir(source) {
					return fmt.Errorf("--source %s is not Berth's module (its go.mod does not say module github.com/berth-registry/berth); pass it, or --binary", source)
				}
				tmp, err := os.MkdirTemp("", "berth-image-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				binary = filepath.Join(tmp, "berth")
				start := time.Now()
				if err := selfimage.BuildBinary(ctx, selfimage.BinaryOptions{ModuleDir: source, Out: binary, Version: ver, Revision: rev, GOARCH: arch}); err != nil {
					return err
				}
				fmt.Fprintf(errOut, "built %s in %s\n", binary, time.Since(start).Round(100*time.Millisecond))
			}

			img, err := selfimage.Build(selfimage.Config{
				Binary:   binary,
				Arch:     arch,
				Version:  ver,
				Revision: rev,
				Licenses: licenses,
				Created:  created,
				CABundle: caBundle,
			})
			if err != nil {
				return err
			}
			digest, err := selfimage.WriteLayout(layoutDir, img, ver)
			if err != nil {
				return err
			}
			size := int64(0)
			if layers, err := img.Layers(); err == nil && len(layers) == 1 {
				size, _ = layers[0].Size()
			}
			fmt.Fprintf(out, "image %s (linux/%s, berth %s, layer %d bytes) in oci:%s:%s\n", digest, arch, ver, size, layoutDir, ver)
			if push == "" {
				return nil
			}
			kc := mirror.NewFileKeychain(mirror.AuthFiles(authfile, os.Getenv), authfile != "", log)
			if err := kc.Err(); err != nil {
				return err
			}
			res, err := selfimage.Push(ctx, layoutDir, digest, push, mirror.RegistryOptions{Keychain: kc, Insecure: insecure}, log)
			if err != nil {
				return err
			}
			if res.Digest != digest.String() {
				return errors.New("the registry stored digest " + res.Digest + ", not " + digest.String())
			}
			_, err = fmt.Fprintf(out, "pushed %s (%s)\n", push, res.Digest)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&binary, "binary", "", "a statically linked berth binary to package instead of building one")
	fl.StringVar(&source, "source", ".", "Berth's module directory: what is built, and where git is asked for the revision")
	fl.StringVar(&ver, "version", "devel", "the version linked into the binary and the version label and layout tag")
	fl.StringVar(&rev, "revision", "", "the revision label (default: HEAD's commit, with -dirty when the tree has changes)")
	fl.StringVar(&arch, "arch", runtime.GOARCH, "the image's architecture (GOARCH)")
	fl.StringVar(&layoutDir, "layout", "berth-image", "the OCI layout directory to write")
	fl.StringVar(&push, "push", "", "push the image to HOST/REPO[:TAG]")
	fl.BoolVar(&insecure, "insecure", false, "allow plain HTTP to the --push registry")
	fl.StringVar(&authfile, "authfile", "", "registry credentials file (default: the usual auth files)")
	fl.StringVar(&caBundle, "ca-bundle", "", "a PEM file of trusted CAs to put at "+selfimage.CABundlePath+" (for TLS upstreams)")
	fl.StringVar(&licenses, "licenses", "", "the org.opencontainers.image.licenses label (an SPDX expression)")
	return cmd
}
