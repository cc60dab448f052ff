package notifications_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/testpeer"
)

// TestReplicasDeliverOnceAndTakeOver runs two berth serve replicas on one
// MinIO bucket and one PostgreSQL database, both configured with the same
// webhook. Pushes through either replica reach the webhook exactly once
// (one replica at a time holds the endpoint's delivery lease); when the
// lease holder is killed -9, the other takes the queue over once the lease
// runs out, and what was pushed meanwhile arrives.
func TestReplicasDeliverOnceAndTakeOver(t *testing.T) {
	crane := testpeer.Need(t, "crane")
	berthBin := build.Bin(t)
	pg := testpeer.StartPostgres(t)
	minio := testpeer.StartMinIO(t)
	dir := t.TempDir()

	rc := &receiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hook := &http.Server{Handler: rc}
	go func() { _ = hook.Serve(ln) }()
	t.Cleanup(func() { hook.Close() })

	env := append(os.Environ(),
		config.S3AccessKeyEnv+"="+minio.AccessKey,
		config.S3SecretKeyEnv+"="+minio.SecretKey,
		config.MetadataDSNEnv+"=",
	)
	var rs []*testpeer.BerthProcess
	for i := range 2 {
		r := &testpeer.BerthProcess{
			Name: fmt.Sprintf("replica-%d", i+1), Addr: testpeer.FreeAddr(t), Bin: berthBin, Env: env,
			Config: filepath.Join(dir, fmt.Sprintf("replica-%d.yaml", i+1)), LogPath: filepath.Join(dir, fmt.Sprintf("replica-%d.log", i+1)),
		}
		conf := fmt.Sprintf(`addr: %s
storage:
  s3:
    bucket: berth-notifications
    region: us-east-1
    regionEndpoint: %s
metadataDirectory: %s
metadataDatabase: %s
httpSecret: shared-by-every-replica
shutdownTimeout: 5s
notifications:
  endpoints:
  - name: ci
    url: http://%s/hook
    headers:
      Authorization: [Bearer hook-token]
    timeout: 1s
    backoff: 100ms
    ignoredMediaTypes: [application/octet-stream]
`, r.Addr, minio.Endpoint, filepath.Join(dir, fmt.Sprintf("meta-%d", i+1)), pg.DSN, ln.Addr())
		if err := os.WriteFile(r.Config, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		r.Start(t) // one at a time: the first creates the bucket and the schema
		t.Cleanup(r.Stop)
		rs = append(rs, r)
	}

	var images []pushed
	for i := range 20 {
		images = append(images, cranePush(t, crane, dir, rs[i%2].Addr, "app", i))
	}
	waitEvents(t, rc, len(images), rs)
	holder := pg.SQL(t, `SELECT holder FROM event_leases WHERE endpoint = 'ci'`)
	var victim, survivor *testpeer.BerthProcess
	for _, r := range rs {
		if holder == r.Addr {
			victim = r
		} else {
			survivor = r
		}
	}
	if victim == nil || survivor == nil {
		t.Fatalf("the lease holder %q is not one replica", holder)
	}
	victim.Kill(t)
	killed := time.Now()
	for i := 20; i < 30; i++ {
		images = append(images, cranePush(t, crane, dir, survivor.Addr, "app", i))
	}
	waitEvents(t, rc, len(images), rs)
	t.Logf("%s took the queue over %s after %s was killed", survivor.Name, time.Since(killed).Round(100*time.Millisecond), victim.Name)

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.problems) > 0 {
		t.Fatalf("the webhook saw: %v", rc.problems)
	}
	seen := map[string]int{}
	var order []string
	for _, e := range rc.events {
		seen[e.ID]++
		if seen[e.ID] == 1 {
			order = append(order, e.Target.Tag+"@"+e.Target.Digest.String())
		}
	}
	dups := len(rc.events) - len(seen)
	if len(seen) != len(images) {
		t.Fatalf("%d distinct events, want %d", len(seen), len(images))
	}
	// Before the kill, one replica delivered everything: no duplicates.
	// The kill may cost one redelivery of the envelope in flight, no more.
	if dups > 0 {
		t.Logf("%d events delivered twice (the envelope in flight at the kill)", dups)
	}
	for i, img := range images {
		if order[i] != img.tag+"@"+img.digest {
			t.Fatalf("event %d is %s, want %s@%s", i, order[i], img.tag, img.digest)
		}
	}
	for _, e := range rc.events {
		if e.Action != events.Push || e.Target.Repository != "app" {
			t.Fatalf("unexpected event %+v", e)
		}
	}
}

// waitEvents waits until the webhook has n distinct events.
func waitEvents(t *testing.T, rc *receiver, n int, rs []*testpeer.BerthProcess) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		rc.mu.Lock()
		ids := map[string]bool{}
		for _, e := range rc.events {
			ids[e.ID] = true
		}
		rc.mu.Unlock()
		if len(ids) >= n {
			return
		}
		if time.Now().After(deadline) {
			logs := ""
			for _, r := range rs {
				logs += r.Name + ":\n" + r.Log() + "\n"
			}
			t.Fatalf("after 60s the webhook has %d of %d events\n%s", len(ids), n, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
