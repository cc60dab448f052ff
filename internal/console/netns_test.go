package console_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/chromedp/chromedp"
)

// netnsEnv marks the run of TestConsoleLoopbackOnly inside its network
// namespace.
const netnsEnv = "BERTH_CONSOLE_TEST_NETNS"

// TestConsoleLoopbackOnly proves the console works where the only network
// is loopback, as in an air-gapped cluster: the test binary runs itself
// again in a fresh network namespace (unshare --net, loopback brought up,
// no other interface and no route), where berth serve, crane and Chromium
// all run; the pages render, and Chromium's network log shows no request
// for any host but the server's loopback address. A namespace needs root
// (CAP_SYS_ADMIN); elsewhere the test says so and skips, and the network
// log assertion of the other browser tests still holds.
func TestConsoleLoopbackOnly(t *testing.T) {
	if os.Getenv(netnsEnv) == "" {
		if os.Geteuid() != 0 {
			t.Skip("a fresh network namespace needs root; the other browser tests still assert the network log")
		}
		unshare, ip := mustLook(t, "unshare"), mustLook(t, "ip")
		if out, err := exec.Command(unshare, "--net", "true").CombinedOutput(); err != nil {
			t.Skipf("unshare --net is refused here (%v: %s); the other browser tests still assert the network log", err, out)
		}
		cmd := exec.Command(unshare, "--net", "sh", "-c", `"$0" link set lo up && exec "$@"`, ip,
			os.Args[0], "-test.run=^TestConsoleLoopbackOnly$", "-test.v", "-test.count=1", "-test.timeout=4m")
		cmd.Env = append(os.Environ(), netnsEnv+"=1")
		out, err := cmd.CombinedOutput()
		t.Logf("inside the namespace:\n%s", out)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestConsoleLoopbackOnly") {
			t.Fatalf("the run inside a loopback-only network namespace failed: %v", err)
		}
		return
	}

	// Inside: first, that this is the namespace it should be.
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	if !slices.Equal(names, []string{"lo"}) {
		t.Fatalf("the namespace has interfaces %v, want only lo", names)
	}
	if routes := routesOf(t, "/proc/net/route", 0, 1); len(routes) != 0 {
		t.Fatalf("the namespace has IPv4 routes %v, want none (loopback is routed by the local table)", routes)
	}
	if routes := routesOf(t, "/proc/net/ipv6_route", 9, 0); slices.ContainsFunc(routes, func(dev string) bool { return dev != "lo" }) {
		t.Fatalf("the namespace has IPv6 routes through %v, want lo only", routes)
	}
	if c, err := net.DialTimeout("tcp", "192.0.2.1:80", 2*time.Second); err == nil {
		c.Close()
		t.Fatal("a connection to 192.0.2.1 (TEST-NET-1) succeeded inside the namespace")
	}

	host := servertest.Start(t, servertest.Options{})
	base := "http://" + host
	plain := pushImage(t, host+"/plain:v1", "linux/amd64", 1000)
	s := newBrowser(t, base)
	s.do(chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`a[href="/r/plain"]`)))
	s.do(chromedp.Navigate(base+"/r/plain"), chromedp.WaitVisible(chromedp.CSS(`tr[data-tag="v1"] button.pull-tag`)))
	if shown := eval[string](s, `document.querySelector('tr[data-tag="v1"] code').title`); shown != plain {
		t.Errorf("the tag table shows %s for plain:v1, the registry has %s", shown, plain)
	}
	s.do(chromedp.Navigate(base+"/r/plain@"+plain), chromedp.WaitVisible(chromedp.CSS("#digest")))
	if got := eval[string](s, `document.querySelector('#digest').textContent`); got != plain {
		t.Errorf("the image page shows %s, want %s", got, plain)
	}
	// The stylesheet and script loaded (from the server itself): the
	// page is styled and the copy buttons work.
	if got := eval[string](s, `getComputedStyle(document.querySelector('a.skip')).position`); got != "absolute" {
		t.Errorf("the skip link's position is %q: the stylesheet did not load", got)
	}
	s.do(chromedp.Navigate(base+"/status"), chromedp.WaitVisible(chromedp.CSS("#runs")))
	s.screenshot("status-loopback-only")
	s.onlyOwnHost()
}

// routesOf reads a /proc/net routing table and returns field dev of each
// route (the interface), skipping the header lines.
func routesOf(t *testing.T, path string, dev, header int) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for n := 0; sc.Scan(); n++ {
		if n < header {
			continue
		}
		if fs := strings.Fields(sc.Text()); len(fs) > dev {
			out = append(out, fs[dev])
		}
	}
	return out
}
