// Package servertest starts an in-process `berth serve` on a loopback port for
// tests in other packages (conformance, client round trips, mirroring).
package servertest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server"
)

// Options tweak the test server; the zero value is the embedded default
// (filesystem storage under t.TempDir(), deletes enabled).
type Options struct {
	// Root is the storage directory; empty means a fresh t.TempDir().
	Root string
	// ReadOnly refuses pushes and deletes.
	ReadOnly bool
	// Memory uses the emptyDir (in-memory) storage instead of a directory.
	Memory bool
	// S3 stores blobs in this bucket instead (credentials from the
	// environment, as berth serve reads them); metadata goes under Root.
	S3 *config.S3
	// GCS stores blobs in this Google Cloud Storage bucket instead (an
	// emulator through STORAGE_EMULATOR_HOST); metadata goes under Root.
	GCS *config.GCS
	// Azure stores blobs in this Azure Blob container instead (the key
	// from REGISTRY_STORAGE_AZURE_ACCOUNTKEY); metadata goes under Root.
	Azure *config.Azure
	// Log receives the server's request log; nil discards it.
	Log io.Writer
	// Auth turns on access control (nil: anonymous and open).
	Auth *config.Auth
	// MetadataDSN puts the metadata in this PostgreSQL database instead of
	// SQLite; replicas given the same DSN (and object store) share state.
	MetadataDSN string
	// HTTPSecret signs upload session ids; replicas must share it.
	HTTPSecret string
	// PullThrough makes the server a caching mirror of upstreams.
	PullThrough *config.PullThrough
	// Imports are scheduled tag imports.
	Imports []config.Import
}

// Start runs berth serve until the test ends and returns its host:port
// (plain HTTP).
func Start(t testing.TB, opts Options) string {
	t.Helper()
	cfg := &config.Config{ReadOnly: opts.ReadOnly, ShutdownTimeout: config.PositiveDuration(5 * time.Second), Auth: opts.Auth, MetadataDatabase: opts.MetadataDSN, HTTPSecret: opts.HTTPSecret, PullThrough: opts.PullThrough, Imports: opts.Imports}
	switch {
	case opts.Memory:
		cfg.Storage.EmptyDir = &struct{}{}
	case opts.S3 != nil, opts.GCS != nil, opts.Azure != nil:
		cfg.Storage.S3, cfg.Storage.GCS, cfg.Storage.Azure = opts.S3, opts.GCS, opts.Azure
		cfg.MetadataDirectory = opts.Root
		if cfg.MetadataDirectory == "" {
			cfg.MetadataDirectory = t.TempDir()
		}
	default:
		root := opts.Root
		if root == "" {
			root = t.TempDir()
		}
		cfg.Storage.Filesystem = &config.Filesystem{RootDirectory: root}
	}
	cfg.Defaults()
	cfg.ReadEnv(os.Getenv)
	w := opts.Log
	if w == nil {
		w = io.Discard
	}
	log := slog.New(slog.NewTextHandler(w, nil))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, log, server.Options{})
	if err != nil {
		cancel()
		t.Fatalf("servertest: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return ln.Addr().String()
}
