package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/opencontainers/go-digest"
)

func runGC(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, _, err := runBerth(t, args...)
	return out, err
}

func gcPush(t *testing.T, method, url, ct string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("%s %s = %d", method, url, resp.StatusCode)
	}
}

// pushRevision pushes an image with a unique config under repo:tag.
func gcPushRevision(t *testing.T, base, repo, tag, config string) digest.Digest {
	t.Helper()
	gcPush(t, "POST", fmt.Sprintf("%s/v2/%s/blobs/uploads/?digest=%s", base, repo, digest.FromString(config)), "application/octet-stream", []byte(config))
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, digest.FromString(config), len(config))
	gcPush(t, "PUT", fmt.Sprintf("%s/v2/%s/manifests/%s", base, repo, tag), "application/vnd.oci.image.manifest.v1+json", []byte(m))
	return digest.FromString(m)
}

func gcStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestGCAndPruneCommands runs berth prune and berth gc on the root of a
// live berth serve: dry runs change nothing, real runs delete the old
// revision and its bytes, and the kept ones still pull.
func TestGCAndPruneCommands(t *testing.T) {
	root := t.TempDir()
	base := "http://" + servertest.Start(t, servertest.Options{Root: root})
	var revs []digest.Digest
	for i := range 3 {
		revs = append(revs, gcPushRevision(t, base, "app", "latest", fmt.Sprintf("config %d", i)))
	}
	time.Sleep(100 * time.Millisecond)

	prune := []string{"prune", "--root", root, "--keep-tag-revisions", "2", "--keep-younger-than", "50ms"}
	out, err := runGC(t, append(prune, "--dry-run", "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		DryRun  bool
		Deleted []struct{ Digest digest.Digest }
		Kept    int
	}
	if err := json.Unmarshal([]byte(out), &pr); err != nil || !pr.DryRun || len(pr.Deleted) != 1 || pr.Deleted[0].Digest != revs[0] || pr.Kept != 2 {
		t.Fatalf("prune --dry-run -o json = %s (%v)", out, err)
	}
	if code := gcStatus(t, base+"/v2/app/manifests/"+string(revs[0])); code != 200 {
		t.Fatalf("dry run deleted: %d", code)
	}
	if out, err = runGC(t, prune...); err != nil || !strings.Contains(out, "prune deleted 1 manifests; kept 2") {
		t.Fatalf("prune = %q, %v", out, err)
	}
	if code := gcStatus(t, base+"/v2/app/manifests/"+string(revs[0])); code != 404 {
		t.Fatalf("pruned revision still served: %d", code)
	}

	gcArgs := []string{"gc", "--root", root, "--grace", "50ms"}
	if out, err = runGC(t, append(gcArgs, "--dry-run")...); err != nil || !strings.Contains(out, "gc would remove 1 links and 2 blobs") {
		t.Fatalf("gc --dry-run = %q, %v", out, err)
	}
	cfgPath := filepath.Join(t.TempDir(), "registry.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("storage:\n  filesystem: {rootDirectory: %q}\ngc: {gracePeriod: 50ms}\n", root)), 0o644)
	out, err = runGC(t, "gc", "--config", cfgPath, "-o", "json")
	var res struct {
		Links, Deleted []struct{ Digest digest.Digest }
		BytesFreed     int64
	}
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || len(res.Links) != 1 || len(res.Deleted) != 2 || res.BytesFreed == 0 {
		t.Fatalf("gc --config = %s, %v", out, err)
	}
	if code := gcStatus(t, base+"/v2/app/blobs/"+string(digest.FromString("config 0"))); code != 404 {
		t.Fatalf("collected blob still served: %d", code)
	}
	for i := 1; i < 3; i++ {
		if code := gcStatus(t, base+"/v2/app/manifests/"+string(revs[i])); code != 200 {
			t.Errorf("kept revision %d: %d", i, code)
		}
		if code := gcStatus(t, base+"/v2/app/blobs/"+string(digest.FromString(fmt.Sprint("config ", i)))); code != 200 {
			t.Errorf("kept revision %d's config: %d", i, code)
		}
	}
	if out, err = runGC(t, gcArgs...); err != nil || !strings.Contains(out, "gc removed 0 links and 0 blobs") {
		t.Fatalf("second gc = %q, %v", out, err)
	}
}

func TestGCCommandErrors(t *testing.T) {
	dir := t.TempDir()
	mem := filepath.Join(dir, "mem.yaml")
	os.WriteFile(mem, []byte("storage:\n  emptyDir: {}\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"gc", "--root", dir, "--grace", "0s"}, "--grace"},
		{[]string{"gc", "--config", mem}, "storage is emptyDir"},
		{[]string{"gc", "--root", dir, "--config", mem}, "--root and --config"},
		{[]string{"prune", "--root", dir, "--keep-tag-revisions", "0"}, "--keep-tag-revisions"},
		{[]string{"prune", "--root", dir, "-o", "yaml"}, "--output"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if _, err := runGC(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to mention %s", err, tc.want)
			}
		})
	}
}
