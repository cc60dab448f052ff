package noderoot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-registry/berth/internal/policy"
)

// errNoExchange: the platform or file system has no atomic directory swap.
var errNoExchange = errors.New("no atomic directory exchange")

// Rendered reports whether a path (slash-separated, relative to a node
// root) is one that render writes; a root holding anything else is not ours
// to replace.
func Rendered(rel string) bool {
	switch rel {
	case policy.RegistriesConfPath, policy.SearchDropInPath, policy.PolicyJSONPath, policy.SigstoreRegistriesPath:
		return true
	}
	for _, d := range []string{policy.DockerCertsDir, policy.ContainersCertsDir} {
		rest, ok := strings.CutPrefix(rel, d+"/")
		if ok && strings.Count(rest, "/") == 1 && strings.HasSuffix(rest, "/ca.crt") {
			return true
		}
	}
	if ns, ok := strings.CutPrefix(rel, policy.CRIOPoliciesDir+"/"); ok && !strings.Contains(ns, "/") && strings.HasSuffix(ns, ".json") && len(ns) > len(".json") {
		return true
	}
	return false
}

// Previous returns the files of the root render is about to replace, or
// the base files when there is none yet, so the summary says what a node
// would see change. It refuses a directory holding anything render did not
// write.
func Previous(root string, base policy.Base) (map[string][]byte, error) {
	if err := recoverRoot(root); err != nil {
		return nil, err
	}
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
		if !Rendered(rel) {
			return fmt.Errorf("%s holds %s, which berth policy render did not write; refusing to replace it (use an empty or new directory)", root, rel)
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

// Write replaces root as a whole with files (slash-separated paths relative
// to the root): see the package comment for what a crash leaves.
func Write(root string, files map[string][]byte) error {
	return write(root, files, exchange)
}

func write(root string, files map[string][]byte, exchange func(a, b string) error) (err error) {
	if root, err = filepath.Abs(root); err != nil {
		return err
	}
	if err := recoverRoot(root); err != nil {
		return err
	}
	parent, base := filepath.Dir(root), filepath.Base(root)
	if stale, _ := filepath.Glob(filepath.Join(parent, "."+base+".tmp-*")); len(stale) > 0 {
		for _, s := range stale {
			if err := os.RemoveAll(s); err != nil {
				return fmt.Errorf("removing %s, left by an interrupted render: %w", s, err)
			}
		}
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
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
	rels := make([]string, 0, len(files))
	for rel := range files {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	dirs := map[string]bool{tmp: true}
	for _, rel := range rels {
		p := filepath.Join(tmp, filepath.FromSlash(rel))
		if !strings.HasPrefix(p, tmp+string(filepath.Separator)) {
			return fmt.Errorf("refusing to write %q outside the root", rel)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		for d := filepath.Dir(p); d != tmp && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
		if err := writeFileSync(p, files[rel]); err != nil {
			return err
		}
	}
	// The new tree's directory entries are durable before it is swapped in.
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, root); err != nil {
			return err
		}
		tmp = ""
		return syncDir(parent)
	}
	// Swap both directories in one step; tmp then holds the old root and is removed.
	err = exchange(tmp, root)
	if errors.Is(err, errNoExchange) {
		old := oldPath(root)
		if err := os.Rename(root, old); err != nil {
			return err
		}
		if err := os.Rename(tmp, root); err != nil {
			if rerr := os.Rename(old, root); rerr != nil {
				return fmt.Errorf("moving the new root into place: %w; the old root is at %s (putting it back failed: %v)", err, old, rerr)
			}
			return err
		}
		if err := syncDir(parent); err != nil {
			return err
		}
		tmp = old
		return nil
	}
	if err != nil {
		return fmt.Errorf("swapping %s into place: %w", root, err)
	}
	return syncDir(parent)
}

// oldPath is where the fallback swap keeps the old root between its two renames.
func oldPath(root string) string {
	return filepath.Join(filepath.Dir(root), "."+filepath.Base(root)+".old")
}

// recoverRoot finishes or rolls back a fallback swap a crash interrupted:
// with no root, the old one goes back; with a root, the old one is removed.
func recoverRoot(root string) error {
	old := oldPath(root)
	if _, err := os.Stat(old); err != nil {
		return nil
	}
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(old, root)
	}
	return os.RemoveAll(old)
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

// Load reads what the runtime reads from a node root into a policy.Node.
// It never writes: a root an interrupted swap left at ".NAME.old" is read
// from there.
func Load(root string) (*policy.Node, error) {
	root = readable(root)
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
	drops, err := readDir(root, RegistriesConfDir, ".conf")
	if err != nil {
		return nil, err
	}
	regd, err := readDir(root, policy.RegistriesDDir, ".yaml")
	if err != nil {
		return nil, err
	}
	crio, err := readDir(root, policy.CRIOPoliciesDir, ".json")
	if err != nil {
		return nil, err
	}
	n, err := policy.LoadNode(conf, drops, pol)
	if err != nil {
		return nil, err
	}
	if err := n.LoadSignatureFiles(regd, crio); err != nil {
		return nil, err
	}
	return n, nil
}

// readDir reads the files of one directory of the root with the given
// suffix, in name order (the runtime's order); a missing directory has none.
func readDir(root, rel, suffix string) ([]policy.NamedFile, error) {
	names, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(rel), "*"+suffix))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var files []policy.NamedFile
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		files = append(files, policy.NamedFile{Name: n, Data: b})
	}
	return files, nil
}

// readable is root, or the old root an interrupted fallback swap left
// beside it when root itself is missing.
func readable(root string) string {
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(oldPath(root)); err == nil {
			return oldPath(root)
		}
	}
	return root
}
