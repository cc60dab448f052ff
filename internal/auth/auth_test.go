package auth

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func bcryptLine(t testing.TB, user, password string) string {
	t.Helper()
	b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(b)
}

func TestParseHtpasswd(t *testing.T) {
	good := bcryptLine(t, "alice", "wonderland")
	for _, tc := range []struct {
		name    string
		file    string
		users   int
		wantErr []string
	}{
		{"bcrypt entries, comments and blanks", "# users\n\n" + good + "\r\n" + strings.Replace(bcryptLine(t, "bob", "builder"), "$2a$", "$2y$", 1) + "\n", 2, nil},
		{"sha1 entry", good + "\ncarol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", 0, []string{"users:2:", `user "carol"`, "only bcrypt", "SHA-1"}},
		{"apr1 entry", "dave:$apr1$x$y\n", 0, []string{"users:1:", "MD5 ($apr1$)", "berth admin htpasswd dave"}},
		{"plain text", "erin:secret\n", 0, []string{"users:1:", "crypt or plain text"}},
		{"no colon", "frank\n", 0, []string{"users:1: want user:bcrypt-hash"}},
		{"empty user", ":$2y$05$abc\n", 0, []string{"users:1:", "empty"}},
		{"duplicate", good + "\n" + good + "\n", 0, []string{"users:2:", "appears twice"}},
		{"malformed bcrypt", "gina:$2y$99$short\n", 0, []string{"users:1:", "malformed bcrypt"}},
		{"every bad line is reported", "x:plain\n" + good + "\ny:{SHA}abc\n", 0, []string{"users:1:", "users:3:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHtpasswd(strings.NewReader(tc.file), "users")
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if h.Len() != tc.users {
					t.Errorf("%d users, want %d", h.Len(), tc.users)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestHashPasswordRoundTrip(t *testing.T) {
	line, err := HashPassword("alice", "s3cret pass")
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHtpasswd(strings.NewReader(line), "x")
	if err != nil {
		t.Fatalf("HashPassword wrote a line ParseHtpasswd refuses: %v", err)
	}
	var c credCache
	if !h.verify(&c, "alice", "s3cret pass", time.Now()) || h.verify(&c, "alice", "wrong", time.Now()) {
		t.Error("verify disagrees with the hash")
	}
	if _, err := HashPassword("a:b", "x"); err == nil {
		t.Error("a user name with a colon was accepted")
	}
}

func newTestAuthorizer(t *testing.T, now func() time.Time) *Authorizer {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "htpasswd")
	lines := []string{}
	for _, u := range []string{"viewer", "editor", "admin", "root", "dev1", "nobody"} {
		lines = append(lines, bcryptLine(t, u, u+"-pw"))
	}
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{
		HtpasswdFile: file,
		Groups:       map[string][]string{"devs": {"dev1"}},
		Bindings: []Binding{
			{Role: RoleViewer, Namespace: "team-a", Users: []string{"viewer"}},
			{Role: RoleEditor, Namespace: "team-a", Users: []string{"editor"}},
			{Role: RoleAdmin, Namespace: "team-a/*", Users: []string{"admin"}},
			{Role: RoleAdmin, Namespace: "*", Users: []string{"root"}},
			{Role: RoleEditor, Namespace: "team-b/apps", Groups: []string{"devs"}},
			{Role: RoleViewer, Namespace: "shared", Groups: []string{AuthenticatedGroup}},
		},
		Anonymous:  &Anonymous{Role: RoleViewer, Namespaces: []string{"public"}},
		SigningKey: []byte("0123456789abcdef0123456789abcdef"),
		Now:        now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestRoleMatrix checks every role against every action on the namespaces
// around its binding.
func TestRoleMatrix(t *testing.T) {
	a := newTestAuthorizer(t, nil)
	all := []Action{Pull, Push, Delete, Catalog}
	for _, tc := range []struct {
		user  string
		repo  string
		allow []Action
	}{
		{"viewer", "team-a", []Action{Pull}},
		{"viewer", "team-a/app", []Action{Pull}},
		{"viewer", "team-a/app/web", []Action{Pull}},
		{"viewer", "team-ab/app", nil},
		{"viewer", "team-b/app", nil},
		{"editor", "team-a/app", []Action{Pull, Push}},
		{"editor", "team-b/app", nil},
		{"admin", "team-a/app", all},
		{"admin", "team-c/app", nil},
		{"root", "anything/at/all", all},
		{"dev1", "team-b/apps/api", []Action{Pull, Push}},
		{"dev1", "team-b/apps", []Action{Pull, Push}},
		{"dev1", "team-b/other", nil},
		{"nobody", "team-a/app", nil},
		{"nobody", "shared/base", []Action{Pull}},
		{"viewer", "shared/base", []Action{Pull}},
		{"", "public/busybox", []Action{Pull}},
		{"", "shared/base", nil},
		{"", "team-a/app", nil},
		{"nobody", "public/busybox", []Action{Pull}},
		{"robot-not-in-htpasswd", "shared/x", []Action{Pull}},
	} {
		id := a.Identify(tc.user)
		for _, act := range all {
			want := slices.Contains(tc.allow, act)
			if got := a.Allowed(id, tc.repo, act); got != want {
				t.Errorf("user %q %s %s: allowed=%v, want %v", tc.user, act, tc.repo, got, want)
			}
		}
	}
	for user, want := range map[string][2]bool{"root": {true, true}, "admin": {true, false}, "editor": {false, false}, "": {false, false}} {
		id := a.Identify(user)
		if a.CatalogAny(id) != want[0] || a.CatalogAll(id) != want[1] {
			t.Errorf("user %q: CatalogAny=%v CatalogAll=%v, want %v", user, a.CatalogAny(id), a.CatalogAll(id), want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := New(Config{
		SigningKey: []byte("k"),
		Bindings: []Binding{
			{Role: "registry-owner", Namespace: "a", Users: []string{"x"}},
			{Role: RoleViewer, Namespace: "", Users: []string{"x"}},
			{Role: RoleViewer, Namespace: "a", Groups: []string{"ghosts"}},
			{Role: RoleViewer, Namespace: "a"},
		},
		Anonymous: &Anonymous{Role: "root", Namespaces: []string{"a*b"}},
	})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{`roleBindings[0]: role "registry-owner"`, `roleBindings[1]: namespace ""`, `group "ghosts" is not defined`, "roleBindings[3]: names no users", `anonymous: role "root"`, `namespace "a*b"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if _, err := New(Config{}); err != ErrNoSecret {
		t.Errorf("no key: %v", err)
	}
}

func TestBasicAndCache(t *testing.T) {
	a := newTestAuthorizer(t, nil)
	id, err := a.Basic("editor", "editor-pw")
	if err != nil || id.Name != "editor" || !slices.Contains(id.Groups, AuthenticatedGroup) {
		t.Fatalf("Basic = %+v, %v", id, err)
	}
	// The second check is served from the cache: far below bcrypt's cost.
	start := time.Now()
	for range 100 {
		if _, err := a.Basic("editor", "editor-pw"); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("100 cached verifications took %s", d)
	}
	for _, c := range [][2]string{{"editor", "wrong"}, {"ghost", "editor-pw"}, {"", ""}, {"Editor", "editor-pw"}} {
		if _, err := a.Basic(c[0], c[1]); err != ErrBadCredentials {
			t.Errorf("Basic(%q, %q) = %v", c[0], c[1], err)
		}
	}
}

func TestParseScope(t *testing.T) {
	for in, want := range map[string]string{
		"repository:team-a/app:pull,push":  "repository:team-a/app:pull,push",
		"repository:localhost:5000/x:pull": "repository:localhost:5000/x:pull",
		"repository(plugin):x:pull":        "repository:x:pull",
		"registry:catalog:*":               "registry:catalog:*",
		"repository:x:pull,pull,":          "repository:x:pull",
		"repository:x:":                    "repository:x:",
	} {
		got, err := ParseScope(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseScope(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "repository", "repository:pull", ":x:pull", "repository::pull"} {
		if _, err := ParseScope(bad); err == nil {
			t.Errorf("ParseScope(%q) accepted", bad)
		}
	}
}

func scopes(t *testing.T, ss ...string) []Access {
	var out []Access
	for _, s := range ss {
		a, err := ParseScope(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func TestIssueDropsWhatRolesLack(t *testing.T) {
	a := newTestAuthorizer(t, nil)
	for _, tc := range []struct {
		user   string
		scopes []string
		want   string
	}{
		{"viewer", []string{"repository:team-a/app:pull,push"}, `[{"type":"repository","name":"team-a/app","actions":["pull"]}]`},
		{"editor", []string{"repository:team-a/app:pull,push", "repository:team-b/x:pull"}, `[{"type":"repository","name":"team-a/app","actions":["pull","push"]}]`},
		{"admin", []string{"repository:team-a/app:*", "registry:catalog:*"}, `[{"type":"repository","name":"team-a/app","actions":["pull","push","delete"]},{"type":"registry","name":"catalog","actions":["*"]}]`},
		{"editor", []string{"registry:catalog:*", "repository:team-a/app:catalog"}, `null`},
		{"", []string{"repository:public/busybox:pull,push", "repository:team-a/app:pull"}, `[{"type":"repository","name":"public/busybox","actions":["pull"]}]`},
		{"viewer", nil, `null`},
	} {
		iss, err := a.Issue(a.Identify(tc.user), scopes(t, tc.scopes...))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(iss.Access)
		if string(got) != tc.want {
			t.Errorf("user %q asking %v got %s, want %s", tc.user, tc.scopes, got, tc.want)
		}
		tok, err := a.Bearer(iss.Token)
		if err != nil {
			t.Fatalf("own token does not verify: %v", err)
		}
		if tok.Subject != tc.user {
			t.Errorf("subject %q, want %q", tok.Subject, tc.user)
		}
		claimed, _ := json.Marshal(tok.Access)
		if string(claimed) != tc.want {
			t.Errorf("claims %s, want %s", claimed, tc.want)
		}
		if iss.ExpiresIn != 300 {
			t.Errorf("expires_in %d, want 300", iss.ExpiresIn)
		}
	}
}

func TestTokenExpiryAndTampering(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := newTestAuthorizer(t, clock)
	iss, err := a.Issue(a.Identify("viewer"), scopes(t, "repository:team-a/app:pull"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Bearer(iss.Token)
	if err != nil || !tok.Allows("team-a/app", Pull) || tok.Allows("team-a/app", Push) || tok.Allows("team-a/other", Pull) {
		t.Fatalf("fresh token: %+v %v", tok, err)
	}

	t.Run("expired", func(t *testing.T) {
		now = now.Add(5*time.Minute + leeway + time.Second)
		defer func() { now = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }()
		if _, err := a.Bearer(iss.Token); err == nil {
			t.Error("an expired token verified")
		}
	})
	t.Run("tampered claims", func(t *testing.T) {
		parts := strings.Split(iss.Token, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		forged := strings.Replace(string(payload), `["pull"]`, `["pull","push"]`, 1)
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
		if _, err := a.Bearer(strings.Join(parts, ".")); err == nil {
			t.Error("a token with edited claims verified")
		}
	})
	t.Run("other key", func(t *testing.T) {
		other, err := New(Config{SigningKey: []byte("another key, another registry..."), Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Bearer(iss.Token); err == nil {
			t.Error("a token verified under another key")
		}
	})
	t.Run("alg none", func(t *testing.T) {
		parts := strings.Split(iss.Token, ".")
		parts[0] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		if _, err := a.Bearer(parts[0] + "." + parts[1] + "."); err == nil {
			t.Error("an unsigned token verified")
		}
	})
	t.Run("robot token is not an access token", func(t *testing.T) {
		robot, err := NewRobotToken(a.key, "root", time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Bearer(robot); err == nil {
			t.Error("a robot token was accepted as a bearer access token")
		}
		if _, err := a.Basic("viewer", iss.Token); err == nil {
			t.Error("an access token was accepted as a password")
		}
	})
}

func TestRobotToken(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	a := newTestAuthorizer(t, func() time.Time { return now })
	tok, err := NewRobotToken(SigningKey("0123456789abcdef0123456789abcdef", ""), "ci-bot", 720*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Basic("ci-bot", tok)
	if err != nil || id.Name != "ci-bot" {
		t.Fatalf("robot token as password: %+v %v", id, err)
	}
	if !a.Allowed(id, "shared/base", Pull) || a.Allowed(id, "team-a/app", Pull) {
		t.Error("robot identity does not get its bindings")
	}
	if _, err := a.Basic("root", tok); err == nil {
		t.Error("a robot token authenticated another user")
	}
	now = now.Add(721 * time.Hour)
	if _, err := a.Basic("ci-bot", tok); err == nil {
		t.Error("an expired robot token authenticated")
	}
	if _, err := NewRobotToken([]byte("k"), "x", 0, now); err == nil {
		t.Error("a robot token without expiry was made")
	}
	if _, err := NewRobotToken(nil, "x", time.Hour, now); err != ErrNoSecret {
		t.Errorf("no key: %v", err)
	}
}

func TestSigningKey(t *testing.T) {
	if string(SigningKey("tok", "http")) != "tok" {
		t.Error("tokenSecret does not win")
	}
	d1, d2 := SigningKey("", "http-secret"), SigningKey("", "other")
	if len(d1) != 32 || string(d1) == "http-secret" || string(d1) == string(d2) {
		t.Error("derived key is not a keyed hash of httpSecret")
	}
	if SigningKey("", "") != nil {
		t.Error("a key from nothing")
	}
}

// TestRevokedRobotToken: a revoked robot token no longer authenticates,
// nor does an access token issued for it; the same user's other robot
// token is unaffected.
func TestRevokedRobotToken(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	key := []byte("0123456789abcdef0123456789abcdef")
	revoked := &RevocationSet{}
	a, err := New(Config{
		Bindings:   []Binding{{Role: RoleViewer, Namespace: "*", Users: []string{"ci-bot"}}},
		SigningKey: key,
		Now:        func() time.Time { return now },
		Revoked:    revoked,
	})
	if err != nil {
		t.Fatal(err)
	}
	r1, err := NewRobot(key, "ci-bot", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := NewRobot(key, "ci-bot", time.Hour, now)
	if r1.ID == "" || r1.ID == r2.ID || r1.User != "ci-bot" || !r1.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("robots %+v %+v", r1, r2)
	}
	id, err := a.Basic("ci-bot", r1.Token)
	if err != nil || id.Robot != r1.ID {
		t.Fatalf("robot login: %+v %v", id, err)
	}
	iss, err := a.Issue(id, []Access{{Type: "repository", Name: "app", Actions: []string{"pull"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Bearer(iss.Token); err != nil {
		t.Fatalf("access token before revocation: %v", err)
	}
	revoked.Set([]string{r1.ID})
	if _, err := a.Basic("ci-bot", r1.Token); err != ErrBadCredentials {
		t.Errorf("revoked robot token: %v, want ErrBadCredentials", err)
	}
	if _, err := a.Bearer(iss.Token); err == nil {
		t.Error("an access token issued for a revoked robot token still verifies")
	}
	if id, err := a.Basic("ci-bot", r2.Token); err != nil || id.Name != "ci-bot" {
		t.Errorf("the user's other robot token: %+v %v", id, err)
	}
	revoked.Set(nil)
	if _, err := a.Basic("ci-bot", r1.Token); err != nil {
		t.Errorf("after the set is emptied: %v", err)
	}
	var none *RevocationSet
	if none.Revoked(r1.ID) || none.Len() != 0 {
		t.Error("a nil set revokes")
	}
}

// TestHasUser is what ends a console session whose user a reload removed.
func TestHasUser(t *testing.T) {
	a := newTestAuthorizer(t, time.Now)
	if !a.HasUser("viewer") || a.HasUser("mallory") || a.HasUser("") {
		t.Errorf("HasUser(viewer, mallory, \"\") = %v, %v, %v; want true, false, false", a.HasUser("viewer"), a.HasUser("mallory"), a.HasUser(""))
	}
	noFile, err := New(Config{SigningKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	if noFile.HasUser("viewer") {
		t.Error("an authorizer without an htpasswd file has a user")
	}
}
