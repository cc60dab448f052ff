package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/server"
)

// TestAdminTokenListRevoke creates two robot tokens for one user with the
// CLI against a running `berth serve` (a child process on SQLite), revokes
// one with the CLI, and sees serve answer it 401 UNAUTHORIZED within the
// refresh interval while the other keeps working; list shows both, one
// revoked; an unknown id revokes nothing.
func TestAdminTokenListRevoke(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "registry.yaml")
	doc := "storage: {filesystem: {rootDirectory: " + root + "}}\nauth:\n  tokenSecret: 0123456789abcdef0123456789abcdef\n  roleBindings:\n  - {role: registry-viewer, namespace: \"*\", users: [ci-bot]}\n"
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	create := func() string {
		t.Helper()
		out, stderr, err := runBerth(t, "admin", "token", "create", "--config", cfg, "--user", "ci-bot", "--expires", "1h")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(stderr, "robot token ") {
			t.Fatalf("create did not say the id: %q", stderr)
		}
		return strings.TrimSpace(out)
	}
	list := func() []struct {
		ID, User         string
		Created, Expires time.Time
		Revoked          *time.Time
	} {
		t.Helper()
		out, _, err := runBerth(t, "admin", "token", "list", "--config", cfg, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var rows []struct {
			ID, User         string
			Created, Expires time.Time
			Revoked          *time.Time
		}
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return rows
	}
	// One at a time, so which id is which token is known (two made in
	// the same second list in id order).
	tokens := []string{create()}
	first := list()
	tokens = append(tokens, create())
	rows := list()
	if len(first) != 1 || len(rows) != 2 {
		t.Fatalf("list = %+v, then %+v", first, rows)
	}
	if rows[0].ID != first[0].ID {
		rows[0], rows[1] = rows[1], rows[0]
	}
	if rows[0].User != "ci-bot" || rows[0].Revoked != nil || rows[1].Expires.Sub(rows[1].Created) != time.Hour {
		t.Fatalf("list = %+v", rows)
	}

	p := startServe(t, root, "--config", cfg)
	base := "http://" + p.addr
	status := func(tok string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+"/v2/", nil)
		req.SetBasicAuth("ci-bot", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct{ Errors []struct{ Code string } }
		_ = json.NewDecoder(resp.Body).Decode(&env)
		code := ""
		if len(env.Errors) > 0 {
			code = env.Errors[0].Code
		}
		return resp.StatusCode, code
	}
	for i, tok := range tokens {
		if s, _ := status(tok); s != http.StatusOK {
			t.Fatalf("token %d before revocation: %d", i, s)
		}
	}

	if _, _, err := runBerth(t, "admin", "token", "revoke", "--config", cfg, rows[0].ID, "nosuchid"); err == nil || !strings.Contains(err.Error(), "no robot token with id nosuchid") {
		t.Fatalf("revoking an unknown id: %v", err)
	}
	for _, r := range list() {
		if r.Revoked != nil {
			t.Fatalf("a refused revoke revoked %s", r.ID)
		}
	}
	out, _, err := runBerth(t, "admin", "token", "revoke", "--config", cfg, rows[0].ID)
	if err != nil || out != "revoked "+rows[0].ID+"\n" {
		t.Fatalf("revoke: %q %v", out, err)
	}
	revoked := time.Now()
	for {
		s, code := status(tokens[0])
		if s == http.StatusUnauthorized && code == "UNAUTHORIZED" {
			break
		}
		if time.Since(revoked) > server.DefaultRevocationRefresh+5*time.Second {
			t.Fatalf("the revoked token still gets %d %s after %s", s, code, time.Since(revoked))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("serve refused the revoked token %s after the revoke (refresh every %s)", time.Since(revoked).Round(time.Millisecond), server.DefaultRevocationRefresh)
	if s, code := status(tokens[1]); s != http.StatusOK {
		t.Fatalf("the user's other token: %d %s", s, code)
	}
	for _, r := range list() {
		if (r.ID == rows[0].ID) != (r.Revoked != nil) {
			t.Fatalf("list after revoke: %+v", r)
		}
	}
	table, _, err := runBerth(t, "admin", "token", "list", "--config", cfg)
	if err != nil || !strings.HasPrefix(table, "ID") || !strings.Contains(table, rows[1].ID) || strings.Count(table, "\n") != 3 {
		t.Fatalf("table:\n%s (%v)", table, err)
	}
}
