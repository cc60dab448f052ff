package console_test

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/console"
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

var (
	rowRe  = regexp.MustCompile(`<tr data-tag="([^"]+)"`)
	nextRe = regexp.MustCompile(`<a href="([^"]+)" rel="next" id="tags-next">`)
)

func rowTags(body string) []string {
	var out []string
	for _, m := range rowRe.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// tagPages follows a repository's tag pages from first and returns every
// row's tag in page order, failing on a page over TagPageSize rows.
func tagPages(t *testing.T, c *http.Client, base, first string) []string {
	t.Helper()
	var all []string
	u := first
	for range 100 {
		status, body := get(t, c, base+u)
		if status != 200 {
			t.Fatalf("GET %s: %d", u, status)
		}
		rows := rowTags(body)
		if len(rows) > console.TagPageSize {
			t.Fatalf("GET %s: %d rows on one page", u, len(rows))
		}
		all = append(all, rows...)
		m := nextRe.FindStringSubmatch(body)
		if m == nil {
			return all
		}
		path, _, _ := strings.Cut(first, "?")
		u = path + html.UnescapeString(m[1])
	}
	t.Fatal("more than 100 pages of tags")
	return nil
}

// natural is the console's tag order (natural version order) for the
// tags the fixture pushes: "base", then v1.N by N.
func natural(a, b string) bool {
	if a == "base" || b == "base" {
		return a == "base"
	}
	var x, y int
	fmt.Sscanf(a, "v1.%d", &x)
	fmt.Sscanf(b, "v1.%d", &y)
	return x < y
}

// manifestBytes GETs a manifest's bytes through the API.
func manifestBytes(t *testing.T, base, repo, ref string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s@%s: %d %v", repo, ref, resp.StatusCode, err)
	}
	return b
}

// putManifest PUTs OCI manifest bytes under a tag through the API.
func putManifest(t *testing.T, base, repo, tag string, raw []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("PUT %s:%s: %d", repo, tag, resp.StatusCode)
	}
}

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
		if n := strings.Count(body, "<tr data-tag="); n != console.TagPageSize {
			t.Errorf("%d tag rows on the first page, want %d", n, console.TagPageSize)
		}
		all := tagPages(t, c, base, "/r/team/many")
		if len(all) != 201 {
			t.Fatalf("the pages hold %d tags, want 201", len(all))
		}
		for i := 1; i < len(all); i++ {
			if !natural(all[i-1], all[i]) {
				t.Fatalf("across the pages %s comes before %s", all[i-1], all[i])
			}
		}
	})
	t.Run("tag pages are keyset pages", func(t *testing.T) {
		first := pushImage(t, fx.host+"/paged:t000", "linux/amd64", 100)
		raw := manifestBytes(t, base, "paged", first)
		var names []string
		for i := range 250 {
			names = append(names, fmt.Sprintf("t%03d", i))
			if i > 0 {
				putManifest(t, base, "paged", names[i], raw)
			}
		}
		_, body := get(t, c, base+"/r/paged")
		page1 := rowTags(body)
		if !slices.Equal(page1, names[:100]) {
			t.Fatalf("page 1 is %v…, want t000…t099", page1[:3])
		}
		next := nextRe.FindStringSubmatch(body)
		if next == nil {
			t.Fatal("page 1 of 250 tags has no next page link")
		}
		// A tag that sorts first, pushed between the pages: an offset
		// would show t099 again on page 2; the keyset does not move.
		putManifest(t, base, "paged", "a000", raw)
		_, body = get(t, c, base+"/r/paged"+html.UnescapeString(next[1]))
		if got := rowTags(body); !slices.Equal(got, names[100:200]) {
			t.Fatalf("page 2 after a push is %v…, want t100…t199", got[:3])
		}
		// Rows counted in today's order: a000 is row 1 now.
		if !strings.Contains(body, "Tags (251)") || !strings.Contains(body, "102–201 shown") {
			t.Error("page 2's caption does not say which rows of how many it shows")
		}
		if got := tagPages(t, c, base, "/r/paged"); !slices.Equal(got, append([]string{"a000"}, names...)) {
			t.Errorf("all pages by name: %d tags, want a000 and t000…t249", len(got))
		}
		// By push time, newest first: the reverse of the pushes, each once.
		want := append(slices.Clone(names), "a000")
		slices.Reverse(want)
		if got := tagPages(t, c, base, "/r/paged?sort=pushed&dir=desc"); !slices.Equal(got, want) {
			t.Errorf("all pages by push time: %d tags, not the reverse push order", len(got))
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
