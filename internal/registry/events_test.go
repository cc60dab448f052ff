package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/storage"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
)

// TestChangesQueueTheirEvents checks which event each change queues, and
// that a refused change queues none.
func TestChangesQueueTheirEvents(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	blobs, err := storage.NewFilesystem(dir)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := metadata.OpenSQLite(ctx, filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	promReg := prometheus.NewRegistry()
	n := events.New(config.Notifications{Pulls: true, Endpoints: []config.Endpoint{{Name: "hook", URL: "http://hook.example"}}}, "127.0.0.1:5000", events.NewMetrics(promReg))
	r := New(blobs, meta, Options{Notifier: n})

	layer := []byte("layer bytes")
	ld := digest.FromBytes(layer)
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd := digest.FromBytes(cfg)
	man := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`, cd, len(cfg), ld, len(layer)))
	md := digest.FromBytes(man)

	// Refused: the manifest names blobs the repository lacks; the digest
	// of a blob is wrong.
	if _, _, err := r.PutManifest(ctx, "a", "v1", "application/vnd.oci.image.manifest.v1+json", bytes.NewReader(man)); err == nil {
		t.Fatal("a manifest without its blobs was accepted")
	}
	if err := r.PutBlob(ctx, "a", digest.FromString("other"), bytes.NewReader(layer)); err == nil {
		t.Fatal("a blob with a wrong digest was accepted")
	}
	steps := []struct {
		name string
		do   func() error
		want string // action target.repository target.tag target.digest target.mediaType from
	}{
		{"layer push", func() error { return r.PutBlob(ctx, "a", ld, bytes.NewReader(layer)) }, "push a  " + ld.String() + " application/octet-stream "},
		{"config push", func() error { return r.PutBlob(ctx, "a", cd, bytes.NewReader(cfg)) }, "push a  " + cd.String() + " application/octet-stream "},
		{"manifest push", func() error {
			_, _, err := r.PutManifest(ctx, "a", "v1", "application/vnd.oci.image.manifest.v1+json", bytes.NewReader(man))
			return err
		}, "push a v1 " + md.String() + " application/vnd.oci.image.manifest.v1+json "},
		{"mount", func() error {
			ok, err := r.MountBlob(ctx, "b", "a", ld)
			if !ok && err == nil {
				err = fmt.Errorf("not mounted")
			}
			return err
		}, "mount b  " + ld.String() + " application/octet-stream a"},
		{"mount of a blob the source lacks (no event)", func() error {
			if ok, err := r.MountBlob(ctx, "b", "c", ld); ok || err != nil {
				return fmt.Errorf("mounted from a repository without the blob: %v", err)
			}
			return nil
		}, ""},
		{"pull", func() error {
			r.Pulled(ctx, events.Change{Repo: "a", Digest: md, MediaType: "application/vnd.oci.image.manifest.v1+json", Tag: "v1"})
			return nil
		}, "pull a v1 " + md.String() + " application/vnd.oci.image.manifest.v1+json "},
		{"tag delete", func() error { return r.DeleteManifest(ctx, "a", "v1") }, "delete a v1   "},
		{"tag delete again (refused, no event)", func() error {
			if r.DeleteManifest(ctx, "a", "v1") == nil {
				return fmt.Errorf("deleted a deleted tag")
			}
			return nil
		}, ""},
		{"manifest delete", func() error { return r.DeleteManifest(ctx, "a", md.String()) }, "delete a  " + md.String() + "  "},
		{"blob delete", func() error { return r.DeleteBlob(ctx, "b", ld) }, "delete b  " + ld.String() + " application/octet-stream "},
	}
	var want []string
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if s.want != "" {
			want = append(want, s.want)
		}
	}
	q, err := meta.PendingEvents(ctx, "hook", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range q {
		var ev events.Event
		if err := json.Unmarshal(e.Body, &ev); err != nil {
			t.Fatal(err)
		}
		tg := ev.Target
		got = append(got, strings.Join([]string{ev.Action, tg.Repository, tg.Tag, tg.Digest.String(), tg.MediaType, tg.FromRepository}, " "))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("queued events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The Events counter counts what was queued, not what refused
	// changes would have queued.
	mfs, err := promReg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "registry_notifications_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "type" && lp.GetValue() == "Events" {
					counted += m.GetCounter().GetValue()
				}
			}
		}
	}
	if counted != float64(len(want)) {
		t.Fatalf("registry_notifications_events_total{type=Events} = %v, want %d", counted, len(want))
	}
}
