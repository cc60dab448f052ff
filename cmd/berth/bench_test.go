package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/bench"
	"github.com/berth-registry/berth/internal/testpeer"
)

// TestBenchCommandAgainstDistribution runs `berth bench` with a tiny workload
// against CNCF Distribution, saves its JSON and compares it with itself.
func TestBenchCommandAgainstDistribution(t *testing.T) {
	addr := testpeer.StartDistribution(t)
	dir := t.TempDir()
	out, progress, err := runBerth(t, "bench", "http://"+addr,
		"--blob-size", "4MiB", "--chunk-size", "1MiB", "--images", "3", "--duration", "1s",
		"--manifest-workers", "8", "--ceiling-dir", dir, "--output", "json", "--seed", "42")
	if err != nil {
		t.Fatalf("berth bench: %v\n%s", err, progress)
	}
	if !strings.Contains(progress, "bench: blob push chunked") {
		t.Errorf("no progress on stderr:\n%s", progress)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--output json: %v\n%s", err, out)
	}
	if rep.Seed != 42 || rep.Workload.BlobSizeBytes != 4<<20 || rep.Workload.ChunkSizeBytes != 1<<20 || rep.Workload.Images != 3 {
		t.Errorf("workload not as flagged: seed %d, %+v", rep.Seed, rep.Workload)
	}
	for _, m := range rep.Metrics() {
		if m.Value <= 0 {
			t.Errorf("%s = %g, want more than 0", m.Name, m.Value)
		}
	}
	if !rep.BlobPull.DigestOK || !rep.ImagesPull.DigestOK || !rep.ManifestGet.DigestOK {
		t.Errorf("digests did not match: %+v %+v %+v", rep.BlobPull, rep.ImagesPull, rep.ManifestGet)
	}
	// The stable JSON names scripts read.
	for _, key := range []string{`"blob_push_monolithic"`, `"mib_s"`, `"images_pull"`, `"per_s"`, `"p99_ms"`, `"manifest_get"`, `"sha256_mib_s"`, `"durable_write_mib_s"`, `"loopback_tcp_mib_s"`, `"digest_ok"`} {
		if !strings.Contains(out, key) {
			t.Errorf("JSON lacks %s", key)
		}
	}

	saved := filepath.Join(dir, "r.json")
	if err := os.WriteFile(saved, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	cmp, _, err := runBerth(t, "bench", "compare", "a="+saved+","+saved, "b="+saved)
	if err != nil {
		t.Fatalf("berth bench compare: %v", err)
	}
	if !strings.Contains(cmp, "a ×2, b ×1") || !strings.Contains(cmp, "1.00×") {
		t.Errorf("compare output:\n%s", cmp)
	}
}

func TestBenchCommandTable(t *testing.T) {
	addr := testpeer.StartDistribution(t)
	out, _, err := runBerth(t, "bench", addr, "--blob-size", "1MiB", "--images", "1", "--duration", "200ms", "--ceiling-dir", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ceiling durable write", "blob push monolithic", "images pull", "manifest get", "MiB/s", "img/s", "req/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchCommandBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no URL", []string{"bench"}, "accepts 1 arg"},
		{"bad size", []string{"bench", "x:1", "--blob-size", "big"}, `size "big"`},
		{"bad output", []string{"bench", "x:1", "--output", "yaml"}, `--output "yaml"`},
		{"bad URL", []string{"bench", "ftp://x"}, `scheme "ftp"`},
		{"compare without label", []string{"bench", "compare", "file.json"}, "LABEL=FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runBerth(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("berth %v = %v; want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}
