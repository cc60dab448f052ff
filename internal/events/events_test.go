package events_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
)

func endpoint(name, url string) config.Endpoint {
	return config.Endpoint{Name: name, URL: url, Timeout: config.PositiveDuration(2 * time.Second), Threshold: 2, Backoff: config.PositiveDuration(20 * time.Millisecond)}
}

func TestEventsGoToTheEndpointsThatWantThem(t *testing.T) {
	manifest := events.Change{Action: events.Push, Repo: "a/b", Digest: digest.FromString("m"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 7, Tag: "v1"}
	blob := events.Change{Action: events.Push, Repo: "a/b", Digest: digest.FromString("l"), MediaType: events.BlobMediaType, Size: 9}
	pull := manifest
	pull.Action = events.Pull
	del := events.Change{Action: events.Delete, Repo: "a/b", Tag: "v1"}

	all := endpoint("all", "http://all.example")
	noBlobs := endpoint("noblobs", "http://noblobs.example")
	noBlobs.IgnoredMediaTypes = []string{"Application/Octet-Stream"}
	noDeletes := endpoint("nodeletes", "http://nodeletes.example")
	noDeletes.Ignore.Actions = []string{events.Delete}
	noManifests := endpoint("nomanifests", "http://nomanifests.example")
	noManifests.Ignore.MediaTypes = []string{"application/vnd.oci.image.manifest.v1+json"}
	off := endpoint("off", "http://off.example")
	off.Disabled = true
	eps := []config.Endpoint{all, noBlobs, noDeletes, noManifests, off}

	for _, c := range []struct {
		name   string
		pulls  bool
		change events.Change
		want   []string
	}{
		{"manifest push", false, manifest, []string{"all", "noblobs", "nodeletes"}},
		{"blob push", false, blob, []string{"all", "nodeletes", "nomanifests"}},
		{"tag delete (no media type)", false, del, []string{"all", "noblobs", "nomanifests"}},
		{"pull, pulls off", false, pull, nil},
		{"pull, pulls on", true, pull, []string{"all", "noblobs", "nodeletes"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := events.New(config.Notifications{Pulls: c.pulls, Endpoints: eps}, "registry.example:5000", nil)
			var got []string
			var body []byte
			for _, e := range n.Events(context.Background(), c.change) {
				got = append(got, e.Endpoint)
				if e.Repo != c.change.Repo {
					t.Errorf("queue row repo %q, want %q", e.Repo, c.change.Repo)
				}
				if body != nil && string(body) != string(e.Body) {
					t.Errorf("endpoints got different events for one change")
				}
				body = e.Body
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("endpoints = %v, want %v", got, c.want)
			}
		})
	}
	var nilNotifier *events.Notifier
	if evs := nilNotifier.Events(context.Background(), manifest); evs != nil || nilNotifier.Pulls() {
		t.Fatal("a nil notifier wants events")
	}
}

func TestEventIsDistributionsEnvelopeEvent(t *testing.T) {
	n := events.New(config.Notifications{Endpoints: []config.Endpoint{endpoint("hook", "http://hook.example")}}, "registry.example:5000", nil)
	ctx := events.WithRequest(context.Background(), events.Request{ID: "req-1", Addr: "10.0.0.9:41234", Host: "registry.example:5000", Method: "PUT", UserAgent: "crane/0.22"}, "https")
	events.SetActor(ctx, "alice")
	d := digest.FromString("m")
	c := events.Change{Action: events.Push, Repo: "team/app", Digest: d, MediaType: "application/vnd.oci.image.index.v1+json", Size: 312, Tag: "v2"}
	evs := n.Events(ctx, c)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	var got map[string]any
	if err := json.Unmarshal(evs[0].Body, &got); err != nil {
		t.Fatal(err)
	}
	target := got["target"].(map[string]any)
	request := got["request"].(map[string]any)
	for field, want := range map[string]any{
		"action":            "push",
		"target.mediaType":  "application/vnd.oci.image.index.v1+json",
		"target.digest":     d.String(),
		"target.size":       312.0,
		"target.length":     312.0,
		"target.repository": "team/app",
		"target.tag":        "v2",
		"target.url":        "https://registry.example:5000/v2/team/app/manifests/" + d.String(),
		"request.id":        "req-1",
		"request.addr":      "10.0.0.9:41234",
		"request.host":      "registry.example:5000",
		"request.method":    "PUT",
		"request.useragent": "crane/0.22",
		"actor.name":        "alice",
		"source.addr":       "registry.example:5000",
	} {
		var v any
		switch prefix, key, _ := strings.Cut(field, "."); prefix {
		case "target":
			v = target[key]
		case "request":
			v = request[key]
		case "actor", "source":
			v = got[prefix].(map[string]any)[key]
		default:
			v = got[field]
		}
		if v != want {
			t.Errorf("%s = %v, want %v", field, v, want)
		}
	}
	if id, _ := got["id"].(string); len(id) < 32 {
		t.Errorf("id %q is not a unique id", id)
	}
	if ts, err := time.Parse(time.RFC3339Nano, got["timestamp"].(string)); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("timestamp %v (%v)", got["timestamp"], err)
	}
	again := n.Events(ctx, c)
	var second map[string]any
	_ = json.Unmarshal(again[0].Body, &second)
	if second["id"] == got["id"] {
		t.Error("two events share an id")
	}
	blob := n.Events(ctx, events.Change{Action: events.Mount, Repo: "team/app", From: "team/base", Digest: d, MediaType: events.BlobMediaType, Size: 5})
	var mount struct {
		Target events.Target `json:"target"`
	}
	_ = json.Unmarshal(blob[0].Body, &mount)
	if mount.Target.FromRepository != "team/base" || !strings.Contains(mount.Target.URL, "/v2/team/app/blobs/") {
		t.Errorf("mount target = %+v", mount.Target)
	}
}

