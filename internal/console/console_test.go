package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/server/servertest"
)

// get fetches a console page with c and returns status and body.
func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func newClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestConsole runs every console test against one berth serve filled once
// by crane and regctl: the pages over plain HTTP, then in Chromium.
func TestConsole(t *testing.T) {
	host := servertest.Start(t, servertest.Options{})
	fx := fill(t, host)
	base := "http://" + host
	t.Run("http", func(t *testing.T) { testHTTP(t, base, fx) })
	t.Run("browser", func(t *testing.T) { testBrowser(t, base, fx) })
}

func testHTTP(t *testing.T, base string, fx fixture) {
	c := newClient(t)
	t.Run("repositories and search", func(t *testing.T) {
		for _, tc := range []struct {
			query     string
			want, not []string
		}{
			{"", []string{"team/multi", "team/signed", "team/many", "plain"}, nil},
			{"?q=sign", []string{"team/signed"}, []string{"team/multi", "plain"}},
			{"?q=team/&match=prefix", []string{"team/multi", "team/signed", "team/many"}, []string{`href="/r/plain"`}},
			{"?q=multi&match=prefix", nil, []string{"team/multi"}},
			{"?q=MULTI", []string{"team/multi"}, []string{"team/signed"}},
			{"?q=%25", nil, []string{"team/multi"}}, // LIKE's wildcard is matched literally
		} {
			status, body := get(t, c, base+"/"+tc.query)
			if status != 200 {
				t.Fatalf("GET /%s: %d", tc.query, status)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, `href="/r/`+w+`"`) {
					t.Errorf("GET /%s does not list %s", tc.query, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(body, `href="/r/`+strings.TrimPrefix(strings.TrimSuffix(n, `"`), `href="/r/`)+`"`) {
					t.Errorf("GET /%s lists %s", tc.query, n)
				}
			}
		}
	})
	t.Run("natural tag order", func(t *testing.T) {
		_, body := get(t, c, base+"/r/team/many")
		i9, i10 := strings.Index(body, `data-tag="v1.9"`), strings.Index(body, `data-tag="v1.10"`)
		if i9 < 0 || i10 < 0 || i9 > i10 {
			t.Fatalf("v1.9 at %d, v1.10 at %d: want v1.9 first", i9, i10)
		}
		if n := strings.Count(body, "<tr data-tag="); n != 201 {
			t.Errorf("%d tag rows, want 201", n)
		}
	})
	t.Run("signature tags become badges", func(t *testing.T) {
		_, body := get(t, c, base+"/r/team/signed")
		if strings.Contains(body, `data-tag="sha256-`) {
			t.Error("the signature tag is listed by default")
		}
		if !regexp.MustCompile(`data-tag="v1"[^<]*>\s*<td>.*badge-sig`).MatchString(body) {
			t.Error("v1 carries no sig badge")
		}
		_, all := get(t, c, base+"/r/team/signed?all=1")
		if !strings.Contains(all, `data-tag="sha256-`) {
			t.Error("?all=1 does not list the signature tag")
		}
	})
	t.Run("image page", func(t *testing.T) {
		status, body := get(t, c, base+"/r/team/multi@"+fx.multiDigest)
		if status != 200 {
			t.Fatalf("%d: %s", status, body)
		}
		for _, w := range []string{"Index", "linux/amd64", "linux/arm64/v8", "/bin/app", "serve --port=8080", "APP_MODE=test", "org.opencontainers.image.title", "1000", "crane pull --insecure --format=oci " + fx.host + "/team/multi@" + fx.multiDigest, "podman pull --tls-verify=false " + fx.host + "/team/multi@" + fx.multiDigest} {
			if !strings.Contains(body, w) {
				t.Errorf("the index page does not show %q", w)
			}
		}
		_, body = get(t, c, base+"/r/team/signed@"+fx.signedDigest)
		sigs, sboms := strings.Index(body, "<h3>Signatures</h3>"), strings.Index(body, "<h3>SBOMs</h3>")
		if sigs < 0 || sboms < 0 {
			t.Fatalf("referrer groups missing (signatures at %d, SBOMs at %d)", sigs, sboms)
		}
		if s := strings.Index(body, fx.sigReferrer); s < sigs || s > sboms {
			t.Errorf("the signature referrer %s is not under Signatures", fx.sigReferrer)
		}
		if s := strings.Index(body, fx.sbomReferrer); s < sboms {
			t.Errorf("the SBOM referrer %s is not under SBOMs", fx.sbomReferrer)
		}
		if !strings.Contains(body, "Tag history") || !strings.Contains(body, "<td>v1</td>") {
			t.Error("no tag history for v1")
		}
	})
	t.Run("status", func(t *testing.T) {
		status, body := get(t, c, base+"/status")
		if status != 200 || !strings.Contains(body, "filesystem at") || !strings.Contains(body, "read-write") {
			t.Errorf("status page: %d\n%s", status, body)
		}
	})
	t.Run("unknown repository", func(t *testing.T) {
		if status, _ := get(t, c, base+"/r/nope"); status != 404 {
			t.Errorf("GET /r/nope: %d, want 404", status)
		}
	})
	t.Run("CSRF", func(t *testing.T) {
		_, body := get(t, c, base+"/r/plain@"+fx.plainDigest+"?delete=confirm")
		m := csrfRe.FindStringSubmatch(body)
		if m == nil {
			t.Fatal("the confirmation has no CSRF token")
		}
		form := url.Values{"repo": {"plain"}, "digest": {fx.plainDigest}}
		for _, tc := range []struct {
			name string
			csrf string
			site string
		}{{"no token", "", ""}, {"wrong token", "x" + m[1], ""}, {"cross-site", m[1], "cross-site"}} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			if tc.csrf != "" {
				f.Set("csrf", tc.csrf)
			}
			req, _ := http.NewRequest(http.MethodPost, base+"/delete", strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.site != "" {
				req.Header.Set("Sec-Fetch-Site", tc.site)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: %d, want 403", tc.name, resp.StatusCode)
			}
		}
		// Still there.
		resp, err := http.Head(base + "/v2/plain/manifests/" + fx.plainDigest)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("the manifest went after refused deletes: %d", resp.StatusCode)
		}
	})
	t.Run("tag form refusals", func(t *testing.T) {
		_, body := get(t, c, base+"/r/plain@"+fx.plainDigest)
		m := csrfRe.FindStringSubmatch(body)
		if m == nil || !strings.Contains(body, `id="retag"`) {
			t.Fatal("with access control off the image page offers no retag form")
		}
		for _, tc := range []struct {
			name, repo, digest, tag string
			want                    int
		}{
			{"invalid tag", "plain", fx.plainDigest, "-v1", http.StatusBadRequest},
			{"no digest", "plain", "v1", "v2", http.StatusBadRequest},
			{"manifest of another repository", "team/signed", fx.plainDigest, "v2", http.StatusNotFound},
		} {
			resp, err := c.PostForm(base+"/tag", url.Values{"csrf": {m[1]}, "repo": {tc.repo}, "digest": {tc.digest}, "tag": {tc.tag}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
			}
		}
		if status, _ := get(t, c, base+"/v2/team/signed/manifests/v2"); status != http.StatusNotFound {
			t.Errorf("a refused tag form made team/signed:v2 (%d)", status)
		}
	})
	t.Run("API untouched", func(t *testing.T) {
		if status, _ := get(t, c, base+"/v2/"); status != 200 {
			t.Errorf("GET /v2/: %d", status)
		}
		if status, _ := get(t, c, base+"/healthz"); status != 200 {
			t.Errorf("GET /healthz: %d", status)
		}
	})
}
