package failover_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestReplicaKilledMidCommit kills a replica inside the completing PUT of a
// many-chunk upload on the object store, at the moment another replica sees
// the session change (the blob is written and the session's objects are
// being discarded). The client's retried PUT through a survivor must get a
// protocol answer it can act on: 201, or 404 BLOB_UPLOAD_UNKNOWN (the
// unanswered PUT consumed the session) and then a fresh upload succeeds.
// Never DIGEST_INVALID for bytes the client sent correctly: a session is
// either whole or gone.
func TestReplicaKilledMidCommit(t *testing.T) {
	rs := newReplicas(t, 3)
	victim := rs[1]
	hc := &http.Client{Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	rec := newRecord(&clock{t0: time.Now(), kill: time.Hour, restart: time.Hour})
	a := &client{base: "http://" + rs[0].addr, hc: hc, rec: rec}
	b := &client{base: "http://" + rs[2].addr, hc: hc, rec: rec}
	v := &client{base: "http://" + victim.addr, hc: hc, rec: rec}
	ctx := context.Background()
	defer func() {
		for _, msg := range rec.violations {
			t.Error(msg)
		}
	}()

	const repo, small, chunks = "commit/victim", 16 << 10, 48
	data := make([]byte, small*chunks)
	rnd := rand.New(rand.NewPCG(3, 4))
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
	rel := strings.TrimPrefix(loc, a.base)

	done := make(chan answer, 1)
	go func() { done <- v.do(ctx, http.MethodPut, withQuery(v.base+rel, "digest", string(d)), nil) }()
	var seen string
	for seen == "" {
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
			if seen == "" {
				t.Fatalf("%s completed the upload (%s) before %s saw the session change; nothing was killed mid-commit", victim.name, ans, rs[0].name)
			}
			done <- ans
		default:
		}
	}
	victim.kill(t)
	if ans := <-done; ans.err == nil {
		t.Fatalf("%s answered the completing PUT before it died (%s): nothing was killed mid-commit", victim.name, ans)
	}
	t.Logf("%s killed -9 inside the completing PUT, with %s", victim.name, seen)

	r := b.do(ctx, http.MethodPut, withQuery(b.base+rel, "digest", string(d)), nil)
	switch {
	case r.status == http.StatusCreated:
		t.Logf("the retried PUT on %s completed the session", rs[2].name)
	case r.status == http.StatusNotFound && ociCode(r.body) == "BLOB_UPLOAD_UNKNOWN":
		t.Logf("the retried PUT on %s: the session was consumed; pushing the blob again", rs[2].name)
		if err := b.pushBlob(ctx, repo, data, 256<<10); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("the retried PUT on %s: %s; want 201, or 404 BLOB_UPLOAD_UNKNOWN when the unanswered PUT consumed the session", rs[2].name, r)
	}

	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	if err := a.putMonolithic(ctx, repo, cfg); err != nil {
		t.Fatal(err)
	}
	man := manifestFor(cfg, data)
	if err := a.putManifest(ctx, repo, "v1", man); err != nil {
		t.Fatal(err)
	}
	victim.start(t)
	img := image{repo: repo, tag: "v1", manifest: digest.FromBytes(man), blobs: []blobRef{
		{digest.FromBytes(cfg), int64(len(cfg))}, {d, int64(len(data))},
	}}
	for _, r := range rs {
		c := &client{base: "http://" + r.addr, hc: hc, rec: rec}
		if err := c.pullImage(ctx, img, r.name); err != nil {
			t.Errorf("pull from %s: %v", r.name, err)
		}
	}
}
