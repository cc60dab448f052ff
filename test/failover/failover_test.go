// Package failover_test kills a berth serve replica under load: three real
// replica processes on one MinIO bucket and one PostgreSQL database behind a
// round-robin balancer, pushed to and pulled from by concurrent clients
// while one replica is killed -9 and later restarted.
package failover_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

const (
	pushers = 8
	pullers = 8
	// chunk is one PATCH; a layer is three to four of them, so a session
	// spans replicas.
	chunk = 96 << 10
)

// runLength is the 60 s unless BERTH_FAILOVER_SECONDS shortens (or
// lengthens) it; the kill and the restart stay at a third and two thirds.
func runLength(t *testing.T) time.Duration {
	s := os.Getenv("BERTH_FAILOVER_SECONDS")
	if s == "" {
		return 60 * time.Second
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 6 {
		t.Fatalf("BERTH_FAILOVER_SECONDS=%q: want a whole number of seconds, at least 6", s)
	}
	return time.Duration(n) * time.Second
}

// TestReplicaKilledUnderLoad: 8 pushers (chunked uploads, every request
// to the next replica) and 8 pullers run through the balancer; replica 2 is
// killed -9 at a third of the run and restarted at two thirds. Every
// acknowledged push must then validate completely from every replica, every
// upload session that acknowledged a chunk must still be resumable, and the
// clients must have seen only retryable failures. The p99 latencies of
// pushes and pulls per phase are logged.
func TestReplicaKilledUnderLoad(t *testing.T) {
	total := runLength(t)
	began := time.Now()
	rs, _ := newCluster(t, 3)
	t.Logf("MinIO, PostgreSQL and 3 replicas up in %s", time.Since(began).Round(time.Millisecond))
	victim := rs[1]
	lb, base := startBalancer(t, rs)

	clk := &clock{kill: total / 3, restart: 2 * total / 3}
	rec := newRecord(clk)
	hc := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: pushers + pullers + 8},
	}
	defer hc.CloseIdleConnections()
	c := &client{base: base, hc: hc, rec: rec}

	// Operations get a context of their own, so one in flight when the run
	// ends completes (and is checked) instead of being cut off.
	opCtx, cancelOps := context.WithTimeout(context.Background(), total+60*time.Second)
	defer cancelOps()

	// A few images before the clock starts, so pullers have work at once.
	clk.t0 = time.Now()
	for i := range 4 {
		cfg, layer := content(rand.New(rand.NewPCG(99, uint64(i))), "seed", i)
		img, err := c.pushImage(opCtx, "load/seed", fmt.Sprintf("s%d", i), cfg, layer, chunk)
		if err != nil {
			t.Fatalf("seed push: %v\n%s", err, strings.Join(rec.violations, "\n"))
		}
		rec.acked = append(rec.acked, img)
	}

	clk.t0 = time.Now()
	stop := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(p), 1))
			repo := fmt.Sprintf("load/pusher-%d", p)
			for k := 0; !stopped(); k++ {
				cfg, layer := content(rnd, repo, k)
				began := time.Now()
				img, err := c.pushImage(opCtx, repo, fmt.Sprintf("t%d", k), cfg, layer, chunk)
				if err != nil {
					return // recorded as a violation
				}
				rec.ack(img, began)
			}
		})
	}
	for p := range pullers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(p), 2))
			for !stopped() {
				img, _ := rec.pick(rnd.IntN(1 << 30))
				began := time.Now()
				if err := c.pullImage(opCtx, img, "puller"); err != nil {
					return
				}
				rec.pulled(began)
			}
		})
	}

	// Sessions that acknowledged a chunk on the victim just before it dies
	// must be resumable through the others (checked below, while it is
	// down): the bytes and the session live in the shared stores, not in
	// the replica.
	direct := &client{base: "http://" + victim.Addr, hc: hc, rec: rec}
	type held struct {
		repo string
		loc  string // the session's Location, path and query only
		data []byte
	}
	sessions := make([]held, 4)
	waitUntil(clk.t0.Add(clk.kill - 3*time.Second))
	var sw sync.WaitGroup
	for i := range sessions {
		sw.Go(func() {
			repo := fmt.Sprintf("load/resumed-%d", i)
			_, data := content(rand.New(rand.NewPCG(7, uint64(i))), repo, 0)
			first := direct
			if i%2 == 1 {
				// Begun elsewhere, chunk acknowledged by the victim.
				first = &client{base: "http://" + rs[0].Addr, hc: hc, rec: rec}
			}
			loc, err := first.startUpload(opCtx, repo)
			if err != nil {
				t.Errorf("session on %s: %v", first.base, err)
				return
			}
			loc = direct.base + strings.TrimPrefix(loc, first.base)
			next, n, err := direct.patch(opCtx, loc, data, 0, chunk, 0)
			if err != nil || n != chunk {
				t.Errorf("first chunk on the victim: %v (%d bytes)", err, n)
				return
			}
			sessions[i] = held{repo: repo, loc: strings.TrimPrefix(next, direct.base), data: data}
		})
	}
	sw.Wait()
	sessions = slices.DeleteFunc(sessions, func(h held) bool { return h.loc == "" })

	waitUntil(clk.t0.Add(clk.kill))
	clk.killed = time.Now()
	victim.Kill(t)
	t.Logf("%s killed -9 at %s", victim.Name, clk.killed.Sub(clk.t0).Round(time.Millisecond))

	// Through the survivors, named directly, so no request can reach the
	// victim even if this outlasts its downtime: the status from one, the
	// remaining chunks to the other, the completing PUT to the first.
	s1 := &client{base: "http://" + rs[0].Addr, hc: hc, rec: rec}
	s3 := &client{base: "http://" + rs[2].Addr, hc: hc, rec: rec}
	resumed := make(chan struct{})
	go func() {
		defer close(resumed)
		waitUntil(clk.killed.Add(500 * time.Millisecond))
		var rw sync.WaitGroup
		for _, s := range sessions {
			rw.Go(func() { resumeSession(t, rec, s1, s3, s.repo, s.loc, s.data) })
		}
		rw.Wait()
		t.Logf("the %d sessions acknowledged by %s resumed through the survivors by %s", len(sessions), victim.Name, time.Since(clk.t0).Round(time.Millisecond))
	}()

	waitUntil(clk.t0.Add(clk.restart))
	restarting := time.Now()
	victim.Start(t)
	clk.reborn = time.Now()
	t.Logf("%s restarted at %s, healthy %s later", victim.Name, restarting.Sub(clk.t0).Round(time.Millisecond), clk.reborn.Sub(restarting).Round(time.Millisecond))

	waitUntil(clk.t0.Add(total))
	close(stop)
	wg.Wait()
	<-resumed
	t.Logf("load ran %s; the balancer moved %d requests off a refusing replica and answered %d with 502",
		time.Since(clk.t0).Round(time.Millisecond), lb.redispatched.Load(), lb.cutOff.Load())

	report(t, rec)

	// Every acknowledged push, from every replica, the restarted one
	// included, straight to the replica.
	rec.mu.Lock()
	rec.validating = true
	acked := rec.acked
	rec.mu.Unlock()
	validating := time.Now()
	for _, r := range rs {
		rc := &client{base: "http://" + r.Addr, hc: hc, rec: rec}
		var vw sync.WaitGroup
		work := make(chan image)
		for range 8 {
			vw.Go(func() {
				for img := range work {
					_ = rc.pullImage(opCtx, img, "validate on "+r.Name)
					a := rc.do(opCtx, http.MethodHead, rc.base+"/v2/"+img.repo+"/manifests/"+img.tag, nil, "Accept", mediaManifest)
					if a.status != http.StatusOK || a.header.Get("Docker-Content-Digest") != string(img.manifest) {
						rec.violate("validate on %s: HEAD %s:%s: %s, digest %q, want %s", r.Name, img.repo, img.tag, a, a.header.Get("Docker-Content-Digest"), img.manifest)
					}
				}
			})
		}
		for _, img := range acked {
			work <- img
		}
		close(work)
		vw.Wait()
	}
	t.Logf("validated %d acknowledged images (%d blobs each) from each of %d replicas in %s", len(acked), 2, len(rs), time.Since(validating).Round(time.Millisecond))

	for _, v := range rec.violations {
		t.Error(v)
	}
	if len(rec.violations) > 0 {
		t.Logf("%s log (tail):\n%s", victim.Name, victim.Log())
	}
	for i, r := range rs {
		if i != 1 && strings.Contains(r.Log(), "level=ERROR") {
			t.Logf("%s logged errors (tail):\n%s", r.Name, r.Log())
		}
	}
	// Failures are retryable by construction (anything else is a
	// violation above), but they must come from the kill: with all three
	// replicas healthy, nothing should fail at all.
	var early, late int
	for _, at := range rec.failedAt {
		switch {
		case at < clk.killed.Sub(clk.t0):
			early++
		case at > clk.reborn.Sub(clk.t0):
			late++
		}
	}
	if early > 0 {
		t.Errorf("%d requests failed before the kill, with every replica healthy", early)
	}
	if late > 0 {
		t.Errorf("%d requests failed after the restarted replica was healthy", late)
	}
	for ph := range phases {
		if len(rec.push[ph]) == 0 || len(rec.pull[ph]) == 0 {
			t.Errorf("phase %s completed %d pushes and %d pulls; the load did not run through it", phaseNames[ph], len(rec.push[ph]), len(rec.pull[ph]))
		}
	}
}