// receiver is a webhook that fails its first failN POSTs with 503 and
// records the events of the others.
type receiver struct {
	mu        sync.Mutex
	failN     int
	posts     int
	events    []events.Event
	envelopes int
	problems  []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.posts++
	if rc.posts <= rc.failN {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != events.EnvelopeMediaType {
		rc.problems = append(rc.problems, "Content-Type "+ct)
	}
	if a := r.Header.Get("Authorization"); a != "Bearer s3cret" {
		rc.problems = append(rc.problems, "Authorization "+a)
	}
	b, _ := io.ReadAll(r.Body)
	var env events.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		rc.problems = append(rc.problems, "body: "+err.Error())
	}
	rc.envelopes++
	rc.events = append(rc.events, env.Events...)
}

func (rc *receiver) snapshot() ([]events.Event, int, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.events), rc.posts, slices.Clone(rc.problems)
}

func TestDeliveryRetriesAndKeepsOrder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	meta, err := metadata.OpenSQLite(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	rc := &receiver{failN: 4}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ep := endpoint("hook", srv.URL)
	ep.Headers = map[string][]string{"Authorization": {"Bearer s3cret"}}
	reg := prometheus.NewRegistry()
	n := events.New(config.Notifications{Endpoints: []config.Endpoint{ep}}, "127.0.0.1:5000", events.NewMetrics(reg))

	// More than one envelope's worth, queued before delivery starts, as a
	// backlog is after an outage.
	const total = events.BatchSize + 30
	var want []string
	for i := range total {
		c := events.Change{Action: events.Push, Repo: "r", Digest: digest.FromString(string(rune(i))), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(i), Tag: "t" + string(rune('a'+i%26))}
		evs := n.Events(ctx, c)
		if err := meta.Enqueue(ctx, evs...); err != nil {
			t.Fatal(err)
		}
		var e events.Event
		_ = json.Unmarshal(evs[0].Body, &e)
		want = append(want, e.ID)
	}
	done := make(chan struct{})
	go func() { n.Run(ctx, meta, srv.Client(), nil); close(done) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _, _ := rc.snapshot()
		if len(got) >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Once more events, live, after the backlog: woken, not polled.
	live := n.Events(ctx, events.Change{Action: events.Delete, Repo: "r", Tag: "gone"})
	if err := meta.Enqueue(ctx, live...); err != nil {
		t.Fatal(err)
	}
	n.Queued(events.Delete, live)
	var liveEv events.Event
	_ = json.Unmarshal(live[0].Body, &liveEv)
	want = append(want, liveEv.ID)
	for time.Now().Before(deadline) {
		if got, _, _ := rc.snapshot(); len(got) >= len(want) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	got, posts, problems := rc.snapshot()
	if len(problems) > 0 {
		t.Fatalf("receiver saw: %v", problems)
	}
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("received %d events, want %d in queue order", len(ids), len(want))
	}
	if posts < rc.failN+2 {
		t.Fatalf("%d POSTs: the backlog did not come in envelopes after the failures", posts)
	}
	if v := metric(t, reg, "registry_notifications_events_total", map[string]string{"type": "Failures", "action": "push", "endpoint": "hook"}); v != float64(rc.failN*events.BatchSize) {
		t.Errorf("Failures = %v, want %d", v, rc.failN*events.BatchSize)
	}
	if v := metric(t, reg, "registry_notifications_events_total", map[string]string{"type": "Successes", "action": "push", "endpoint": "hook"}); v != total {
		t.Errorf("Successes = %v, want %d", v, total)
	}
	if v := metric(t, reg, "registry_notifications_status_total", map[string]string{"code": "503 Service Unavailable", "endpoint": "hook"}); v != float64(rc.failN*events.BatchSize) {
		t.Errorf("status 503 = %v", v)
	}
	waitFor(t, func() bool {
		n, err := meta.PendingCount(ctx, "hook")
		return err == nil && n == 0
	}, "the queue to empty")
	waitFor(t, func() bool {
		return metric(t, reg, "registry_notifications_pending_total", map[string]string{"endpoint": "hook"}) == 0
	}, "the pending gauge to read 0")
	cancel()
	<-done
}

func TestUnansweredPostIsRetried(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	meta, err := metadata.OpenSQLite(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	var mu sync.Mutex
	calls := 0
	var got []events.Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			time.Sleep(300 * time.Millisecond) // longer than the timeout
			return
		}
		var env events.Envelope
		_ = json.NewDecoder(r.Body).Decode(&env)
		mu.Lock()
		got = append(got, env.Events...)
		mu.Unlock()
		w.WriteHeader(http.StatusSeeOther) // 3xx counts as accepted, as in Distribution
	}))
	defer srv.Close()
	ep := endpoint("slow", srv.URL)
	ep.Timeout = config.PositiveDuration(100 * time.Millisecond)
	reg := prometheus.NewRegistry()
	n := events.New(config.Notifications{Endpoints: []config.Endpoint{ep}}, "127.0.0.1:5000", events.NewMetrics(reg))
	evs := n.Events(ctx, events.Change{Action: events.Push, Repo: "r", Digest: digest.FromString("x"), MediaType: events.BlobMediaType, Size: 1})
	if err := meta.Enqueue(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	go n.Run(ctx, meta, client, nil)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 }, "the event after a timed-out POST")
	if v := metric(t, reg, "registry_notifications_events_total", map[string]string{"type": "Errors", "action": "push", "endpoint": "slow"}); v != 1 {
		t.Errorf("Errors = %v, want 1", v)
	}
	waitFor(t, func() bool { n, _ := meta.PendingCount(ctx, "slow"); return n == 0 }, "the queue to empty")
}

// metric reads the value of one series of reg (0 when it does not exist).
func metric(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
