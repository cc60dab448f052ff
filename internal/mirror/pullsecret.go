package mirror

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MergePullSecret adds host's credentials to the auths JSON file at path
// (a cluster pull secret, podman's auth.json, docker's config.json), as the
// install docs ask admins to do by hand for a mirror registry. Every other
// entry and top-level field is kept as it was; the file keeps its mode and
// is replaced atomically, so a crash leaves the old file or the new one.
// It reports whether an entry for host was replaced.
func MergePullSecret(path, host, user, password string) (replaced bool, err error) {
	if host == "" || strings.ContainsAny(host, "/ ") {
		return false, fmt.Errorf("--registry %q: want HOST[:PORT], as the cluster pulls from it", host)
	}
	if user == "" || password == "" || strings.Contains(user, ":") {
		return false, errors.New("want a user (without ':') and a non-empty password")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return false, fmt.Errorf("pull secret %s: %w", path, err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return false, fmt.Errorf("pull secret %s: not a JSON object: %w", path, err)
	}
	auths := map[string]json.RawMessage{}
	if a, ok := doc["auths"]; ok {
		if err := json.Unmarshal(a, &auths); err != nil {
			return false, fmt.Errorf("pull secret %s: \"auths\" is not an object: %w", path, err)
		}
	}
	_, replaced = auths[host]
	entry, _ := json.Marshal(map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))})
	auths[host] = entry
	if doc == nil {
		doc = map[string]json.RawMessage{}
	}
	if doc["auths"], err = json.Marshal(auths); err != nil {
		return false, err
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return false, err
	}
	// Keep the layout people recognise: indented unless it was one line.
	if bytes.Contains(bytes.TrimSpace(raw), []byte("\n")) {
		var buf bytes.Buffer
		_ = json.Indent(&buf, out, "", "  ")
		out = buf.Bytes()
	}
	out = append(out, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return false, err
	}
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	return replaced, os.Rename(tmp.Name(), path)
}
