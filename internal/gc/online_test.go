package gc_test

import (
	"bytes"
	"context"
	"fmt"
	"github.com/berth-registry/berth/internal/gc"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/opencontainers/go-digest"
)

// TestOnline pushes, re-pushes and deletes images against a live server
// while gc runs over and over on the same root through its own stores (as
// `berth gc` does beside `berth serve`). The grace period (1s) outlasts
// any single push here, which is the promise: every acknowledged image that
// was not deleted stays pullable, and garbage is still collected.
func TestOnline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a few seconds")
	}
	const onlineGrace = time.Second
	e := newEnv(t)
	base := "http://" + servertest.Start(t, servertest.Options{Root: e.root})
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, url, ct string, body []byte) (*http.Response, error) {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	putBlob := func(repo string, b []byte) error {
		resp, err := do("POST", fmt.Sprintf("%s/v2/%s/blobs/uploads/?digest=%s", base, repo, digest.FromBytes(b)), "application/octet-stream", b)
		if err != nil {
			return err
		}
		if resp.StatusCode != 201 {
			return fmt.Errorf("blob push: %d", resp.StatusCode)
		}
		return nil
	}
	type image struct{ repo, ref string }

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var (
		mu    sync.Mutex
		acked = map[image][]digest.Digest{} // image -> its blobs
		wg    sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("online/%d", w%2) // two pushers share each repository
			var prev string
			for i := 0; ctx.Err() == nil; i++ {
				cfg := []byte(fmt.Sprintf("config %d/%d", w, i))
				layer := []byte(fmt.Sprintf("layer %d/%d", w, i%3)) // re-pushed every third image
				shared := []byte("shared base layer")
				var err error
				for _, b := range [][]byte{cfg, layer, shared} {
					if err = putBlob(repo, b); err != nil {
						break
					}
				}
				if err != nil {
					t.Errorf("push %d/%d: %v", w, i, err)
					return
				}
				m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d},{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
					digest.FromBytes(cfg), len(cfg), digest.FromBytes(layer), len(layer), digest.FromBytes(shared), len(shared)))
				md := digest.FromBytes(m)
				resp, err := do("PUT", fmt.Sprintf("%s/v2/%s/manifests/%s", base, repo, md), "application/vnd.oci.image.manifest.v1+json", m)
				if err != nil || resp.StatusCode != 201 {
					t.Errorf("manifest push %d/%d: %v %v", w, i, resp, err)
					return
				}
				mu.Lock()
				acked[image{repo, string(md)}] = []digest.Digest{md, digest.FromBytes(cfg), digest.FromBytes(layer), digest.FromBytes(shared)}
				mu.Unlock()
				// Every other image is deleted again: garbage for gc.
				if i%2 == 1 && prev != "" {
					if resp, err := do("DELETE", fmt.Sprintf("%s/v2/%s/manifests/%s", base, repo, prev), "", nil); err != nil || resp.StatusCode != 202 {
						t.Errorf("delete: %v %v", resp, err)
						return
					}
					mu.Lock()
					delete(acked, image{repo, prev})
					mu.Unlock()
				}
				prev = string(md)
			}
		}()
	}
	var runs, deleted, links int
	for ctx.Err() == nil {
		res, err := gc.Collect(context.Background(), e.blobs, e.meta, gc.Options{Grace: onlineGrace})
		if err != nil {
			t.Fatal(err)
		}
		runs++
		deleted += len(res.Deleted)
		links += len(res.Links)
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	time.Sleep(2 * onlineGrace)
	res, err := gc.Collect(context.Background(), e.blobs, e.meta, gc.Options{Grace: onlineGrace})
	if err != nil {
		t.Fatal(err)
	}
	deleted += len(res.Deleted)
	links += len(res.Links)
	t.Logf("%d images acknowledged and kept; %d gc runs removed %d links and %d blobs", len(acked), runs+1, links, deleted)
	if deleted == 0 || links == 0 || len(acked) == 0 {
		t.Fatalf("nothing exercised: %d kept images, %d links, %d blobs removed", len(acked), links, deleted)
	}
	for img, blobs := range acked {
		for i, d := range blobs {
			kind := "blobs"
			if i == 0 {
				kind = "manifests"
			}
			resp, err := http.Get(fmt.Sprintf("%s/v2/%s/%s/%s", base, img.repo, kind, d))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || digest.FromBytes(got) != d {
				t.Errorf("acknowledged %s@%s: %s %s = %d", img.repo, img.ref, kind, d, resp.StatusCode)
			}
		}
	}
}
