package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// newAuthHandler serves with access control: viewer, editor and admin on
// team-a, root admin everywhere, anonymous pull on public.
func newAuthHandler(t *testing.T, opts Options) *Handler {
	t.Helper()
	return newAuthHandlerOn(t, newTestHandler(t).reg, opts)
}

// newAuthHandlerOn is newAuthHandler over reg.
func newAuthHandlerOn(t *testing.T, reg *registry.Registry, opts Options) *Handler {
	t.Helper()
	var lines []string
	for _, u := range []string{"viewer", "editor", "admin", "root", "nobody"} {
		b, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, u+":"+string(b))
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{
		HtpasswdFile: file,
		Bindings: []auth.Binding{
			{Role: auth.RoleViewer, Namespace: "team-a", Users: []string{"viewer"}},
			{Role: auth.RoleEditor, Namespace: "team-a", Users: []string{"editor"}},
			{Role: auth.RoleAdmin, Namespace: "team-a", Users: []string{"admin"}},
			{Role: auth.RoleAdmin, Namespace: "*", Users: []string{"root"}},
		},
		Anonymous:  &auth.Anonymous{Role: auth.RoleViewer, Namespaces: []string{"public"}},
		SigningKey: []byte(testSecret),
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.Auth = a
	return NewHandler(reg, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
}

// cred is how a test request authenticates: nothing, Basic, or Bearer.
type cred struct{ user, bearer string }

func (c cred) set(r *http.Request) {
	switch {
	case c.bearer != "":
		r.Header.Set("Authorization", "Bearer "+c.bearer)
	case c.user != "":
		r.SetBasicAuth(c.user, c.user+"-pw")
	}
}

func do(h http.Handler, c cred, method, target, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	c.set(r)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func errCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var env struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &env)
	if len(env.Errors) == 0 {
		return ""
	}
	return env.Errors[0].Code
}

// getToken asks the token endpoint for scopes as c and returns the token.
func getToken(t *testing.T, h http.Handler, c cred, scopes ...string) (string, []auth.Access) {
	t.Helper()
	q := "service=berth"
	for _, s := range scopes {
		q += "&scope=" + s
	}
	rec := do(h, c, http.MethodGet, TokenPath+"?"+q, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("token for %q %v: %d %s", c.user, scopes, rec.Code, rec.Body)
	}
	var resp struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Token == "" || resp.Token != resp.AccessToken || resp.ExpiresIn != 300 || resp.IssuedAt == "" {
		t.Fatalf("token response %s", rec.Body)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(resp.Token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Access []auth.Access `json:"access"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return resp.Token, claims.Access
}

func TestAuthChallenge(t *testing.T) {
	h := newAuthHandler(t, Options{})
	for _, tc := range []struct {
		method, path, scope string
	}{
		{http.MethodGet, "/v2/", ""},
		{http.MethodGet, "/v2/team-a/app/manifests/v1", `,scope="repository:team-a/app:pull"`},
		{http.MethodHead, "/v2/team-a/app/blobs/sha256:" + strings.Repeat("a", 64), `,scope="repository:team-a/app:pull"`},
		{http.MethodPost, "/v2/team-a/app/blobs/uploads/", `,scope="repository:team-a/app:pull,push"`},
		{http.MethodPut, "/v2/team-a/app/manifests/v1", `,scope="repository:team-a/app:pull,push"`},
		{http.MethodDelete, "/v2/team-a/app/manifests/v1", `,scope="repository:team-a/app:delete"`},
		{http.MethodGet, "/v2/_catalog", `,scope="registry:catalog:*"`},
		{http.MethodPost, "/v2/public/x/blobs/uploads/", `,scope="repository:public/x:pull,push"`},
	} {
		rec := do(h, cred{}, tc.method, tc.path, "")
		want := `Bearer realm="http://example.com/v2/token",service="berth"` + tc.scope
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != want {
			t.Errorf("%s %s: %d %q, want 401 %q", tc.method, tc.path, rec.Code, rec.Header().Get("WWW-Authenticate"), want)
		}
		if tc.method != http.MethodHead && errCode(t, rec) != "UNAUTHORIZED" {
			t.Errorf("%s %s: body %s", tc.method, tc.path, rec.Body)
		}
	}

	t.Run("bad credentials", func(t *testing.T) {
		for _, hdr := range []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("editor:wrong")), "Bearer not.a.token", "Digest x", "Basic !!"} {
			r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
			r.Header.Set("Authorization", hdr)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != http.StatusUnauthorized || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer realm=") {
				t.Errorf("%q: %d %q", hdr, rec.Code, rec.Header().Get("WWW-Authenticate"))
			}
		}
	})
	t.Run("realm follows scheme and override", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "https://reg.example:8443/v2/", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="https://reg.example:8443/v2/token"`) {
			t.Errorf("TLS realm: %q", got)
		}
		r = httptest.NewRequest(http.MethodGet, "/v2/", nil)
		r.Header.Set("X-Forwarded-Proto", "https")
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="https://example.com/v2/token"`) {
			t.Errorf("proxied realm: %q", got)
		}
		ho := newAuthHandler(t, Options{AuthRealm: "https://auth.example/token"})
		if got := do(ho, cred{}, http.MethodGet, "/v2/", "").Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="https://auth.example/token"`) {
			t.Errorf("configured realm: %q", got)
		}
	})
	t.Run("credentials open the base endpoint", func(t *testing.T) {
		tok, _ := getToken(t, h, cred{})
		for _, c := range []cred{{user: "nobody"}, {bearer: tok}} {
			if rec := do(h, c, http.MethodGet, "/v2/", ""); rec.Code != http.StatusOK {
				t.Errorf("%+v: %d %s", c, rec.Code, rec.Body)
			}
		}
	})
	t.Run("health stays open, metrics need an admin of every namespace", func(t *testing.T) {
		hm := newAuthHandler(t, Options{Metrics: prometheus.NewRegistry()})
		if rec := do(hm, cred{}, http.MethodGet, "/healthz", ""); rec.Code != http.StatusOK {
			t.Errorf("/healthz: %d", rec.Code)
		}
		for _, tc := range []struct {
			c    cred
			want int
		}{{cred{}, 401}, {cred{user: "admin"}, 401}, {cred{user: "viewer"}, 401}, {cred{user: "root"}, 200}} {
			if rec := do(hm, tc.c, http.MethodGet, MetricsPath, ""); rec.Code != tc.want {
				t.Errorf("metrics as %+v: %d, want %d", tc.c, rec.Code, tc.want)
			}
		}
		open := newAuthHandler(t, Options{Metrics: prometheus.NewRegistry(), MetricsOpen: true})
		if rec := do(open, cred{}, http.MethodGet, MetricsPath, ""); rec.Code != http.StatusOK {
			t.Errorf("metrics.open: %d", rec.Code)
		}
	})
	t.Run("metrics secret", func(t *testing.T) {
		for _, h := range []*Handler{
			newTestHandlerWith(t, Options{Metrics: prometheus.NewRegistry(), MetricsSecret: "scrape-me"}),
			newAuthHandler(t, Options{Metrics: prometheus.NewRegistry(), MetricsSecret: "scrape-me"}),
		} {
			for _, tc := range []struct {
				name string
				set  func(r *http.Request)
				want int
			}{
				{"none", func(*http.Request) {}, 401},
				{"basic, any user", func(r *http.Request) { r.SetBasicAuth("prometheus", "scrape-me") }, 200},
				{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer scrape-me") }, 200},
				{"wrong", func(r *http.Request) { r.SetBasicAuth("prometheus", "scrape-you") }, 401},
			} {
				r := httptest.NewRequest(http.MethodGet, MetricsPath, nil)
				tc.set(r)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != tc.want {
					t.Errorf("%s (auth %v): %d, want %d", tc.name, h.authz() != nil, rec.Code, tc.want)
				}
				if rec.Code == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic") {
					t.Errorf("%s: no Basic challenge", tc.name)
				}
				if rec.Code == 200 && !strings.Contains(rec.Body.String(), "imageregistry_build_info") {
					t.Errorf("%s: not the metrics", tc.name)
				}
			}
		}
	})
	t.Run("off by default", func(t *testing.T) {
		rec := do(newTestHandler(t), cred{}, http.MethodGet, "/v2/", "")
		if rec.Code != http.StatusOK || rec.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("no auth: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
		if rec := do(newTestHandler(t), cred{}, http.MethodGet, TokenPath, ""); rec.Code != http.StatusNotFound {
			t.Errorf("token endpoint without auth: %d", rec.Code)
		}
	})
}

