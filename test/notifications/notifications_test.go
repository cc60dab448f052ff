// Package notifications_test proves that webhook notifications lose no
// event: a real berth serve process, real crane pushes, a real HTTP
// receiver that is down while the pushes happen, and a kill -9 of berth in
// between.
package notifications_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/testpeer"
)

// build is the berth binary, built while the first test starts.
var build *testpeer.BerthBuild

func TestMain(m *testing.M) {
	var err error
	if build, err = testpeer.StartBerthBuild(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	build.Close()
	os.Exit(code)
}

// receiver is the webhook: it records every event of every envelope.
type receiver struct {
	mu       sync.Mutex
	posts    int
	events   []events.Event
	problems []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.posts++
	if r.Method != http.MethodPost || r.URL.Path != "/hook" {
		rc.problems = append(rc.problems, r.Method+" "+r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != events.EnvelopeMediaType {
		rc.problems = append(rc.problems, "Content-Type: "+ct)
	}
	if a := r.Header.Get("Authorization"); a != "Bearer hook-token" {
		rc.problems = append(rc.problems, "Authorization: "+a)
	}
	var env events.Envelope
	if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
		rc.problems = append(rc.problems, "body: "+err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.events = append(rc.events, env.Events...)
}

// pushed is one image pushed by crane.
type pushed struct {
	repo, tag, digest string
}

// TestNoEventLostAcrossOutageAndCrash pushes 100 images to three
// repositories while the webhook is down, killing berth with SIGKILL after
// the first 50 and starting it again; when the webhook comes up, every one
// of the 100 manifest push events arrives, in push order per repository,
// with the digest crane pushed — and nothing else (blob events are
// ignored by the endpoint's ignoredMediaTypes).
func TestNoEventLostAcrossOutageAndCrash(t *testing.T) {
	crane := testpeer.Need(t, "crane")
	berthBin := build.Bin(t)
	dir := t.TempDir()
	hookAddr := testpeer.FreeAddr(t) // nothing listens there yet: the webhook is down
	berth := &testpeer.BerthProcess{
		Name: "berth", Addr: testpeer.FreeAddr(t), Bin: berthBin,
		Config: filepath.Join(dir, "config.yaml"), LogPath: filepath.Join(dir, "berth.log"),
		// The webhook's credential comes from the environment, not the file.
		Env: append(os.Environ(), "BERTH_HOOK_TOKEN=Bearer hook-token"),
	}
	conf := fmt.Sprintf(`addr: %s
storage:
  filesystem:
    rootDirectory: %s
notifications:
  endpoints:
  - name: ci
    url: http://%s/hook
    headersFromEnv:
      Authorization: BERTH_HOOK_TOKEN
    timeout: 1s
    threshold: 2
    backoff: 100ms
    ignoredMediaTypes: [application/octet-stream]
`, berth.Addr, filepath.Join(dir, "data"), hookAddr)
	if err := os.WriteFile(berth.Config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	berth.Start(t)
	t.Cleanup(berth.Stop)

	repos := []string{"team/api", "team/web", "tools/ci"}
	var images []pushed
	push := func(i int) {
		t.Helper()
		images = append(images, cranePush(t, crane, dir, berth.Addr, repos[i%len(repos)], i))
	}
	for i := range 50 {
		push(i)
	}
	berth.Kill(t)
	berth.Start(t)
	waitMetric(t, berth.Addr, `registry_notifications_pending_total{endpoint="ci"}`, 50)
	for i := 50; i < 100; i++ {
		push(i)
	}
	waitMetric(t, berth.Addr, `registry_notifications_pending_total{endpoint="ci"}`, 100)

	rc := &receiver{}
	ln, err := net.Listen("tcp", hookAddr)
	if err != nil {
		t.Fatalf("the webhook cannot listen on %s: %v", hookAddr, err)
	}
	hook := &http.Server{Handler: rc}
	go func() { _ = hook.Serve(ln) }()
	t.Cleanup(func() { hook.Close() })

	deadline := time.Now().Add(60 * time.Second)
	for {
		rc.mu.Lock()
		n := len(rc.events)
		rc.mu.Unlock()
		if n >= len(images) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s the webhook has %d of %d events\n%s", n, len(images), berth.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitMetric(t, berth.Addr, `registry_notifications_pending_total{endpoint="ci"}`, 0)
	time.Sleep(300 * time.Millisecond) // anything extra would arrive now

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.problems) > 0 {
		t.Fatalf("the webhook saw: %v", rc.problems)
	}
	// At least once: a redelivery would repeat an id, which a receiver
	// drops; none is expected here, so count them.
	seen := map[string]bool{}
	var unique []events.Event
	for _, e := range rc.events {
		if !seen[e.ID] {
			seen[e.ID] = true
			unique = append(unique, e)
		}
	}
	if len(unique) != len(images) {
		t.Fatalf("%d distinct events (%d delivered), want %d", len(unique), len(rc.events), len(images))
	}
	byRepo := map[string][]pushed{}
	for _, img := range images {
		byRepo[img.repo] = append(byRepo[img.repo], img)
	}
	gotByRepo := map[string][]events.Event{}
	for _, e := range unique {
		if e.Action != events.Push || e.Target.MediaType == events.BlobMediaType {
			t.Fatalf("unexpected event %s %s %s", e.Action, e.Target.MediaType, e.Target.Repository)
		}
		gotByRepo[e.Target.Repository] = append(gotByRepo[e.Target.Repository], e)
	}
	for repo, want := range byRepo {
		got := gotByRepo[repo]
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", repo, len(got), len(want))
		}
		for i := range want {
			g := got[i]
			if g.Target.Tag != want[i].tag || g.Target.Digest.String() != want[i].digest {
				t.Fatalf("%s: event %d is %s@%s, want %s@%s (in push order)", repo, i, g.Target.Tag, g.Target.Digest, want[i].tag, want[i].digest)
			}
			if g.Target.URL != "http://"+berth.Addr+"/v2/"+repo+"/manifests/"+want[i].digest || g.Request.Method != http.MethodPut || !strings.Contains(g.Request.UserAgent, "crane") || g.Source.Addr != berth.Addr {
				t.Fatalf("%s: event %d lacks its request or source: %+v", repo, i, g)
			}
		}
	}
	t.Logf("%d events in %d POSTs after the outage; %d delivered in all", len(unique), rc.posts, len(rc.events))
}

// cranePush pushes image number i, a one-layer image unique to i, as
// host/repo:v<i> with crane, and returns what crane pushed.
func cranePush(t *testing.T, crane, dir, host, repo string, i int) pushed {
	t.Helper()
	layer := filepath.Join(dir, fmt.Sprintf("layer-%d.tar", i))
	writeTar(t, layer, fmt.Sprintf("file-%d", i), fmt.Sprintf("content of image %d\n", i))
	img := pushed{repo: repo, tag: fmt.Sprintf("v%d", i)}
	ref := host + "/" + img.repo + ":" + img.tag
	out, err := exec.Command(crane, "append", "--insecure", "--oci-empty-base", "-f", layer, "-t", ref).CombinedOutput()
	if err != nil {
		t.Fatalf("crane append %s: %v\n%s", ref, err, out)
	}
	m := regexp.MustCompile(`@(sha256:[0-9a-f]{64})`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("crane append printed no digest: %s", out)
	}
	img.digest = string(m[1])
	return img
}

// waitMetric waits until berth's metrics show series at value.
func waitMetric(t *testing.T, addr, series string, value float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := "absent"
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/extensions/v2/metrics")
		if err == nil {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
					last = v
					var f float64
					if _, err := fmt.Sscan(v, &f); err == nil && f == value {
						resp.Body.Close()
						return
					}
				}
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s is %s after 20s, want %v", series, last, value)
}
