package imageset

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/mirrortest"
	"github.com/berth-registry/berth/internal/policy"
)

// TestApplyFlow drives a plan through package mirror as `berth mirror
// apply` will: an ISC with a release channel (graph served on loopback)
// and additional images, planned, turned into jobs by mirror's own
// planners, copied between two loopback registries; every image is then at
// the destination oc-mirror v2 would use, with its source's digest, and
// the mirror sets written from the jobs are valid cluster input.
func TestApplyFlow(t *testing.T) {
	ctx := context.Background()
	src, dst := mirrortest.StartRegistry(t), mirrortest.StartRegistry(t)
	var rels []*mirrortest.Release
	for i, v := range []string{"4.16.1", "4.16.2"} {
		r, err := mirrortest.PushRelease(ctx, src, mirrortest.ReleaseSpec{Version: v, Components: 3, LayersPerImage: 1, LayerSize: 512, Seed: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		rels = append(rels, r)
	}
	graph := &Graph{Edges: [][2]int{{0, 1}}}
	for _, r := range rels {
		graph.Nodes = append(graph.Nodes, GraphNode{Version: r.Version, Payload: src + "/openshift-release-dev/ocp-release@" + r.Digest})
	}
	gs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("channel") != "stable-4.16" || r.URL.Query().Get("arch") != "amd64" {
			_, _ = w.Write([]byte(`{"nodes":[],"edges":[]}`))
			return
		}
		_ = json.NewEncoder(w).Encode(graph)
	}))
	defer gs.Close()
	toolDigest, err := mirrortest.PushImage(src+"/team/tool:1.2", 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mirrortest.PushImage(src+"/team/debug:1", 8); err != nil {
		t.Fatal(err)
	}

	isc := readISCString(t, head+`mirror:
  platform:
    channels:
    - name: stable-4.16
      minVersion: 4.16.1
  additionalImages:
  - name: `+src+`/team/tool:1.2
  - name: `+src+`/team/tool@`+toolDigest+`
  - name: `+src+`/team/debug:1
  blockedImages:
  - name: /debug
`)
	plan, err := NewPlan(ctx, isc, &GraphClient{URL: gs.URL, HTTP: gs.Client()}, PlanOptions{Target: dst + "/mirror"})
	if err != nil {
		t.Fatal(err)
	}
	client, err := mirror.NewClient(mirror.ClientOptions{Insecure: map[string]bool{src: true, dst: true}})
	if err != nil {
		t.Fatal(err)
	}
	var releaseJobs []mirror.Job
	for _, r := range plan.Releases {
		_, jobs, err := client.PlanReleaseMirror(ctx, r.ReleaseRequest())
		if err != nil {
			t.Fatal(err)
		}
		releaseJobs = append(releaseJobs, jobs...)
	}
	imageJobs, err := client.PlanImageMirror(mirror.ImageRequest{Mappings: plan.ImageMappings(), File: isc.File()})
	if err != nil {
		t.Fatal(err)
	}
	sum := mirror.NewCopier(mirror.Options{Jobs: 2}).Run(ctx, append(append([]mirror.Job(nil), releaseJobs...), imageJobs...))
	if err := sum.Err(); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{} // destination → digest it must have
	for _, r := range rels {
		want[dst+"/mirror/openshift/release-images:"+r.Version+"-x86_64"] = r.Digest
		for _, c := range r.Components {
			want[dst+"/mirror/openshift/release:"+r.Version+"-x86_64-"+c.Name] = c.Digest
		}
	}
	want[dst+"/mirror/team/tool:1.2"] = toolDigest
	want[dst+"/mirror/team/tool:"+strings.Replace(toolDigest, ":", "-", 1)] = toolDigest
	for ref, d := range want {
		got, err := mirrortest.HeadDigest(ref)
		if err != nil || got != d {
			t.Errorf("%s: %s, %v; want %s", ref, got, err, d)
		}
	}
	if _, err := mirrortest.HeadDigest(dst + "/mirror/team/debug:1"); err == nil {
		t.Error("a blocked image was mirrored")
	}
	if len(sum.Results) != len(want) {
		t.Errorf("%d images copied, want %d", len(sum.Results), len(want))
	}

	// The mirror sets of what was copied, per category, parse and validate
	// as the cluster's inputs.
	relDigest, relTag, _ := mirror.JobMirrorSets(releaseJobs)
	imgDigest, imgTag, _ := mirror.JobMirrorSets(imageJobs)
	files, err := ClusterResources{
		Release: MirrorSets{Digest: relDigest, Tag: relTag},
		Generic: MirrorSets{Digest: imgDigest, Tag: imgTag},
	}.Files()
	if err != nil {
		t.Fatal(err)
	}
	idms := string(files[DigestMirrorSetFile])
	for _, s := range []string{"name: idms-release-0", "source: " + src + "/openshift-release-dev/ocp-release", "- " + dst + "/mirror/openshift/release-images", "name: idms-generic-0", "- " + dst + "/mirror/team/tool"} {
		if !strings.Contains(idms, s) {
			t.Errorf("%s lacks %q:\n%s", DigestMirrorSetFile, s, idms)
		}
	}
	for name, data := range files {
		var in policy.Inputs
		if ps := in.Parse(name, data); len(ps) > 0 {
			t.Errorf("%s: %v", name, ps)
		}
		if ps := policy.Validate(&in); len(ps) > 0 {
			t.Errorf("%s: %v", name, ps)
		}
	}
}