func TestTokenEndpoint(t *testing.T) {
	h := newAuthHandler(t, Options{})
	for _, tc := range []struct {
		c      cred
		scopes []string
		want   string
	}{
		{cred{user: "viewer"}, []string{"repository:team-a/app:pull,push"}, `[{"type":"repository","name":"team-a/app","actions":["pull"]}]`},
		{cred{user: "editor"}, []string{"repository:team-a/app:pull,push"}, `[{"type":"repository","name":"team-a/app","actions":["pull","push"]}]`},
		{cred{user: "editor"}, []string{"repository:team-a/app:pull,push", "repository:team-b/app:pull"}, `[{"type":"repository","name":"team-a/app","actions":["pull","push"]}]`},
		{cred{user: "editor"}, []string{"repository:team-a/app:pull%20registry:catalog:*"}, `[{"type":"repository","name":"team-a/app","actions":["pull"]}]`},
		{cred{user: "admin"}, []string{"repository:team-a/app:delete", "registry:catalog:*"}, `[{"type":"repository","name":"team-a/app","actions":["delete"]},{"type":"registry","name":"catalog","actions":["*"]}]`},
		{cred{}, []string{"repository:public/x:pull,push", "repository:team-a/app:pull"}, `[{"type":"repository","name":"public/x","actions":["pull"]}]`},
		{cred{user: "nobody"}, nil, `null`},
	} {
		_, access := getToken(t, h, tc.c, tc.scopes...)
		if got, _ := json.Marshal(access); string(got) != tc.want {
			t.Errorf("%q asking %v: %s, want %s", tc.c.user, tc.scopes, got, tc.want)
		}
	}

	for name, tc := range map[string]struct {
		req    func() *http.Request
		status int
	}{
		"wrong password": {func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, TokenPath+"?service=berth", nil)
			r.SetBasicAuth("editor", "nope")
			return r
		}, http.StatusUnauthorized},
		"unknown service": {func() *http.Request {
			return httptest.NewRequest(http.MethodGet, TokenPath+"?service=other", nil)
		}, http.StatusBadRequest},
		"malformed scope": {func() *http.Request {
			return httptest.NewRequest(http.MethodGet, TokenPath+"?scope=pull", nil)
		}, http.StatusBadRequest},
		"oauth2 password grant": {func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader("grant_type=password&username=editor&password=editor-pw&service=berth&scope=repository:team-a/app:push"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, http.StatusOK},
		"oauth2 refresh grant": {func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader("grant_type=refresh_token&refresh_token=x"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, http.StatusBadRequest},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, tc.req())
		if rec.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", name, rec.Code, rec.Body, tc.status)
		}
	}
}

