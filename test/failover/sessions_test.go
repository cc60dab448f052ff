package failover_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testpeer"
	"github.com/opencontainers/go-digest"
)

// TestUploadSessionsSurvive breaks what an upload session depends on, one
// thing at a time, on one cluster of three replicas: the session must stay
// resumable (or, when the client's own unanswered request consumed it, be
// cleanly gone), never answered with an error the client cannot act on.
func TestUploadSessionsSurvive(t *testing.T) {
	rs, pg := newCluster(t, 3)
	t.Run("ReplicaKilledMidCommit", func(t *testing.T) { replicaKilledMidCommit(t, rs) })
	if !rs[1].Alive() { // the subtest failed before it restarted it
		rs[1].Start(t)
	}
	t.Run("MetadataConnectionsCut", func(t *testing.T) { metadataConnectionsCut(t, rs, pg) })
}

// replicaKilledMidCommit kills a replica inside the completing PUT of a
// many-chunk upload on the object store, at the moment another replica sees
// the session change (the blob is written and the session's objects are
// being discarded). The client's retried PUT through a survivor must get a
// protocol answer it can act on: 201, or 404 BLOB_UPLOAD_UNKNOWN (the
// unanswered PUT consumed the session) and then a fresh upload succeeds.
// Never DIGEST_INVALID for bytes the client sent correctly: a session is
// either whole or gone.
func replicaKilledMidCommit(t *testing.T, rs []*replica) {
	victim := rs[1]
	hc := &http.Client{Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	rec := newRecord(&clock{t0: time.Now(), kill: time.Hour, restart: time.Hour})
	a := &client{base: "http://" + rs[0].Addr, hc: hc, rec: rec}
	b := &client{base: "http://" + rs[2].Addr, hc: hc, rec: rec}
	v := &client{base: "http://" + victim.Addr, hc: hc, rec: rec}
	ctx := context.Background()
	defer func() {
		for _, msg := range rec.violations {
			t.Error(msg)
		}
	}()

	const repo = "commit/victim"
	var data []byte
	var rel string
	for attempt := 0; ; attempt++ {
		var seen string
		data, rel, seen = killInsideCommit(t, a, v, victim, repo, attempt)
		if seen != "" {
			t.Logf("%s killed -9 inside the completing PUT, with %s", victim.Name, seen)
			break
		}
		// The victim finished first: this blob is stored now, so the next
		// try needs fresh bytes for a commit as long as this one.
		if attempt == 2 {
			t.Fatalf("%s answered the completing PUT before it died, %d times: nothing was killed mid-commit", victim.Name, attempt+1)
		}
		t.Logf("%s answered the completing PUT before it died; again with other bytes", victim.Name)
		victim.Start(t)
	}
	d := digest.FromBytes(data)

	r := b.do(ctx, http.MethodPut, withQuery(b.base+rel, "digest", string(d)), nil)
	switch {
	case r.status == http.StatusCreated:
		t.Logf("the retried PUT on %s completed the session", rs[2].Name)
	case r.status == http.StatusNotFound && ociCode(r.body) == "BLOB_UPLOAD_UNKNOWN":
		t.Logf("the retried PUT on %s: the session was consumed; pushing the blob again", rs[2].Name)
		if err := b.pushBlob(ctx, repo, data, 256<<10); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("the retried PUT on %s: %s; want 201, or 404 BLOB_UPLOAD_UNKNOWN when the unanswered PUT consumed the session", rs[2].Name, r)
	}

	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	if err := a.putMonolithic(ctx, repo, cfg); err != nil {
		t.Fatal(err)
	}
	man := manifestFor(cfg, data)
	if err := a.putManifest(ctx, repo, "v1", man); err != nil {
		t.Fatal(err)
	}
	victim.Start(t)
	img := image{repo: repo, tag: "v1", manifest: digest.FromBytes(man), blobs: []blobRef{
		{digest.FromBytes(cfg), int64(len(cfg))}, {d, int64(len(data))},
	}}
	for _, r := range rs {
		c := &client{base: "http://" + r.Addr, hc: hc, rec: rec}
		if err := c.pullImage(ctx, img, r.Name); err != nil {
			t.Errorf("pull from %s: %v", r.Name, err)
		}
	}
}

// metadataConnectionsCut: PostgreSQL drops every replica's connections
// (as a database failover or restart does) while an upload session is
// open. Each replica's next requests may fail with a 5xx, which a client
// retries, but none may answer 404 BLOB_UPLOAD_UNKNOWN for a session that
// acknowledged its bytes: the client would abandon an upload it could
// resume.
func metadataConnectionsCut(t *testing.T, rs []*replica, pg *testpeer.Postgres) {
	hc := &http.Client{Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	rec := newRecord(&clock{t0: time.Now(), kill: time.Hour, restart: time.Hour})
	ctx := context.Background()
	clients := make([]*client, len(rs))
	for i, r := range rs {
		clients[i] = &client{base: "http://" + r.Addr, hc: hc, rec: rec}
	}
	defer func() {
		for _, msg := range rec.violations {
			t.Error(msg)
		}
	}()

	const repo = "metadata/cut"
	data := make([]byte, 3*chunk)
	rnd := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	loc, err := clients[0].startUpload(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	loc, acked, err := clients[0].patch(ctx, loc, data, 0, chunk, 0)
	if err != nil {
		t.Fatal(err)
	}
	rel := strings.TrimPrefix(loc, clients[0].base)
	// Every replica has used its pool, so each holds connections to cut.
	for _, c := range clients {
		if size, _, lost, err := c.uploadSize(ctx, c.base+rel); err != nil || lost || size != acked {
			t.Fatalf("status on %s before the cut: %d bytes, lost %v, %v", c.base, size, lost, err)
		}
	}

	cut := terminateBackends(t, pg)
	t.Logf("PostgreSQL dropped %d connections", cut)
	for _, c := range clients {
		for range 3 {
			size, next, lost, err := c.uploadSize(ctx, c.base+rel)
			switch {
			case err != nil:
				t.Fatalf("status on %s after the cut: %v", c.base, err)
			case lost:
				t.Fatalf("%s answered 404 BLOB_UPLOAD_UNKNOWN for a session holding %d acknowledged bytes after its database connections were cut", c.base, acked)
			case size != acked:
				t.Fatalf("status on %s after the cut: %d bytes, %d acknowledged", c.base, size, acked)
			}
			loc = next
		}
	}
	var failed []string
	for kind, n := range rec.failures[before] {
		failed = append(failed, fmt.Sprintf("%s ×%d", kind, n))
	}
	t.Logf("retried after the cut: %v", failed)

	c := clients[2]
	for acked < int64(len(data)) {
		if loc, acked, err = c.patch(ctx, loc, data, acked, min(acked+chunk, int64(len(data))), acked); err != nil {
			t.Fatal(err)
		}
	}
	d := digest.FromBytes(data)
	if a := c.do(ctx, http.MethodPut, withQuery(loc, "digest", string(d)), nil); a.status != http.StatusCreated {
		t.Fatalf("completing the upload: %s", a)
	}
	for _, c := range clients {
		if err := c.pullBlob(ctx, repo, blobRef{d, int64(len(data))}, c.base); err != nil {
			t.Fatal(err)
		}
	}
}

// terminateBackends makes PostgreSQL end every client connection to the
// database, and returns how many it ended.
func terminateBackends(t *testing.T, pg *testpeer.Postgres) int {
	t.Helper()
	out := pg.SQL(t, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	var n int
	if _, err := fmt.Sscan(out, &n); err != nil || n == 0 {
		t.Fatalf("PostgreSQL terminated %q connections; want some", out)
	}
	return n
}

// killInsideCommit uploads a blob of many chunks through a, sends the
// completing PUT to the victim (through v) and kills the victim as soon as a
// sees the session change. It returns the bytes, the session's Location and
// what a saw, or an empty seen when the victim answered the PUT before it
// died (it is dead either way).
func killInsideCommit(t *testing.T, a, v *client, victim *replica, repo string, attempt int) (data []byte, rel, seen string) {
	t.Helper()
	ctx := context.Background()
	const small, chunks = 16 << 10, 48
	data = make([]byte, small*chunks)
	rnd := rand.New(rand.NewPCG(3, uint64(attempt)))
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	d := digest.FromBytes(data)
	loc, err := a.startUpload(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	var acked int64
	for acked < int64(len(data)) {
		if loc, acked, err = a.patch(ctx, loc, data, acked, acked+small, acked); err != nil {
			t.Fatal(err)
		}
	}
	rel = strings.TrimPrefix(loc, a.base)

	done := make(chan answer, 1)
	go func() { done <- v.do(ctx, http.MethodPut, withQuery(v.base+rel, "digest", string(d)), nil) }()
	answered := false
	for seen == "" && !answered {
		size, _, lost, err := a.uploadSize(ctx, a.base+rel)
		switch {
		case err != nil:
			t.Fatal(err)
		case lost:
			seen = "the session gone"
		case size < int64(len(data)):
			seen = fmt.Sprintf("the session holding %d of its %d bytes", size, len(data))
		}
		select {
		case ans := <-done:
			answered = true
			done <- ans
		default:
		}
	}
	victim.Kill(t)
	if ans := <-done; ans.err == nil {
		if ans.status != http.StatusCreated {
			t.Fatalf("%s answered the completing PUT with %s", victim.Name, ans)
		}
		return data, rel, ""
	}
	return data, rel, seen
}
