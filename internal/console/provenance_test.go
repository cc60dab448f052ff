package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/console"
	"github.com/opencontainers/go-digest"
)

// TestProvenance: a manifest the pull-through cache filled (the
// registry's PutCachedManifest, as internal/pullthrough calls it) shows its
// upstream and when it was cached; one pushed outside every prefix shows
// none, and a prefix matches whole path components only. Retag is not
// offered where the API would refuse it.
func TestProvenance(t *testing.T) {
	base, _, reg := storeConsole(t,
		console.Upstream{Prefix: "quay.io", URL: "https://quay.io"},
		console.Upstream{Prefix: "quay.io/mirror", URL: "https://mirror.example:5000"},
	)
	ctx := context.Background()
	manifest := func(n int) []byte {
		return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.test","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[],"annotations":{"n":"%d"}}`, digest.FromString("{}"), n))
	}
	before := time.Now().Add(-time.Second)
	cached := map[string]digest.Digest{}
	for i, repo := range []string{"quay.io/team/app", "quay.io/mirror/app", "quay.iox/app"} {
		raw := manifest(i)
		d, _, err := reg.PutCachedManifest(ctx, repo, "v1", "application/vnd.oci.image.manifest.v1+json", raw, digest.FromBytes(raw))
		if err != nil {
			t.Fatal(err)
		}
		cached[repo] = d
	}
	c := newClient(t)
	for _, tc := range []struct{ repo, want string }{
		{"quay.io/team/app", "the pull-through upstream https://quay.io (prefix quay.io), at "},
		{"quay.io/mirror/app", "the pull-through upstream https://mirror.example:5000 (prefix quay.io/mirror), at "},
		{"quay.iox/app", ""},
	} {
		status, body := get(t, c, base+"/r/"+tc.repo+"@"+string(cached[tc.repo]))
		if status != 200 {
			t.Fatalf("%s: %d\n%s", tc.repo, status, body)
		}
		// The API refuses pushes under a cache prefix, so no retag is offered.
		if retag := strings.Contains(body, `id="retag"`); retag != (tc.want == "") {
			t.Errorf("%s: retag offered = %v", tc.repo, retag)
		}
		i := strings.Index(body, `<dd id="provenance">`)
		if tc.want == "" {
			if i >= 0 {
				t.Errorf("%s is under no prefix, yet the page shows a provenance", tc.repo)
			}
			continue
		}
		if i < 0 {
			t.Fatalf("%s: no provenance on the page", tc.repo)
		}
		got := strings.Join(strings.Fields(tagRe.ReplaceAllString(body[i:i+strings.Index(body[i:], "</dd>")], "")), " ")
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: provenance %q, want it to start %q", tc.repo, got, tc.want)
		}
		at, err := time.Parse("2006-01-02 15:04:05 UTC", strings.TrimPrefix(got, tc.want))
		if err != nil || at.Before(before.Truncate(time.Second)) || at.After(time.Now()) {
			t.Errorf("%s: cached at %q (%v), want the time of the fill", tc.repo, strings.TrimPrefix(got, tc.want), err)
		}
	}
}
