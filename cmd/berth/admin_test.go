package main

import (
	"os"
	"path/filepath"
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
	if err := os.WriteFile(cfg, []byte("auth:\n  htpasswd: "+htpasswd+"\n  tokenSecret: "+secret+"\n"), 0o600); err != nil {
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
	if err := os.WriteFile(noSecret, []byte("readOnly: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runBerthIn(t, "", "admin", "token", "create", "--config", noSecret, "--user", "x"); err == nil || !strings.Contains(err.Error(), "open.yaml: no token signing secret") {
		t.Errorf("no secret: %v", err)
	}
}