// pushImage pushes a one-blob image as root and returns the blob digest.
func pushImage(t *testing.T, h http.Handler, repo, tag string) digest.Digest {
	t.Helper()
	root := cred{user: "root"}
	config := `{"repo":"` + repo + `"}`
	d := digest.FromString(config)
	if rec := do(h, root, http.MethodPost, fmt.Sprintf("/v2/%s/blobs/uploads/?digest=%s", repo, d), config); rec.Code != http.StatusCreated {
		t.Fatalf("blob push to %s: %d %s", repo, rec.Code, rec.Body)
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, d, len(config))
	r := httptest.NewRequest(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, strings.NewReader(m))
	r.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	root.set(r)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusCreated {
		t.Fatalf("manifest push to %s: %d %s", repo, rec.Code, rec.Body)
	}
	return d
}

// TestAuthActionsPerRole runs each action as each role, with Basic
// credentials and with a token from the token endpoint: allowed requests
// reach the registry, anonymous ones are challenged (401), authenticated
// ones whose role lacks the action are DENIED (403).
func TestAuthActionsPerRole(t *testing.T) {
	h := newAuthHandler(t, Options{})
	pushImage(t, h, "team-a/app", "v1")
	pushImage(t, h, "public/base", "v1")
	const allow, unauth, deny = 0, http.StatusUnauthorized, http.StatusForbidden
	type req struct{ method, path string }
	pull := req{http.MethodGet, "/v2/team-a/app/manifests/v1"}
	push := req{http.MethodPost, "/v2/team-a/app/blobs/uploads/"}
	del := req{http.MethodDelete, "/v2/team-a/app/manifests/sha256:" + strings.Repeat("0", 64)}
	tags := req{http.MethodGet, "/v2/team-a/app/tags/list"}
	publicPull := req{http.MethodGet, "/v2/public/base/manifests/v1"}
	publicPush := req{http.MethodPost, "/v2/public/base/blobs/uploads/"}
	scopes := []string{"repository:team-a/app:pull,push,delete", "repository:public/base:pull,push"}
	for _, tc := range []struct {
		user string
		want map[req]int
	}{
		{"", map[req]int{pull: unauth, push: unauth, del: unauth, tags: unauth, publicPull: allow, publicPush: unauth}},
		{"nobody", map[req]int{pull: deny, push: deny, del: deny, tags: deny, publicPull: allow, publicPush: deny}},
		{"viewer", map[req]int{pull: allow, push: deny, del: deny, tags: allow, publicPull: allow}},
		{"editor", map[req]int{pull: allow, push: allow, del: deny, tags: allow}},
		{"admin", map[req]int{pull: allow, push: allow, del: allow, tags: allow, publicPush: deny}},
		{"root", map[req]int{pull: allow, push: allow, del: allow, publicPull: allow, publicPush: allow}},
	} {
		for _, mode := range []string{"basic", "bearer"} {
			c := cred{user: tc.user}
			if mode == "bearer" {
				if tc.user == "" {
					continue // anonymous + bearer: see below
				}
				c.bearer, _ = getToken(t, h, c, scopes...)
			}
			for rq, want := range tc.want {
				rec := do(h, c, rq.method, rq.path, "")
				got := rec.Code
				if got != unauth && got != deny {
					got = allow
				}
				if got != want {
					t.Errorf("%s as %q (%s): %d %s, want %d", rq.method, rq.path, tc.user+"/"+mode, rec.Code, rec.Body, want)
				}
				if want == deny && errCode(t, rec) != "DENIED" {
					t.Errorf("%s %s as %q: body %s, want DENIED", rq.method, rq.path, tc.user, rec.Body)
				}
			}
		}
	}

	t.Run("anonymous token", func(t *testing.T) {
		tok, _ := getToken(t, h, cred{}, "repository:public/base:pull")
		if rec := do(h, cred{bearer: tok}, http.MethodGet, publicPull.path, ""); rec.Code != http.StatusOK {
			t.Errorf("public pull with anonymous token: %d", rec.Code)
		}
		if rec := do(h, cred{bearer: tok}, http.MethodGet, pull.path, ""); rec.Code != http.StatusUnauthorized {
			t.Errorf("private pull with anonymous token: %d, want 401 so the client logs in", rec.Code)
		}
	})
	t.Run("token without the scope the role allows asks for a new one", func(t *testing.T) {
		tok, _ := getToken(t, h, cred{user: "editor"}, "repository:team-a/app:pull")
		rec := do(h, cred{bearer: tok}, push.method, push.path, "")
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `scope="repository:team-a/app:pull,push",error="insufficient_scope"`) {
			t.Errorf("editor with a pull token pushing: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
		tok, _ = getToken(t, h, cred{user: "editor"}, "repository:team-a/other:pull,push")
		if rec := do(h, cred{bearer: tok}, pull.method, pull.path, ""); rec.Code != http.StatusUnauthorized {
			t.Errorf("token for another repository: %d", rec.Code)
		}
	})
	t.Run("mount needs pull on the source", func(t *testing.T) {
		d := pushImage(t, h, "public/secret-free", "v1")
		secret := pushImage(t, h, "team-b/secret", "v1")
		// editor may push to team-a and pull public: the mount works.
		rec := do(h, cred{user: "editor"}, http.MethodPost, "/v2/team-a/app/blobs/uploads/?mount="+d.String()+"&from=public/secret-free", "")
		if rec.Code != http.StatusAccepted && rec.Code != http.StatusCreated {
			t.Fatalf("mount from public: %d %s", rec.Code, rec.Body)
		}
		// From team-b, which editor may not pull, it becomes an upload.
		rec = do(h, cred{user: "editor"}, http.MethodPost, "/v2/team-a/app/blobs/uploads/?mount="+secret.String()+"&from=team-b/secret", "")
		if rec.Code != http.StatusAccepted {
			t.Fatalf("mount from a repository the editor may not pull: %d %s (want 202, an upload session)", rec.Code, rec.Body)
		}
		if rec := do(h, cred{user: "editor"}, http.MethodHead, "/v2/team-a/app/blobs/"+secret.String(), ""); rec.Code != http.StatusNotFound {
			t.Errorf("the refused mount linked the blob anyway: HEAD %d", rec.Code)
		}
	})
}

func TestAuthCatalog(t *testing.T) {
	h := newAuthHandler(t, Options{})
	for _, r := range []string{"team-a/one", "team-a/two", "team-a/three", "team-b/x", "public/base"} {
		pushImage(t, h, r, "v1")
	}
	list := func(c cred, query string) (int, []string, string) {
		rec := do(h, c, http.MethodGet, "/v2/_catalog"+query, "")
		var body struct{ Repositories []string }
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body.Repositories, rec.Header().Get("Link")
	}
	if code, repos, _ := list(cred{user: "root"}, ""); code != 200 || len(repos) != 5 {
		t.Errorf("root: %d %v", code, repos)
	}
	if code, repos, _ := list(cred{user: "admin"}, ""); code != 200 || strings.Join(repos, " ") != "team-a/one team-a/three team-a/two" {
		t.Errorf("team-a admin: %d %v", code, repos)
	}
	code, repos, link := list(cred{user: "admin"}, "?n=2")
	if code != 200 || strings.Join(repos, " ") != "team-a/one team-a/three" || !strings.Contains(link, "last=team-a%2Fthree") {
		t.Errorf("team-a admin, page 1: %d %v %q", code, repos, link)
	}
	code, repos, link = list(cred{user: "admin"}, "?n=2&last=team-a/three")
	if code != 200 || strings.Join(repos, " ") != "team-a/two" || link != "" {
		t.Errorf("team-a admin, page 2: %d %v %q", code, repos, link)
	}
	tok, _ := getToken(t, h, cred{user: "admin"}, "registry:catalog:*")
	if code, repos, _ := list(cred{bearer: tok}, ""); code != 200 || len(repos) != 3 {
		t.Errorf("team-a admin with a token: %d %v", code, repos)
	}
	for _, c := range []struct {
		cred cred
		want int
	}{{cred{user: "editor"}, 403}, {cred{user: "viewer"}, 403}, {cred{}, 401}} {
		if code, _, _ := list(c.cred, ""); code != c.want {
			t.Errorf("%q: %d, want %d", c.cred.user, code, c.want)
		}
	}
}
