package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestScheduledGC: serve's background loop prunes and collects on its
// interval while serving: an orphan blob goes, a tagged image stays, and
// each run logs one line.
func TestScheduledGC(t *testing.T) {
	for _, storage := range []string{"filesystem", "emptyDir"} {
		t.Run(storage, func(t *testing.T) {
			cfg := &config.Config{ShutdownTimeout: config.PositiveDuration(5 * time.Second)}
			if storage == "emptyDir" {
				cfg.Storage.EmptyDir = &struct{}{}
			} else {
				cfg.Storage.Filesystem = &config.Filesystem{RootDirectory: t.TempDir()}
			}
			cfg.GC = config.GC{Interval: config.PositiveDuration(100 * time.Millisecond), GracePeriod: config.PositiveDuration(200 * time.Millisecond)}
			cfg.Prune = config.Prune{Enabled: true, Interval: config.PositiveDuration(100 * time.Millisecond), KeepYoungerThan: config.PositiveDuration(time.Millisecond)}
			cfg.Defaults()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			srv, err := server.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(&logs, nil)), server.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ctx, ln) }()
			defer func() { cancel(); <-served }()
			base := "http://" + ln.Addr().String()

			orphan := []byte("pushed, never referenced")
			if r := do(t, "POST", base+"/v2/g/blobs/uploads/?digest="+digestOf(orphan), orphan); r.StatusCode != 201 {
				t.Fatalf("orphan push: %d", r.StatusCode)
			}
			cfgBlob := []byte(`{"kept":true}`)
			if r := do(t, "POST", base+"/v2/g/blobs/uploads/?digest="+digestOf(cfgBlob), cfgBlob); r.StatusCode != 201 {
				t.Fatalf("config push: %d", r.StatusCode)
			}
			if r := do(t, "PUT", base+"/v2/g/manifests/v1", manifestFor(cfgBlob), "Content-Type", "application/vnd.oci.image.manifest.v1+json"); r.StatusCode != 201 {
				t.Fatalf("manifest push: %d", r.StatusCode)
			}
			deadline := time.Now().Add(10 * time.Second)
			for do(t, "HEAD", base+"/v2/g/blobs/"+digestOf(orphan), nil).StatusCode != 404 {
				if time.Now().After(deadline) {
					t.Fatalf("orphan blob not collected; log:\n%s", logs.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			for _, p := range []string{"/v2/g/manifests/v1", "/v2/g/blobs/" + digestOf(cfgBlob)} {
				if r := do(t, "GET", base+p, nil); r.StatusCode != 200 {
					t.Fatalf("GET %s after scheduled gc: %d", p, r.StatusCode)
				}
			}
			for _, want := range []string{`"msg":"gc run"`, `"msg":"prune run"`, `"bytesFreed"`} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %s:\n%s", want, logs.String())
				}
			}
		})
	}
}
