package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// session is one headless Chromium tab with its network log.
type session struct {
	t    *testing.T
	ctx  context.Context
	base string
	mu   sync.Mutex
	urls []string
	// bytes transferred per document URL's load, from loadingFinished
	bytes map[string]float64
	reqs  map[network.RequestID]string
}

// newBrowser starts Debian's chromium headless (failing, never skipping,
// when it is missing) and opens a tab that logs every request it makes.
func newBrowser(t *testing.T, base string) *session {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("Chromium is required for the console's browser tests (scripts/peers.sh installs Debian's chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests may run as root, where the sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	s := &session{t: t, ctx: ctx, base: base, bytes: map[string]float64{}, reqs: map[network.RequestID]string{}}
	if err := chromedp.Listen(ctx, func(ev any) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			s.urls = append(s.urls, e.Request.URL)
			s.reqs[e.RequestID] = e.Request.URL
		case *network.EventLoadingFinished:
			s.bytes[s.reqs[e.RequestID]] += e.EncodedDataLength
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return s
}

func (s *session) do(steps ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	if err := chromedp.Do(s.ctx, steps...); err != nil {
		s.t.Fatal(err)
	}
}

// waitURL waits until the tab shows a page whose URL holds part and that
// finished loading: a form's submit navigates after the click returns,
// and until then the old page still answers every query.
func (s *session) waitURL(part string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Errors are expected while the navigation swaps documents.
		loc, err := chromedp.Run(s.ctx, chromedp.Evaluate[string](`document.readyState === "complete" ? location.href : ""`))
		if err == nil && strings.Contains(loc, part) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the tab did not reach a URL holding %q (at %q, %v)", part, loc, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func eval[T any](s *session, js string, opts ...chromedp.EvaluateOption) T {
	s.t.Helper()
	v, err := chromedp.Run(s.ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		s.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// screenshot writes the whole page as a PNG under the test's temp dir.
func (s *session) screenshot(name string) {
	s.t.Helper()
	png, err := chromedp.Run(s.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatal(err)
	}
	p := filepath.Join(s.t.TempDir(), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("screenshot of %s: %s", name, p)
}

// onlyOwnHost asserts that every request the tab made went to the server,
// on its loopback address: the console must work where the registry is the
// only host reachable.
func (s *session) onlyOwnHost() {
	s.t.Helper()
	own, _ := url.Parse(s.base)
	if ip := net.ParseIP(own.Hostname()); ip == nil || !ip.IsLoopback() {
		s.t.Fatalf("the test server is at %s, not a loopback address", own.Host)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.urls) == 0 {
		s.t.Fatal("the network log is empty: network events were not recorded")
	}
	for _, u := range s.urls {
		p, err := url.Parse(u)
		if err != nil || p.Host != own.Host || (p.Scheme != "http" && p.Scheme != "https") {
			s.t.Errorf("the page requested %s, which is not the registry %s", u, own.Host)
		}
	}
}

// accessible checks the page through the browser's accessibility tree
// (see a11yProblems) and fails the test with what it finds.
func (s *session) accessible(page string) {
	s.t.Helper()
	for _, p := range s.a11yProblems() {
		s.t.Errorf("%s: %s", page, p)
	}
}

// a11yProblems checks the page through the browser's accessibility tree:
// every control has a name, every form field's name comes from a <label>
// (for= or wrapping) or aria-labelledby — not a placeholder, title or
// aria-label alone — and a walk with the Tab key reaches every focusable
// element.
func (s *session) a11yProblems() []string {
	s.t.Helper()
	res, err := chromedp.Call(s.ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		s.t.Fatal(err)
	}
	var problems []string
	controls := 0
	for _, n := range res.Nodes {
		if n.Ignored || n.Role == nil {
			continue
		}
		var role string
		_ = json.Unmarshal(n.Role.Value, &role)
		field := false
		switch role {
		case "textbox", "searchbox", "combobox", "checkbox", "radio", "listbox":
			field = true
		case "button", "link":
		default:
			continue
		}
		controls++
		var name string
		if n.Name != nil {
			_ = json.Unmarshal(n.Name.Value, &name)
		}
		if strings.TrimSpace(name) == "" {
			problems = append(problems, fmt.Sprintf("a %s has no accessible name (node %s)", role, n.NodeID))
			continue
		}
		if field && !fromLabel(n.Name) {
			problems = append(problems, fmt.Sprintf("the %s %q is named by no <label> or aria-labelledby", role, name))
		}
	}
	if controls == 0 {
		problems = append(problems, "the accessibility tree has no controls")
	}
	// Number the focusable elements, then Tab through the page.
	total := eval[int](s, `(() => {
		const els = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])')]
			.filter(e => !e.disabled && e.getClientRects().length > 0 || e.classList.contains('skip'));
		els.forEach((e, i) => e.dataset.kbd = i);
		document.activeElement && document.activeElement.blur();
		window.scrollTo(0, 0);
		return els.length;
	})()`)
	seen := map[string]bool{}
	for i := 0; i < total+3 && len(seen) < total; i++ {
		s.do(chromedp.KeyEvent(kb.Tab))
		if k := eval[string](s, `document.activeElement && document.activeElement.dataset.kbd || ""`); k != "" {
			seen[k] = true
		}
	}
	if len(seen) != total {
		var missed []string
		for i := 0; i < total; i++ {
			if !seen[strconv.Itoa(i)] {
				missed = append(missed, eval[string](s, fmt.Sprintf(`document.querySelector('[data-kbd="%d"]').outerHTML.slice(0, 120)`, i)))
			}
		}
		problems = append(problems, fmt.Sprintf("Tab reached %d of %d controls; missed %v", len(seen), total, missed))
	}
	return problems
}

// fromLabel tells whether an accessible name was computed from a label
// element or aria-labelledby: the first source that gave a value and was
// not superseded.
func fromLabel(name *accessibility.Value) bool {
	for _, src := range name.Sources {
		if src.Value == nil || src.Superseded {
			continue
		}
		switch {
		case src.NativeSource == accessibility.ValueNativeSourceTypeLabelfor, src.NativeSource == accessibility.ValueNativeSourceTypeLabelwrapped:
			return true
		case src.Type == accessibility.ValueSourceTypeRelatedElement && src.Attribute == "aria-labelledby":
			return true
		}
		return false
	}
	return false
}

// TestAccessibilityCheck shows the accessibility check finds what it must:
// a field named only by its placeholder or aria-label, an unnamed button
// and select, and a link the Tab key skips; and passes a page without them.
func TestAccessibilityCheck(t *testing.T) {
	s := newBrowser(t, "http://127.0.0.1:1")
	page := func(body string) string {
		return "data:text/html," + url.PathEscape("<!doctype html><title>t</title>"+body)
	}
	s.do(chromedp.Navigate(page(`<label for=a>Name</label><input id=a> <label>Kind <select><option>x</option></select></label> <span id=l>Other</span><input aria-labelledby=l> <button>Go</button> <a href="#x">Link</a>`)))
	if got := s.a11yProblems(); len(got) != 0 {
		t.Errorf("a well-labelled page has problems: %v", got)
	}
	s.do(chromedp.Navigate(page(`<input placeholder="Search"> <input aria-label="Tag"> <select><option>x</option></select> <button></button> <a href="#x" tabindex="-1">Skipped</a> <a href="#y">Reached</a>`)))
	got := strings.Join(s.a11yProblems(), "\n")
	for _, want := range []string{
		`the textbox "Search" is named by no <label>`,
		`the textbox "Tag" is named by no <label>`,
		"a combobox has no accessible name",
		"a button has no accessible name",
		"Tab reached",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the check missed %q; it found:\n%s", want, got)
		}
	}
}

// allTagPages reads the tag table's rows from the page shown and every
// page after it, following each "Next page" link.
func (s *session) allTagPages() []string {
	s.t.Helper()
	var all []string
	for range 100 {
		all = append(all, eval[[]string](s, `[...document.querySelectorAll('#tags tbody tr')].map(r => r.dataset.tag)`)...)
		if eval[int](s, `document.querySelectorAll('#tags-next').length`) == 0 {
			return all
		}
		next := eval[string](s, `document.querySelector('#tags-next').href`)
		s.do(chromedp.Navigate(next), chromedp.WaitVisible(chromedp.CSS("#tags")))
	}
	s.t.Fatal("more than 100 pages of tags")
	return nil
}

func testBrowser(t *testing.T, base string, fx fixture) {
	s := newBrowser(t, base)

	t.Run("search finds a repository", func(t *testing.T) {
		s.t = t
		s.do(chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#q")))
		s.mu.Lock()
		var first float64
		for u, n := range s.bytes {
			first += n
			_ = u
		}
		s.mu.Unlock()
		if first == 0 || first > 300<<10 {
			t.Errorf("the first page transferred %.0f bytes; the target is under 300 KiB", first)
		}
		t.Logf("first page: %.1f KiB transferred", first/1024)
		s.accessible("repositories")
		s.screenshot("repositories")
		// team/signed is listed before the search too: wait for the
		// search's own page (its URL), then for the row.
		s.do(chromedp.SendKeys(chromedp.CSS("#q"), "sign"), chromedp.Click(chromedp.CSS(`form[role=search] button`)))
		s.waitURL("q=sign")
		s.do(chromedp.WaitVisible(chromedp.CSS(`a[href="/r/team/signed"]`)))
		names := eval[[]string](s, `[...document.querySelectorAll('#repos tbody a')].map(a => a.textContent)`)
		if !slices.Equal(names, []string{"team/signed"}) {
			t.Errorf("searching for sign lists %v, want [team/signed]", names)
		}
		s.do(chromedp.SetValue(chromedp.CSS("#q"), "team/"), chromedp.SetValue(chromedp.CSS("#match"), "prefix"),
			chromedp.Click(chromedp.CSS(`form[role=search] button`)),
		)
		s.waitURL("match=prefix")
		s.do(chromedp.WaitVisible(chromedp.CSS(`a[href="/r/team/many"]`)))
		names = eval[[]string](s, `[...document.querySelectorAll('#repos tbody a')].map(a => a.textContent)`)
		if !slices.Equal(names, []string{"team/many", "team/multi", "team/signed"}) {
			t.Errorf("prefix team/ lists %v", names)
		}
		s.screenshot("search")
	})

	t.Run("sorting by pushed time", func(t *testing.T) {
		s.t = t
		s.do(chromedp.Navigate(base+"/r/team/many"), chromedp.WaitVisible(chromedp.CSS("#sort-pushed")))
		s.accessible("repository, a page of 201 tags")
		s.screenshot("repository-200-tags")
		s.do(chromedp.Click(chromedp.CSS("#sort-pushed")), chromedp.WaitVisible(chromedp.CSS(`th[aria-sort] #sort-pushed`)))
		want := slices.Clone(fx.pushOrder)
		slices.Reverse(want)
		if tags := s.allTagPages(); !slices.Equal(tags, want) {
			t.Errorf("sorted by pushed (newest first) the rows are\n%v\nwant the reverse push order\n%v", tags, want)
		}
		// And back, oldest first, by the same header (on the first page).
		s.do(chromedp.Click(chromedp.CSS("#sort-pushed")), chromedp.WaitVisible(chromedp.CSS(`th[aria-sort=ascending] #sort-pushed`)))
		if tags := s.allTagPages(); !slices.Equal(tags, fx.pushOrder) {
			t.Errorf("sorted by pushed (oldest first) the rows are not in push order: %v", tags[:10])
		}
	})

	t.Run("copied pull command pulls the shown digest", func(t *testing.T) {
		s.t = t
		if _, err := chromedp.CallBrowser(s.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: "clipboard-read"}, Setting: browser.PermissionSettingGranted, Origin: base,
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.CallBrowser(s.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: "clipboard-write"}, Setting: browser.PermissionSettingGranted, Origin: base,
		}); err != nil {
			t.Fatal(err)
		}
		s.do(chromedp.Navigate(base+"/r/plain"), chromedp.WaitVisible(chromedp.CSS(`tr[data-tag="v1"] button.pull-tag`)))
		s.accessible("repository")
		s.screenshot("repository")
		shown := eval[string](s, `document.querySelector('tr[data-tag="v1"] code').title`)
		if shown != fx.plainDigest {
			t.Fatalf("the page shows digest %s for plain:v1, the registry has %s", shown, fx.plainDigest)
		}
		s.do(chromedp.SetValue(chromedp.CSS("#tool"), "crane"), chromedp.Click(chromedp.CSS(`tr[data-tag="v1"] button.pull-tag`)),
			chromedp.WaitVisible(chromedp.CSS(`tr[data-tag="v1"] button.pull-tag[data-copied]`)))
		copied := eval[string](s, `navigator.clipboard.readText()`, chromedp.EvalAwaitPromise)
		want := "crane pull --insecure --format=oci " + fx.host + "/plain:v1 plain-v1"
		if copied != want {
			t.Fatalf("the copy button copied %q, want %q", copied, want)
		}
		// Run it as a user would paste it.
		args := strings.Fields(copied)
		dir := t.TempDir()
		cmd := exec.Command(filepath.Join(filepath.Dir(mustLook(t, "crane")), args[0]), args[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", copied, err, out)
		}
		var idx struct{ Manifests []struct{ Digest string } }
		b, err := os.ReadFile(filepath.Join(dir, "plain-v1", "index.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != shown {
			t.Fatalf("crane pulled %s (%v), the page showed %s", b, err, shown)
		}
		// The digest button copies the full digest.
		s.do(chromedp.Click(chromedp.CSS(`tr[data-tag="v1"] td:nth-child(2) button.copy`)),
			chromedp.WaitVisible(chromedp.CSS(`tr[data-tag="v1"] td:nth-child(2) button.copy[data-copied]`)))
		if got := eval[string](s, `navigator.clipboard.readText()`, chromedp.EvalAwaitPromise); got != fx.plainDigest {
			t.Errorf("the digest button copied %q, want %q", got, fx.plainDigest)
		}
	})

	t.Run("image pages", func(t *testing.T) {
		s.t = t
		s.do(chromedp.Navigate(base+"/r/team/multi@"+fx.multiDigest), chromedp.WaitVisible(chromedp.CSS("#digest")))
		s.accessible("index")
		s.screenshot("index")
		s.do(chromedp.Navigate(base+"/r/team/signed@"+fx.signedDigest), chromedp.WaitVisible(chromedp.CSS("#digest")))
		groups := eval[[]string](s, `[...document.querySelectorAll('section.referrers h3')].map(h => h.textContent)`)
		if !slices.Equal(groups, []string{"Signatures", "SBOMs"}) {
			t.Errorf("referrer groups %v, want [Signatures SBOMs]", groups)
		}
		s.accessible("signed image")
		s.screenshot("signed-image")
		s.do(chromedp.Navigate(base+"/status"), chromedp.WaitVisible(chromedp.CSS("h1")))
		s.accessible("status")
		s.screenshot("status")
		s.do(chromedp.Navigate(base+"/r/nope"), chromedp.WaitVisible(chromedp.CSS("h1")))
		s.accessible("error")
	})

	t.Run("no request leaves for another host", func(t *testing.T) {
		s.t = t
		s.onlyOwnHost()
	})
}

func mustLook(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: %v", name, err)
	}
	return p
}
