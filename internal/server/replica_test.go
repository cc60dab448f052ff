package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"github.com/berth-registry/berth/conformance"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/berth-registry/berth/internal/testpeer"
)

// TestReplicas is the scale-out shape on one machine: two berth serve
// replicas sharing one PostgreSQL database, one S3 bucket on a real MinIO
// and one httpSecret, as behind a load balancer that sends each request
// anywhere. An upload begun on one replica is finished on the other, what
// one replica stores the other serves, and the whole conformance suite
// passes against a replica with PostgreSQL metadata.
func TestReplicas(t *testing.T) {
	pg := testpeer.StartPostgres(t)
	minio := testpeer.StartMinIO(t)
	t.Setenv("REGISTRY_STORAGE_S3_ACCESSKEY", minio.AccessKey)
	t.Setenv("REGISTRY_STORAGE_S3_SECRETKEY", minio.SecretKey)
	t.Setenv(config.MetadataDSNEnv, "") // the DSN below, not the caller's
	opts := servertest.Options{
		S3:          &config.S3{Bucket: "berth-replicas", RegionEndpoint: minio.Endpoint},
		MetadataDSN: pg.DSN,
		HTTPSecret:  "shared-between-replicas",
	}
	a := "http://" + servertest.Start(t, opts)
	b := "http://" + servertest.Start(t, opts)

	// next turns an upload's Location into a URL on replica base.
	next := func(t *testing.T, base string, resp *http.Response, want int) string {
		t.Helper()
		if resp.StatusCode != want {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s %s: %d, want %d: %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, want, body)
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || loc.Path == "" {
			t.Fatalf("bad Location %q", resp.Header.Get("Location"))
		}
		return base + loc.RequestURI()
	}

	layer := bytes.Repeat([]byte("replicated layer "), 64<<10) // ~1 MiB
	half := len(layer) / 2
	t.Run("chunked upload across replicas", func(t *testing.T) {
		loc := next(t, a, do(t, "POST", a+"/v2/team/app/blobs/uploads/", nil), http.StatusAccepted)
		loc = next(t, b, do(t, "PATCH", loc, layer[:half], "Content-Type", "application/octet-stream",
			"Content-Range", fmt.Sprintf("0-%d", half-1), "Content-Length", strconv.Itoa(half)), http.StatusAccepted)
		loc = next(t, b, do(t, "PATCH", loc, layer[half:], "Content-Type", "application/octet-stream",
			"Content-Range", fmt.Sprintf("%d-%d", half, len(layer)-1), "Content-Length", strconv.Itoa(len(layer)-half)), http.StatusAccepted)
		sep := "?"
		if u, _ := url.Parse(loc); u.RawQuery != "" {
			sep = "&"
		}
		resp := do(t, "PUT", loc+sep+"digest="+url.QueryEscape(digestOf(layer)), nil)
		if resp.StatusCode != http.StatusCreated {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("PUT on replica B: %d %s", resp.StatusCode, body)
		}
		for _, base := range []string{a, b} {
			resp := do(t, "GET", base+"/v2/team/app/blobs/"+digestOf(layer), nil)
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, layer) {
				t.Fatalf("GET blob from %s: %d, %d bytes", base, resp.StatusCode, len(got))
			}
		}
	})

	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	man := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
		digestOf(cfg), len(cfg), digestOf(layer), len(layer)))
	t.Run("manifest pushed on A, pulled on B", func(t *testing.T) {
		if resp := do(t, "POST", a+"/v2/team/app/blobs/uploads/?digest="+digestOf(cfg), cfg); resp.StatusCode != http.StatusCreated {
			t.Fatalf("config push: %d", resp.StatusCode)
		}
		resp := do(t, "PUT", a+"/v2/team/app/manifests/v1", man, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if resp.StatusCode != http.StatusCreated {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("manifest PUT on A: %d %s", resp.StatusCode, body)
		}
		for _, ref := range []string{"v1", digestOf(man)} {
			resp := do(t, "GET", b+"/v2/team/app/manifests/"+ref, nil, "Accept", "application/vnd.oci.image.manifest.v1+json")
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, man) || resp.Header.Get("Docker-Content-Digest") != digestOf(man) {
				t.Fatalf("GET manifest %s on B: %d %q", ref, resp.StatusCode, got)
			}
		}
		resp = do(t, "GET", b+"/v2/team/app/tags/list", nil)
		var list struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || list.Name != "team/app" || !slices.Equal(list.Tags, []string{"v1"}) {
			t.Fatalf("tags list on B = %+v (%v)", list, err)
		}
	})

	t.Run("conformance on a PostgreSQL replica", func(t *testing.T) {
		conformance.Run(t, conformance.Config{BaseURL: a})
	})
}
