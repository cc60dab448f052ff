package selfimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BinaryOptions say how to build the berth binary.
type BinaryOptions struct {
	// ModuleDir is the root of Berth's module (where go.mod is).
	ModuleDir string
	// Out is the path the binary is written to.
	Out string
	// Version and Revision are linked into package main (main.version,
	// main.revision), where `berth version` prints them.
	Version, Revision string
	// GOOS and GOARCH: empty means linux and the Go toolchain's default.
	GOOS, GOARCH string
	// Go is the go command (default "go" from PATH).
	Go string
}

// GoBuildArgs are the arguments of `go build` for a static, reproducible
// binary: no cgo (set in the environment), no file system paths, no build
// id, no VCS stamp (the revision is passed explicitly instead, so a build
// outside a git checkout gives the same bytes), and the container runtime
// library's cgo-free OpenPGP backend (the tag every build of Berth needs).
func GoBuildArgs(o BinaryOptions) []string {
	ldflags := "-s -w -buildid= -X main.version=" + o.Version
	if o.Revision != "" {
		ldflags += " -X main.revision=" + o.Revision
	}
	return []string{"build", "-tags", "containers_image_openpgp", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", o.Out, "./cmd/berth"}
}

// BuildBinary runs `go build` for a statically linked berth binary.
func BuildBinary(ctx context.Context, o BinaryOptions) error {
	if o.ModuleDir == "" || o.Out == "" {
		return errors.New("selfimage: BuildBinary needs ModuleDir and Out")
	}
	if strings.ContainsAny(o.Version+o.Revision, " \t\n'\"") {
		return fmt.Errorf("selfimage: version %q and revision %q must not contain spaces or quotes", o.Version, o.Revision)
	}
	if _, err := os.Stat(filepath.Join(o.ModuleDir, "cmd", "berth")); err != nil {
		return fmt.Errorf("selfimage: %s is not Berth's module (no cmd/berth): %w", o.ModuleDir, err)
	}
	gocmd := o.Go
	if gocmd == "" {
		gocmd = "go"
	}
	goos := o.GOOS
	if goos == "" {
		goos = "linux"
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return err
	}
	o.Out = out
	cmd := exec.CommandContext(ctx, gocmd, GoBuildArgs(o)...)
	cmd.Dir = o.ModuleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOFLAGS=")
	if o.GOARCH != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+o.GOARCH)
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("selfimage: go build: %w\n%s", err, stderr.Bytes())
	}
	return nil
}

// Revision is what git says about a checkout.
type Revision struct {
	// Commit is HEAD's full id.
	Commit string
	// Time is HEAD's commit time.
	Time time.Time
	// Dirty: tracked files differ from HEAD.
	Dirty bool
}

// Label is the revision label: the commit, with "-dirty" when the work tree
// had changes the commit does not hold.
func (r Revision) Label() string {
	if r.Commit == "" || !r.Dirty {
		return r.Commit
	}
	return r.Commit + "-dirty"
}

// GitRevision asks git about the checkout at dir. A missing git or a
// directory outside a checkout is an error; callers fall back to no
// revision.
func GitRevision(ctx context.Context, dir string) (Revision, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "log", "-1", "--format=%H %ct").Output()
	if err != nil {
		return Revision{}, fmt.Errorf("selfimage: git log in %s: %w", dir, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return Revision{}, fmt.Errorf("selfimage: git log in %s: unexpected output %q", dir, out)
	}
	secs, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return Revision{}, fmt.Errorf("selfimage: git log in %s: commit time %q: %w", dir, f[1], err)
	}
	rev := Revision{Commit: f[0], Time: time.Unix(secs, 0).UTC()}
	status, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output()
	if err != nil {
		return Revision{}, fmt.Errorf("selfimage: git status in %s: %w", dir, err)
	}
	rev.Dirty = len(bytes.TrimSpace(status)) > 0
	return rev, nil
}

// SourceDateEpoch reads SOURCE_DATE_EPOCH (https://reproducible-builds.org):
// ok is false when it is unset.
func SourceDateEpoch(getenv func(string) string) (t time.Time, ok bool, err error) {
	v := getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Time{}, false, nil
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil || secs < 0 {
		return time.Time{}, false, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970 as a non-negative integer", v)
	}
	return time.Unix(secs, 0).UTC(), true, nil
}

// IsModuleDir reports whether dir holds Berth's go.mod.
func IsModuleDir(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(first) == "module github.com/berth-registry/berth"
}