// resumeSession continues an upload session that acknowledged its first
// chunk on the victim: a and b are two survivors; rel is the session's
// Location.
func resumeSession(t *testing.T, rec *record, a, b *client, repo, rel string, data []byte) {
	size, next, lost, err := a.uploadSize(context.Background(), a.base+rel)
	switch {
	case err != nil:
		t.Errorf("status of %s after the kill: %v", rel, err)
		return
	case lost:
		t.Errorf("session %s, which acknowledged %d bytes on the victim, is unknown after the kill", rel, chunk)
		return
	case size != chunk:
		t.Errorf("session %s holds %d bytes after the kill, %d were acknowledged", rel, size, chunk)
		return
	}
	acked := size
	next = b.base + strings.TrimPrefix(next, a.base)
	for acked < int64(len(data)) {
		if next, acked, err = b.patch(context.Background(), next, data, acked, min(acked+chunk, int64(len(data))), acked); err != nil {
			t.Errorf("continuing %s on %s: %v", rel, b.base, err)
			return
		}
	}
	d := digest.FromBytes(data)
	if r := a.do(context.Background(), http.MethodPut, withQuery(a.base+strings.TrimPrefix(next, b.base), "digest", string(d)), nil); r.status != http.StatusCreated || r.header.Get("Docker-Content-Digest") != string(d) {
		t.Errorf("completing %s on %s: %s", rel, a.base, r)
		return
	}
	cfg := []byte(`{"architecture":"amd64","os":"linux","resumed":"` + repo + `"}`)
	if err := a.putMonolithic(context.Background(), repo, cfg); err != nil {
		t.Errorf("config for %s: %v", repo, err)
		return
	}
	man := manifestFor(cfg, data)
	if err := b.putManifest(context.Background(), repo, "resumed", man); err != nil {
		t.Errorf("manifest for %s: %v", repo, err)
		return
	}
	rec.mu.Lock()
	rec.acked = append(rec.acked, image{repo: repo, tag: "resumed", manifest: digest.FromBytes(man), blobs: []blobRef{
		{digest.FromBytes(cfg), int64(len(cfg))}, {d, int64(len(data))},
	}})
	rec.mu.Unlock()
}

