package console_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/chromedp/chromedp"
)

const tokenSecret = "console-test-token-secret"

// authServer starts berth serve with access control: viewer may pull
// everything, admin may do everything, anonymous may pull public/. Admin
// fills it with crane.
func authServer(t *testing.T) (base string, digests map[string]string) {
	t.Helper()
	dir := t.TempDir()
	var lines []string
	for _, u := range []string{"viewer", "editor", "admin"} {
		l, err := auth.HashPassword(u, u+"-password")
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host := servertest.Start(t, servertest.Options{Auth: &config.Auth{
		Htpasswd:    htpasswd,
		TokenSecret: tokenSecret,
		RoleBindings: []config.RoleBinding{
			{Role: "registry-viewer", Namespace: "*", Users: []string{"viewer"}},
			{Role: "registry-editor", Namespace: "*", Users: []string{"editor"}},
			{Role: "registry-admin", Namespace: "*", Users: []string{"admin"}},
		},
		Anonymous: &config.AnonymousAccess{Role: "registry-viewer", Namespaces: []string{"public"}},
	}})
	cfgDir := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("admin:admin-password"))}}})
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_CONFIG=" + cfgDir}
	digests = map[string]string{}
	for _, ref := range []string{"public/app:v1", "private/app:v1", "private/gone:v1"} {
		runEnv(t, env, "crane", "append", "--oci-empty-base", "-f", layer(t, "f", []byte(ref)), "-t", host+"/"+ref)
		digests[ref] = runEnv(t, env, "crane", "digest", host+"/"+ref)
	}
	// private/moved:v1 moves once: its first revision stays, untagged.
	for i, key := range []string{"private/moved:v1@first", "private/moved:v1"} {
		runEnv(t, env, "crane", "append", "--oci-empty-base", "-f", layer(t, "f", []byte(fmt.Sprint("moved revision ", i))), "-t", host+"/private/moved:v1")
		digests[key] = runEnv(t, env, "crane", "digest", host+"/private/moved:v1")
	}
	return "http://" + host, digests
}

