package storage_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/internal/server/servertest"
)

// TestServerExportsStorageMetrics pushes a blob into a real berth serve and
// scrapes its metrics endpoint for the storage series the push made.
func TestServerExportsStorageMetrics(t *testing.T) {
	root := t.TempDir()
	base := "http://" + servertest.Start(t, servertest.Options{Root: root})
	data := []byte("a layer, measured")
	d := digest.FromBytes(data)
	resp, err := http.Post(base+"/v2/metrics/test/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload = %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = base + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest="+d.String(), bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT upload = %d", resp.StatusCode)
	}

	// Bytes lost under the registry's feet: the pull's Open fails in the
	// store, which is what the errors series counts.
	if err := os.Remove(filepath.Join(root, "blobs", "sha256", d.Encoded()[:2], d.Encoded())); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(base + "/v2/metrics/test/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("a blob whose bytes are gone was served")
	}

	resp, err = http.Get(base + "/extensions/v2/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET metrics = %d: %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		"# TYPE imageregistry_storage_duration_seconds histogram",
		`imageregistry_storage_duration_seconds_count{operation="StartUpload"} 1`,
		`imageregistry_storage_duration_seconds_count{operation="Append"} 1`,
		`imageregistry_storage_duration_seconds_count{operation="Commit"} 1`,
		"# TYPE imageregistry_storage_errors_total counter",
		`imageregistry_storage_errors_total{code="PATH_NOT_FOUND",operation="Open"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