// content is a pusher's k-th image: a small config and a layer of three to
// four chunks of fresh random bytes, so no push is a no-op.
func content(rnd *rand.Rand, repo string, k int) (cfg, layer []byte) {
	cfg = fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","config":{"Labels":{"repo":%q,"n":"%d"}}}`, repo, k)
	layer = make([]byte, 2*chunk+rnd.IntN(2*chunk))
	for i := 0; i+8 <= len(layer); i += 8 {
		v := rnd.Uint64()
		for j := range 8 {
			layer[i+j] = byte(v >> (8 * j))
		}
	}
	return cfg, layer
}

func waitUntil(at time.Time) { time.Sleep(time.Until(at)) }

// report logs the failures the clients retried and the p99 latencies, by
// phase.
func report(t *testing.T, rec *record) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "p99 latency (whole image, retries included)\n")
	fmt.Fprintf(&b, "  %-7s %8s %7s %9s %7s\n", "phase", "push p99", "pushes", "pull p99", "pulls")
	for ph := range phases {
		fmt.Fprintf(&b, "  %-7s %8s %7d %9s %7d\n", phaseNames[ph],
			p99(rec.push[ph]).Round(time.Millisecond), len(rec.push[ph]),
			p99(rec.pull[ph]).Round(time.Millisecond), len(rec.pull[ph]))
	}
	fmt.Fprintf(&b, "retried failures by phase:")
	for ph := range phases {
		var kinds []string
		n := 0
		for k, c := range rec.failures[ph] {
			kinds = append(kinds, fmt.Sprintf("%s ×%d", k, c))
			n += c
		}
		slices.Sort(kinds)
		fmt.Fprintf(&b, "\n  %-7s %d", phaseNames[ph], n)
		if n > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(kinds, ", "))
		}
	}
	if len(rec.failedAt) > 0 {
		s := slices.Clone(rec.failedAt)
		slices.Sort(s)
		fmt.Fprintf(&b, "\n  first at %s, last at %s (kill at %s, restart healthy at %s)",
			s[0].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond),
			rec.clk.killed.Sub(rec.clk.t0).Round(time.Millisecond), rec.clk.reborn.Sub(rec.clk.t0).Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "\nsessions consumed by an unanswered completing PUT (restarted by the client): %d", rec.consumed)
	fmt.Fprintf(&b, "\nper request, whole run (answered ones; the client's view through the balancer):")
	for _, k := range slices.Sorted(maps.Keys(rec.reqs)) {
		v := rec.reqs[k]
		slices.Sort(v)
		fmt.Fprintf(&b, "\n  %-13s n=%-5d p50=%-7s p99=%s", k, len(v), v[len(v)/2].Round(time.Millisecond), p99(v).Round(time.Millisecond))
	}
	t.Log(b.String())
}
