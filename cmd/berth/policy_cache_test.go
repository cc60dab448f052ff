package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/pullthrough/pullthroughtest"
	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/berth-registry/berth/internal/testpeer"
	"github.com/opencontainers/go-digest"
)

func TestPolicyCacheMirrorsRendersForNodes(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "berth.yaml")
	if err := os.WriteFile(cfgPath, []byte("pullThrough:\n  upstreams:\n  - {prefix: quay.io, url: 'https://quay.io'}\n  - {prefix: docker.io, url: 'https://registry-1.docker.io'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := runBerth(t, "policy", "cache-mirrors", "--serve-config", cfgPath, "--cache", "cache.corp:5000")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: ImageDigestMirrorSet", "kind: ImageTagMirrorSet", "- cache.corp:5000/quay.io\n    source: quay.io", "- cache.corp:5000/docker.io\n    source: docker.io"} {
		if !strings.Contains(out, want) {
			t.Errorf("cache-mirrors output lacks %q:\n%s", want, out)
		}
	}
	sets := filepath.Join(dir, "sets.yaml")
	if err := os.WriteFile(sets, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "node")
	if _, _, err := runBerth(t, "policy", "render", "--out", root, sets); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(root, "etc/containers/registries.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`location = "quay.io"`, `location = "cache.corp:5000/quay.io"`, `pull-from-mirror = "digest-only"`, `pull-from-mirror = "tag-only"`} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("rendered registries.conf lacks %s:\n%s", want, conf)
		}
	}

	if _, _, err := runBerth(t, "policy", "cache-mirrors", "--serve-config", cfgPath, "--cache", "https://cache.corp"); err == nil || !strings.Contains(err.Error(), "without a scheme") {
		t.Errorf("a cache URL with a scheme: %v", err)
	}
	noCache := filepath.Join(dir, "plain.yaml")
	_ = os.WriteFile(noCache, []byte("readOnly: true\n"), 0o644)
	if _, _, err := runBerth(t, "policy", "cache-mirrors", "--serve-config", noCache, "--cache", "c:5000"); err == nil || !strings.Contains(err.Error(), "no pullThrough block") {
		t.Errorf("a config without pullThrough: %v", err)
	}
}

// TestSkopeoThroughRenderedCacheMirrors: the registries.conf berth policy
// render makes from cache-mirrors' IDMS/ITMS sends skopeo to the cache,
// which fills from CNCF Distribution (htpasswd, private CA); digests are
// identical by tag and by digest.
func TestSkopeoThroughRenderedCacheMirrors(t *testing.T) {
	ca := pullthroughtest.NewCA(t)
	dist := pullthroughtest.StartDistribution(t, ca, pullthroughtest.DistributionOptions{})
	img := dist.Client().PushImage(t, "team/app", "v1", pullthroughtest.TarLayer("f", 1<<20))
	pc := &config.PullThrough{Upstreams: []config.Upstream{{
		Prefix: "upstream.test", URL: dist.URL, AuthFile: dist.AuthFile(t, dist.Host), CAFile: ca.File,
		TagTTL: config.Duration(time.Minute), Timeout: config.Duration(2 * time.Second),
	}}}
	cache := servertest.Start(t, servertest.Options{PullThrough: pc})

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "berth.yaml")
	cfgYAML := fmt.Sprintf("pullThrough:\n  upstreams:\n  - prefix: upstream.test\n    url: %s\n    authFile: %s\n    caFile: %s\n", dist.URL, pc.Upstreams[0].AuthFile, ca.File)
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := runBerth(t, "policy", "cache-mirrors", "--serve-config", cfgPath, "--cache", cache)
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "cluster")
	_ = os.MkdirAll(in, 0o755)
	// The cache serves plain HTTP: the cluster's Image config says so.
	image := fmt.Sprintf("apiVersion: config.openshift.io/v1\nkind: Image\nmetadata: {name: cluster}\nspec:\n  registrySources:\n    insecureRegistries: [%q]\n", cache)
	if err := os.WriteFile(filepath.Join(in, "image.yaml"), []byte(image), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "cache-mirrors.yaml"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "node")
	if _, _, err := runBerth(t, "policy", "render", "--out", root, in); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, "etc/containers/registries.conf")
	policyFile := filepath.Join(dir, "policy.json")
	_ = os.WriteFile(policyFile, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644)
	skopeo := testpeer.Need(t, "skopeo")
	for _, ref := range []string{":v1", "@" + string(img.Digest)} {
		layout := filepath.Join(t.TempDir(), "layout")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, skopeo, "--registries-conf", conf, "--policy", policyFile, "copy", "--preserve-digests", "docker://upstream.test/team/app"+ref, "oci:"+layout+":x")
		cmd.Env = append(os.Environ(), "HOME="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		if err != nil {
			rc, _ := os.ReadFile(conf)
			t.Fatalf("skopeo copy %s: %v\n%s\nregistries.conf:\n%s", ref, err, stderr.String(), rc)
		}
		raw, _ := os.ReadFile(filepath.Join(layout, "index.json"))
		var idx struct {
			Manifests []struct{ Digest digest.Digest }
		}
		if err := json.Unmarshal(raw, &idx); err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != img.Digest {
			t.Errorf("skopeo pulled %s through the cache as %s, want %s", ref, raw, img.Digest)
		}
	}
}
