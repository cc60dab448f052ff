package selfimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed shape.
const (
	// UID and GID are the non-root user and group the registry runs as
	// (65532, the "nonroot" id of distroless images).
	UID, GID = 65532, 65532
	// UserName names that user in /etc/passwd and /etc/group.
	UserName = "berth"
	// BinaryPath is where the berth binary sits in the image.
	BinaryPath = "/usr/bin/berth"
	// DataDir is the registry's storage directory and the image's volume.
	DataDir = "/var/lib/berth"
	// Port is the port berth serve listens on inside the container.
	Port = 5000
	// CABundlePath is where an optional CA bundle is put; Go's crypto/x509
	// reads it on Linux.
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
)

// DefaultCreated is the creation time of an image built with no
// SOURCE_DATE_EPOCH and no commit time: a constant, so builds still agree.
var DefaultCreated = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// OCI annotation keys used as config labels and manifest annotations.
const (
	LabelVersion  = "org.opencontainers.image.version"
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelTitle    = "org.opencontainers.image.title"
	LabelCreated  = "org.opencontainers.image.created"
	LabelLicenses = "org.opencontainers.image.licenses"
)

// Config says what goes into the image. Only Binary is required.
type Config struct {
	// Binary is the path of a statically linked berth binary built for
	// Platform (see BuildBinary).
	Binary string
	// Arch is the image's architecture (a GOARCH); empty means the
	// binary's. The OS is always linux.
	Arch string
	// Version is the org.opencontainers.image.version label ("devel" when
	// empty).
	Version string
	// Revision is the source revision (a commit id); no label when empty.
	Revision string
	// Source is the repository URL (DefaultSource when empty).
	Source string
	// Licenses is an SPDX expression; no label when empty.
	Licenses string
	// Created is the image's creation time and every file's modification
	// time (DefaultCreated when zero); it is truncated to seconds.
	Created time.Time
	// CABundle, when set, is a PEM file of trusted CAs copied to
	// CABundlePath, for pull-through and imports from TLS upstreams.
	CABundle string
}

// DefaultSource is the project's repository.
const DefaultSource = "https://github.com/berth-registry/berth"

// Build assembles the image. The result depends only on cfg and the bytes
// of the files it names.
func Build(cfg Config) (v1.Image, error) {
	if cfg.Binary == "" {
		return nil, errors.New("selfimage: no berth binary given")
	}
	bin, err := os.ReadFile(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("selfimage: %w", err)
	}
	arch, err := staticELF(bin)
	if err != nil {
		return nil, fmt.Errorf("selfimage: %s: %w", cfg.Binary, err)
	}
	if cfg.Arch != "" && cfg.Arch != arch {
		return nil, fmt.Errorf("selfimage: %s is a %s binary, not %s", cfg.Binary, arch, cfg.Arch)
	}
	var ca []byte
	if cfg.CABundle != "" {
		if ca, err = os.ReadFile(cfg.CABundle); err != nil {
			return nil, fmt.Errorf("selfimage: CA bundle: %w", err)
		}
	}
	created := cfg.Created
	if created.IsZero() {
		created = DefaultCreated
	}
	created = created.UTC().Truncate(time.Second)

	layerBytes, err := rootfs(bin, ca, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("selfimage: layer: %w", err)
	}

	labels := Labels(cfg)
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "berth image build",
			Comment:   "berth " + labels[LabelVersion],
		},
	})
	if err != nil {
		return nil, fmt.Errorf("selfimage: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("selfimage: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.OS, cf.Architecture = "linux", arch
	cf.Author = ""
	cf.Config = v1.Config{
		User:         strconv.Itoa(UID) + ":" + strconv.Itoa(GID),
		Entrypoint:   []string{BinaryPath},
		Cmd:          []string{"serve", "--root", DataDir, "--addr", ":" + strconv.Itoa(Port)},
		WorkingDir:   DataDir,
		Env:          []string{"PATH=/usr/bin", "HOME=" + DataDir},
		ExposedPorts: map[string]struct{}{strconv.Itoa(Port) + "/tcp": {}},
		Volumes:      map[string]struct{}{DataDir: {}},
		Labels:       labels,
		StopSignal:   "SIGTERM",
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("selfimage: %w", err)
	}
	anns := map[string]string{LabelCreated: created.Format(time.RFC3339)}
	for k, v := range labels {
		anns[k] = v
	}
	return mutate.Annotations(img, anns).(v1.Image), nil
}

// Labels are the OCI labels cfg gives the image.
func Labels(cfg Config) map[string]string {
	l := map[string]string{
		LabelTitle:   "berth",
		LabelVersion: cfg.Version,
		LabelSource:  cfg.Source,
	}
	if l[LabelVersion] == "" {
		l[LabelVersion] = "devel"
	}
	if l[LabelSource] == "" {
		l[LabelSource] = DefaultSource
	}
	if cfg.Revision != "" {
		l[LabelRevision] = cfg.Revision
	}
	if cfg.Licenses != "" {
		l[LabelLicenses] = cfg.Licenses
	}
	return l
}

// staticELF checks that bin is a Linux ELF executable with no program
// interpreter (so it runs in an image without a libc) and returns its GOARCH.
func staticELF(bin []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return "", fmt.Errorf("not an ELF executable: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errors.New("dynamically linked (it has a program interpreter); build it with CGO_ENABLED=0")
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_PPC64:
		return "ppc64le", nil
	case elf.EM_S390:
		return "s390x", nil
	case elf.EM_RISCV:
		return "riscv64", nil
	}
	return "", fmt.Errorf("unsupported ELF machine %s", f.Machine)
}

// entry is one file or directory of the root file system.
type entry struct {
	name     string // relative, no leading slash; directories end in "/"
	mode     int64
	uid, gid int
	data     []byte
}

// rootfs writes the layer: a sorted tar with fixed owners, modes and times,
// gzipped with an empty header.
func rootfs(bin, ca []byte, mtime time.Time) ([]byte, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", UserName, UID, GID, UserName, DataDir)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", UserName, GID)
	entries := []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "tmp/", mode: 0o1777},
		{name: "usr/", mode: 0o755},
		{name: "usr/bin/", mode: 0o755},
		{name: BinaryPath[1:], mode: 0o755, data: bin},
		{name: "var/", mode: 0o755},
		{name: "var/lib/", mode: 0o755},
		{name: DataDir[1:] + "/", mode: 0o755, uid: UID, gid: GID},
	}
	if ca != nil {
		entries = append(entries,
			entry{name: "etc/ssl/", mode: 0o755},
			entry{name: "etc/ssl/certs/", mode: 0o755},
			entry{name: CABundlePath[1:], mode: 0o644, data: ca})
	}
	sortEntries(entries)

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	// The zero header: no name, no modification time, OS "unknown".
	zw.Header = gzip.Header{OS: 255}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		if e.name[len(e.name)-1] == '/' {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		// Plain USTAR: no PAX records (access times, sub-second times)
		// that could differ between builds.
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("selfimage: tar %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("selfimage: tar %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sortEntries orders entries by path, so a directory comes right before
// what it holds.
func sortEntries(es []entry) {
	key := func(e entry) string { return path.Clean(e.name) }
	sort.Slice(es, func(i, j int) bool { return key(es[i]) < key(es[j]) })
}
