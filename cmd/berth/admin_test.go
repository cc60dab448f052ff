package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/auth"
)

// TestAdminCommands makes an htpasswd line and a robot token with the CLI
// and proves an authorizer built from the same config accepts both.
func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	line, _, err := runBerthIn(t, "correct horse\n", "admin", "htpasswd", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "alice:$2") {
		t.Fatalf("htpasswd line %q", line)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "registry.yaml")
	const secret = "0123456789abcdef0123456789abcdef"
	if err := os.WriteFile(cfg, []byte("storage: {filesystem: {rootDirectory: "+filepath.Join(dir, "data")+"}}\nauth:\n  htpasswd: "+htpasswd+"\n  tokenSecret: "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runBerthIn(t, "", "admin", "token", "create", "--config", cfg, "--user", "ci-bot", "--expires", "1h")
	if err != nil {
		t.Fatal(err)
	}
	robot := strings.TrimSpace(out)

	a, err := auth.New(auth.Config{HtpasswdFile: htpasswd, SigningKey: auth.SigningKey(secret, "")})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := a.Basic("alice", "correct horse"); err != nil || id.Name != "alice" {
		t.Errorf("the htpasswd line does not verify: %v", err)
	}
	if id, err := a.Basic("ci-bot", robot); err != nil || id.Name != "ci-bot" {
		t.Errorf("the robot token does not verify: %v", err)
	}

	for name, tc := range map[string]struct {
		stdin string
		args  []string
		want  string
	}{
		"no user":        {"", []string{"admin", "token", "create", "--config", cfg}, "--user is required"},
		"no config":      {"", []string{"admin", "token", "create", "--user", "x"}, "--config is required"},
		"no expiry":      {"", []string{"admin", "token", "create", "--config", cfg, "--user", "x", "--expires", "0s"}, "positive lifetime"},
		"empty password": {"\n", []string{"admin", "htpasswd", "bob"}, "empty"},
		"bad user name":  {"pw\n", []string{"admin", "htpasswd", "bo:b"}, "colon"},
	} {
		if _, _, err := runBerthIn(t, tc.stdin, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	noSecret := filepath.Join(dir, "open.yaml")
	if err := os.WriteFile(noSecret, []byte("storage: {emptyDir: {}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runBerthIn(t, "", "admin", "token", "create", "--config", noSecret, "--user", "x"); err == nil || !strings.Contains(err.Error(), "open.yaml: no token signing secret") {
		t.Errorf("no secret: %v", err)
	}
}

func TestAdminPullSecretMerge(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pull-secret.json")
	orig := `{"auths":{"quay.io":{"auth":"cXVheTpzZWNyZXQ=","email":"a@example.com"},"registry.redhat.io":{"auth":"cmg6cGFzcw=="}},"credsStore":"desktop"}`
	if err := os.WriteFile(file, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	read := func() map[string]any {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%v\n%s", err, raw)
		}
		return doc
	}
	before := read()
	out, errOut, err := runBerthIn(t, "s3cret\n", "admin", "pull-secret", "merge", "--registry", "mirror.example.com:5000", "--user", "mirror", "--password-stdin", file)
	if err != nil || !strings.Contains(out, "added") {
		t.Fatalf("merge: %v %s %s", err, out, errOut)
	}
	after := read()
	auths := after["auths"].(map[string]any)
	if got := auths["mirror.example.com:5000"].(map[string]any)["auth"]; got != base64.StdEncoding.EncodeToString([]byte("mirror:s3cret")) {
		t.Errorf("mirror entry auth = %v", got)
	}
	for _, k := range []string{"quay.io", "registry.redhat.io"} {
		if !reflect.DeepEqual(auths[k], before["auths"].(map[string]any)[k]) {
			t.Errorf("%s changed: %v -> %v", k, before["auths"].(map[string]any)[k], auths[k])
		}
	}
	if after["credsStore"] != "desktop" {
		t.Errorf("top-level field lost: %v", after)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 kept", fi.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// Again: replaced, still one entry.
	if out, _, err := runBerthIn(t, "other\n", "admin", "pull-secret", "merge", "--registry", "mirror.example.com:5000", "--user", "mirror", "--password-stdin", file); err != nil || !strings.Contains(out, "replaced") {
		t.Fatalf("second merge: %v %s", err, out)
	}
	if n := len(read()["auths"].(map[string]any)); n != 3 {
		t.Errorf("%d entries after replacing one, want 3", n)
	}
	// Bad input changes nothing.
	raw, _ := os.ReadFile(file)
	for _, args := range [][]string{
		{"--registry", "mirror.example.com/path", "--user", "u", "--password-stdin", file},
		{"--registry", "m:5000", "--user", "u", file},
		{"--registry", "m:5000", "--user", "u", "--password-stdin", filepath.Join(dir, "missing.json")},
	} {
		if _, _, err := runBerthIn(t, "pw\n", append([]string{"admin", "pull-secret", "merge"}, args...)...); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("not json"), 0o644)
	if _, _, err := runBerthIn(t, "pw\n", "admin", "pull-secret", "merge", "--registry", "m:5000", "--user", "u", "--password-stdin", bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("a file that is not JSON: %v", err)
	}
	if now, _ := os.ReadFile(file); string(now) != string(raw) {
		t.Error("a refused merge changed the file")
	}
}
