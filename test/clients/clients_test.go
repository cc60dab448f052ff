// Package clients_test round-trips images through the real registry clients
// (crane, regctl, skopeo, podman, regsync) against berth serve and, where the
// feature exists there, CNCF Distribution, and requires digest equality at
// every step: a client that silently rewrote a manifest would fail here.
package clients_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/berth-registry/berth/internal/testpeer"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// target is a registry the round trips run against.
type target struct {
	name string
	// referrers: the registry serves the OCI referrers API.
	referrers bool
	start     func(t *testing.T) string
}

var targets = []target{
	{name: "berth", referrers: true, start: func(t *testing.T) string {
		return servertest.Start(t, servertest.Options{})
	}},
	{name: "distribution", start: func(t *testing.T) string {
		return testpeer.StartDistribution(t)
	}},
}

// eachTarget runs fn against a fresh instance of every target (only those
// with a referrers API when needReferrers).
func eachTarget(t *testing.T, needReferrers bool, fn func(t *testing.T, host string)) {
	t.Helper()
	for _, tg := range targets {
		if needReferrers && !tg.referrers {
			continue
		}
		t.Run(tg.name, func(t *testing.T) {
			fn(t, tg.start(t))
		})
	}
}

// run executes a peer with args and returns its stdout, failing the test
// (with stderr) when it exits non-zero. env entries are added to the
// environment.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(t, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// runErr is run that returns the failure instead.
func runErr(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	bin := testpeer.Need(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w\nstderr:\n%s", err, stderr.String())
	}
	return stdout.String(), nil
}

// acceptAll is what a client that understands every manifest type sends.
const acceptAll = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
	"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

// registryManifest reads a manifest straight over HTTP, independent of any
// client, and returns its bytes and the registry's digest header.
func registryManifest(t *testing.T, host, repo, ref string) ([]byte, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+repo+"/manifests/"+ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", acceptAll)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/%s:%s → %d %s", host, repo, ref, resp.StatusCode, buf.String())
	}
	return buf.Bytes(), resp.Header.Get("Docker-Content-Digest")
}

// wantDigest requires that the registry serves a manifest under ref whose
// bytes hash to want.
func wantDigest(t *testing.T, host, repo, ref string, want v1.Hash) {
	t.Helper()
	raw, hdr := registryManifest(t, host, repo, ref)
	got, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%s/%s:%s serves a manifest with digest %s, want %s", host, repo, ref, got, want)
	}
	if hdr != want.String() {
		t.Errorf("%s/%s:%s Docker-Content-Digest %s, want %s", host, repo, ref, hdr, want)
	}
}

// registryTags lists a repository's tags over HTTP.
func registryTags(t *testing.T, host, repo string) []string {
	t.Helper()
	resp, err := http.Get("http://" + host + "/v2/" + repo + "/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tl struct {
		Tags []string `json:"tags"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tags/list %s/%s → %d", host, repo, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tl); err != nil {
		t.Fatal(err)
	}
	slices.Sort(tl.Tags)
	return tl.Tags
}

// ociImage builds a small random OCI image (two layers, a platform in its
// config) whose digest no other test shares.
func ociImage(t *testing.T, arch string) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for range 2 {
		l, err := random.Layer(2048, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// ociIndex builds a multi-platform OCI index of fresh images.
func ociIndex(t *testing.T, archs ...string) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range archs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: plainDescriptor{ociImage(t, arch)},
			Descriptor: v1.Descriptor{
				Platform: &v1.Platform{OS: "linux", Architecture: arch},
			},
		})
	}
	return idx
}

// plainDescriptor keeps go-containerregistry from adding an artifactType to
// the image's descriptor in an index: image builders do not write one, and
// clients built on older image-spec types (skopeo 1.9) drop the field and
// then cannot preserve the index's digest.
type plainDescriptor struct{ v1.Image }

func (plainDescriptor) ArtifactType() (string, error) { return "", nil }

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// randomTag returns a fresh name component.
func randomTag() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// refName is the annotation OCI layouts use for a tag.
const refName = "org.opencontainers.image.ref.name"

// writeLayout writes images and indexes to a new OCI layout under dir, each
// tagged with its ref name.
func writeLayout(t *testing.T, dir string, imgs map[string]v1.Image, idxs map[string]v1.ImageIndex) string {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for tag, img := range imgs {
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{refName: tag})); err != nil {
			t.Fatal(err)
		}
	}
	for tag, idx := range idxs {
		if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{refName: tag})); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// layoutDigest returns the digest a layout's index.json records for tag (or
// for its only entry when tag is empty),
// after checking that every blob the manifest names is in the layout and
// hashes right.
func layoutDigest(t *testing.T, dir, tag string) v1.Hash {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if tag == "" && len(im.Manifests) != 1 {
		t.Fatalf("layout %s has %d entries, want exactly one", dir, len(im.Manifests))
	}
	for _, d := range im.Manifests {
		if tag != "" && d.Annotations[refName] != tag {
			continue
		}
		verifyLayoutBlobs(t, dir, d)
		return d.Digest
	}
	t.Fatalf("layout %s has no manifest tagged %q (index.json: %+v)", dir, tag, im.Manifests)
	return v1.Hash{}
}

// verifyLayoutBlobs walks from a descriptor through the layout's blobs,
// checking each one exists and hashes to its digest.
func verifyLayoutBlobs(t *testing.T, dir string, d v1.Descriptor) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex))
	if err != nil {
		t.Errorf("layout %s lacks blob %s: %v", dir, d.Digest, err)
		return
	}
	got, _, _ := v1.SHA256(bytes.NewReader(b))
	if got != d.Digest {
		t.Errorf("layout blob %s hashes to %s", d.Digest, got)
		return
	}
	switch d.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		var im v1.IndexManifest
		if err := json.Unmarshal(b, &im); err != nil {
			t.Fatal(err)
		}
		for _, c := range im.Manifests {
			verifyLayoutBlobs(t, dir, c)
		}
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		var m v1.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		verifyLayoutBlobs(t, dir, m.Config)
		for _, l := range m.Layers {
			verifyLayoutBlobs(t, dir, l)
		}
	}
}