func TestConsoleAuth(t *testing.T) {
	base, digests := authServer(t)
	c := newClient(t)

	t.Run("anonymous sees what the anonymous role pulls", func(t *testing.T) {
		_, body := get(t, c, base+"/")
		if !strings.Contains(body, `href="/r/public/app"`) || strings.Contains(body, "private/") {
			t.Errorf("anonymous list:\n%s", body)
		}
		for _, p := range []string{"/r/private/app", "/r/private/app@" + digests["private/app:v1"]} {
			if status, body := get(t, c, base+p); status != 404 || strings.Contains(body, digests["private/app:v1"]) {
				t.Errorf("anonymous GET %s: %d, want 404 saying nothing of it", p, status)
			}
		}
	})

	login := func(t *testing.T, c *http.Client, user, pass string) *http.Response {
		t.Helper()
		_, body := get(t, c, base+"/login")
		m := csrfRe.FindStringSubmatch(body)
		if m == nil {
			t.Fatal("the login form has no CSRF token")
		}
		resp, err := c.PostForm(base+"/login", url.Values{"csrf": {m[1]}, "username": {user}, "password": {pass}, "next": {"/"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	t.Run("login", func(t *testing.T) {
		c := newClient(t)
		if resp := login(t, c, "viewer", "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a wrong password: %d, want 401", resp.StatusCode)
		}
		resp := login(t, c, "viewer", "viewer-password")
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		var ck *http.Cookie
		for _, k := range resp.Cookies() {
			if k.Name == "berth_session" {
				ck = k
			}
		}
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Expires.Before(time.Now().Add(time.Hour)) {
			t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP, expiring in hours", ck)
		}
		if _, body := get(t, c, base+"/"); !strings.Contains(body, `href="/r/private/app"`) || !strings.Contains(body, "Signed in as") {
			t.Error("a signed-in viewer does not see private/app")
		}
		// A tampered cookie is an anonymous visitor.
		u, _ := url.Parse(base)
		c.Jar.SetCookies(u, []*http.Cookie{{Name: "berth_session", Value: strings.Replace(ck.Value, ".", "x.", 1)}})
		if _, body := get(t, c, base+"/"); strings.Contains(body, "private/") {
			t.Error("a tampered session cookie still signs in")
		}
	})

	t.Run("robot token", func(t *testing.T) {
		c := newClient(t)
		tok, err := auth.NewRobotToken(auth.SigningKey(tokenSecret, ""), "viewer", time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if resp := login(t, c, "viewer", tok); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("robot token login: %d", resp.StatusCode)
		}
		if _, body := get(t, c, base+"/"); !strings.Contains(body, `href="/r/private/app"`) {
			t.Error("a robot-token session does not see private/app")
		}
	})

	t.Run("browser: viewer refused, admin deletes", func(t *testing.T) {
		s := newBrowser(t, base)
		gone := digests["private/gone:v1"]
		signIn := func(user string) {
			s.do(chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS("#username")),
				chromedp.SendKeys(chromedp.CSS("#username"), user), chromedp.SendKeys(chromedp.CSS("#password"), user+"-password"),
				chromedp.Submit(chromedp.CSS("#password")), chromedp.WaitVisible(chromedp.CSS(".who")))
		}
		s.do(chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS("#username")))
		s.accessible("login")
		s.screenshot("login")
		signIn("viewer")
		s.do(chromedp.Navigate(base+"/r/private/gone@"+gone), chromedp.WaitVisible(chromedp.CSS("#digest")))
		if n := eval[int](s, `document.querySelectorAll('#delete, #confirm-delete').length`); n != 0 {
			t.Error("a viewer is offered a delete")
		}
		// Forcing it: the viewer's own session and CSRF token, POSTed by the page.
		status := eval[string](s, `(async () => {
			const csrf = document.querySelector('input[name=csrf]').value;
			const r = await fetch('/delete', {method: 'POST', body: new URLSearchParams({csrf, repo: 'private/gone', digest: '`+gone+`'})});
			return r.status + " " + ((await r.text()).match(/refused the delete: (\w+)/) || [])[1];
		})()`, chromedp.EvalAwaitPromise)
		if status != "403 DENIED" {
			t.Errorf("a viewer's delete: %q, want 403 with the API's DENIED", status)
		}
		if code := apiManifest(t, base, "private/gone", gone); code != "" {
			t.Fatalf("after the viewer's refused delete the API answers %s", code)
		}
		s.screenshot("viewer-image")

		s.do(chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), chromedp.WaitVisible(chromedp.CSS(`a[href="/login"]`)))
		signIn("admin")
		s.do(chromedp.Navigate(base+"/r/private/gone@"+gone), chromedp.WaitVisible(chromedp.CSS("#delete")),
			chromedp.Click(chromedp.CSS("#delete")), chromedp.WaitVisible(chromedp.CSS("#confirm-delete")))
		confirm := eval[string](s, `document.querySelector('form.confirm').innerText`)
		if !strings.Contains(confirm, "private/gone@"+gone) || !strings.Contains(confirm, "v1") {
			t.Errorf("the confirmation does not name what goes:\n%s", confirm)
		}
		s.accessible("delete confirmation")
		s.screenshot("confirm-delete")
		s.do(chromedp.Click(chromedp.CSS("#confirm-delete")), chromedp.WaitVisible(chromedp.CSS(".notice")))
		if loc := eval[string](s, `location.pathname`); loc != "/r/private/gone" {
			t.Errorf("after the delete the browser is at %s", loc)
		}
		if code := apiManifest(t, base, "private/gone", gone); code != "404 MANIFEST_UNKNOWN" {
			t.Errorf("after the admin's delete the API answers %q, want 404 MANIFEST_UNKNOWN", code)
		}
		if code := apiManifest(t, base, "private/app", digests["private/app:v1"]); code != "" {
			t.Errorf("another repository's manifest went too: %s", code)
		}
		s.onlyOwnHost()
	})

	t.Run("browser: editor restores and retags, viewer refused", func(t *testing.T) {
		s := newBrowser(t, base)
		first, second := digests["private/moved:v1@first"], digests["private/moved:v1"]
		if first == second {
			t.Fatal("the two revisions of private/moved:v1 have one digest")
		}
		page := base + "/r/private/moved@" + first
		signIn := func(user string) {
			s.do(chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS("#username")),
				chromedp.SendKeys(chromedp.CSS("#username"), user), chromedp.SendKeys(chromedp.CSS("#password"), user+"-password"),
				chromedp.Submit(chromedp.CSS("#password")), chromedp.WaitVisible(chromedp.CSS(".who")))
		}
		signIn("viewer")
		s.do(chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#history")))
		if n := eval[int](s, `document.querySelectorAll('form.restore, #retag').length`); n != 0 {
			t.Errorf("a viewer is offered %d restore or retag controls", n)
		}
		// Forcing it with the viewer's own session and CSRF token.
		for _, tag := range []string{"v1", "stolen"} {
			status := eval[string](s, `(async () => {
				const csrf = document.querySelector('input[name=csrf]').value;
				const r = await fetch('/tag', {method: 'POST', body: new URLSearchParams({csrf, repo: 'private/moved', digest: '`+first+`', tag: '`+tag+`'})});
				return r.status + " " + ((await r.text()).match(/refused the tag: (\w+)/) || [])[1];
			})()`, chromedp.EvalAwaitPromise)
			if status != "403 DENIED" {
				t.Errorf("a viewer's tag %s: %q, want 403 with the API's DENIED", tag, status)
			}
		}
		if got := apiTag(t, base, "private/moved", "v1"); got != second {
			t.Fatalf("after the viewer's refused restore v1 is %s, want %s", got, second)
		}
		if code := apiManifest(t, base, "private/moved", "stolen"); code != "404 MANIFEST_UNKNOWN" {
			t.Errorf("after the viewer's refused retag the API answers %q for stolen", code)
		}

		s.do(chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), chromedp.WaitVisible(chromedp.CSS(`a[href="/login"]`)))
		signIn("editor")
		s.do(chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#history")))
		restores := eval[[]string](s, `[...document.querySelectorAll('form.restore')].map(f => f.tag.value + "@" + f.digest.value)`)
		if len(restores) != 1 || restores[0] != "v1@"+first {
			t.Fatalf("the editor is offered restores %v, want [v1@%s]", restores, first)
		}
		if n := eval[int](s, `document.querySelectorAll('#delete').length`); n != 0 {
			t.Error("an editor is offered a delete")
		}
		s.accessible("image, editor")
		s.screenshot("image-editor")
		s.do(chromedp.Click(chromedp.CSS("form.restore button")), chromedp.WaitVisible(chromedp.CSS(`.notice[data-tagged="v1"]`)))
		if got := eval[string](s, `document.querySelector('.notice').textContent`); got != "Tag v1 now points here." {
			t.Errorf("after the restore the page says %q", got)
		}
		if got := apiTag(t, base, "private/moved", "v1"); got != first {
			t.Errorf("after the restore the API answers v1 = %s, want the older %s", got, first)
		}
		// Restored, v1 is this revision again: what is offered now is the
		// way back to the newer one.
		restores = eval[[]string](s, `[...document.querySelectorAll('form.restore')].map(f => f.tag.value + "@" + f.digest.value)`)
		if len(restores) != 1 || restores[0] != "v1@"+second {
			t.Errorf("after the restore the editor is offered %v, want [v1@%s]", restores, second)
		}
		s.do(chromedp.SendKeys(chromedp.CSS("#retag"), "stable"), chromedp.Click(chromedp.CSS("#retag-submit")),
			chromedp.WaitVisible(chromedp.CSS(`.notice[data-tagged="stable"]`)))
		if got := apiTag(t, base, "private/moved", "stable"); got != first {
			t.Errorf("after tagging it stable the API answers stable = %s, want %s", got, first)
		}
		// The newer revision's page offers v1 back to it, and nothing to
		// the revision v1 is at now.
		s.do(chromedp.Navigate(base+"/r/private/moved@"+second), chromedp.WaitVisible(chromedp.CSS("#history")))
		restores = eval[[]string](s, `[...document.querySelectorAll('form.restore')].map(f => f.tag.value + "@" + f.digest.value)`)
		if len(restores) != 1 || restores[0] != "v1@"+second {
			t.Errorf("the newer revision's page offers %v, want [v1@%s]", restores, second)
		}
		s.screenshot("image-restored")
		s.onlyOwnHost()
	})
}

// apiTag resolves a tag as admin through the API and returns the digest it
// answers.
func apiTag(t *testing.T, base, repo, tag string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v2/"+repo+"/manifests/"+tag, nil)
	req.SetBasicAuth("admin", "admin-password")
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s:%s through the API: %d", repo, tag, resp.StatusCode)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// apiManifest GETs a manifest as admin through the API: "" when it is
// there, else the status and the first OCI error code.
func apiManifest(t *testing.T, base, repo, d string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v2/"+repo+"/manifests/"+d, nil)
	req.SetBasicAuth("admin", "admin-password")
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 {
		return ""
	}
	var env struct{ Errors []struct{ Code string } }
	_ = json.NewDecoder(resp.Body).Decode(&env)
	code := ""
	if len(env.Errors) > 0 {
		code = env.Errors[0].Code
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, code)
}
