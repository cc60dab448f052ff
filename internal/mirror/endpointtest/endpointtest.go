// Package endpointtest is the conformance suite every mirror.Source and
// mirror.Target runs: what the copy engine relies on of a registry and of an
// OCI layout alike (blobs verified on the way in, manifests kept byte for
// byte under tag and digest, indexes keeping their digest, tags that move,
// referrers found by subject). Each implementation's test is one call to
// Run.
package endpointtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"testing"

	"github.com/berth-registry/berth/internal/mirror"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Endpoint is one implementation under test.
type Endpoint struct {
	// Target is written to.
	Target mirror.Target
	// Reopen returns a Source reading what Target wrote, as a later run
	// would see it (a new client, or the layout opened again after the
	// writer's Close).
	Reopen func(t *testing.T) mirror.Source
}

// Features say what an implementation cannot do, so the suite skips only
// those checks (and says so).
type Features struct {
	// NoReferrersAPI: referrers are found by their tags only (a registry
	// without the OCI 1.1 referrers API), so a referrer pushed by digest
	// alone is not listed.
	NoReferrersAPI bool
}

// Run runs every check against fresh endpoints from newEndpoint.
func Run(t *testing.T, f Features, newEndpoint func(t *testing.T) Endpoint) {
	cases := []struct {
		name string
		run  func(t *testing.T, e Endpoint, f Features)
	}{
		{"BlobRoundTrip", blobRoundTrip},
		{"BlobWrongBytesRefused", blobWrongBytes},
		{"BlobWrongSizeRefused", blobWrongSize},
		{"ManifestByTagAndDigest", manifestByTagAndDigest},
		{"UnknownManifest", unknownManifest},
		{"IndexKeepsDigest", indexKeepsDigest},
		{"TagMoves", tagMoves},
		{"Referrers", referrers},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEndpoint(t)
			c.run(t, e, f)
		})
	}
}

const repo = "conformance/app"

func descOf(mt types.MediaType, b []byte) v1.Descriptor {
	sum := sha256.Sum256(b)
	return v1.Descriptor{MediaType: mt, Size: int64(len(b)), Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
}

func putBlob(t *testing.T, tg mirror.Target, b []byte) v1.Descriptor {
	t.Helper()
	d := descOf(types.OCILayer, b)
	if err := tg.PutBlob(context.Background(), repo, d, bytes.NewReader(b)); err != nil {
		t.Fatalf("PutBlob %s: %v", d.Digest, err)
	}
	return d
}

// image pushes a config and a layer and returns an OCI image manifest
// over them (not yet pushed). seed makes the content unique.
func image(t *testing.T, tg mirror.Target, seed string, extra map[string]any) *mirror.Manifest {
	t.Helper()
	cfg := putBlob(t, tg, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"seed":"`+seed+`"}}}`))
	cfg.MediaType = types.OCIConfigJSON
	layer := putBlob(t, tg, []byte("layer bytes of "+seed))
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIManifestSchema1,
		"config":        cfg,
		"layers":        []v1.Descriptor{layer},
	}
	for k, v := range extra {
		m[k] = v
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	man, err := mirror.NewManifest(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	return man
}

func putManifest(t *testing.T, tg mirror.Target, ref string, m *mirror.Manifest) {
	t.Helper()
	if err := tg.PutManifest(context.Background(), repo, ref, m); err != nil {
		t.Fatalf("PutManifest %s: %v", ref, err)
	}
}

func closeTarget(t *testing.T, tg mirror.Target) {
	t.Helper()
	if c, ok := tg.(mirror.Closer); ok {
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func blobRoundTrip(t *testing.T, e Endpoint, _ Features) {
	ctx := context.Background()
	b := []byte("a blob for the round trip")
	d := descOf(types.OCILayer, b)
	if ok, err := e.Target.HasBlob(ctx, repo, d); err != nil || ok {
		t.Fatalf("HasBlob before the push = %v, %v; want false", ok, err)
	}
	putBlob(t, e.Target, b)
	if ok, err := e.Target.HasBlob(ctx, repo, d); err != nil || !ok {
		t.Fatalf("HasBlob after the push = %v, %v; want true", ok, err)
	}
	// A second push of the same bytes is harmless.
	putBlob(t, e.Target, b)
	closeTarget(t, e.Target)
	rc, err := e.Reopen(t).OpenBlob(ctx, repo, d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("OpenBlob = %q, %v; want %q", got, err, b)
	}
}

func blobWrongBytes(t *testing.T, e Endpoint, _ Features) {
	ctx := context.Background()
	d := descOf(types.OCILayer, []byte("the bytes the digest names"))
	lie := []byte("other bytes, same length...")[:d.Size]
	if err := e.Target.PutBlob(ctx, repo, d, bytes.NewReader(lie)); err == nil {
		t.Fatal("PutBlob of bytes that do not match the digest succeeded")
	}
	if ok, _ := e.Target.HasBlob(ctx, repo, d); ok {
		t.Fatal("a refused blob is present afterwards")
	}
}

func blobWrongSize(t *testing.T, e Endpoint, _ Features) {
	ctx := context.Background()
	b := []byte("sized bytes")
	d := descOf(types.OCILayer, b)
	d.Size++
	if err := e.Target.PutBlob(ctx, repo, d, bytes.NewReader(b)); err == nil {
		t.Fatal("PutBlob with the wrong size succeeded")
	}
	if ok, _ := e.Target.HasBlob(ctx, repo, d); ok {
		t.Fatal("a refused blob is present afterwards")
	}
}

func manifestByTagAndDigest(t *testing.T, e Endpoint, _ Features) {
	ctx := context.Background()
	m := image(t, e.Target, "tagged", nil)
	putManifest(t, e.Target, "v1", m)
	for _, ref := range []string{"v1", m.Digest.String()} {
		d, ok, err := e.Target.ManifestDigest(ctx, repo, ref)
		if err != nil || !ok || d != m.Digest {
			t.Fatalf("ManifestDigest(%s) = %v, %v, %v; want %s", ref, d, ok, err, m.Digest)
		}
	}
	closeTarget(t, e.Target)
	src := e.Reopen(t)
	for _, ref := range []string{"v1", m.Digest.String()} {
		got, err := src.GetManifest(ctx, repo, ref)
		if err != nil {
			t.Fatalf("GetManifest(%s): %v", ref, err)
		}
		if !bytes.Equal(got.Raw, m.Raw) || got.Digest != m.Digest || got.MediaType != m.MediaType {
			t.Fatalf("GetManifest(%s) = %s %s, want the bytes pushed (%s %s)", ref, got.MediaType, got.Digest, m.MediaType, m.Digest)
		}
	}
}

func unknownManifest(t *testing.T, e Endpoint, _ Features) {
	ctx := context.Background()
	// The repository exists, the tag and digest do not.
	putManifest(t, e.Target, "present", image(t, e.Target, "present", nil))
	missing := descOf(types.OCIManifestSchema1, []byte("no such manifest")).Digest.String()
	for _, ref := range []string{"absent", missing} {
		if _, ok, err := e.Target.ManifestDigest(ctx, repo, ref); err != nil || ok {
			t.Fatalf("ManifestDigest(%s) = %v, %v; want not found and no error", ref, ok, err)
		}
	}
	closeTarget(t, e.Target)
	if _, err := e.Reopen(t).GetManifest(ctx, repo, "absent"); err == nil {
		t.Fatal("GetManifest of an absent tag succeeded")
	}
}

func indexKeepsDigest(t *testing.T, e Endpoint, _ Features) {
	ctx := context.Background()
	var children []map[string]any
	for _, arch := range []string{"amd64", "arm64"} {
		m := image(t, e.Target, "index-"+arch, nil)
		putManifest(t, e.Target, m.Digest.String(), m)
		children = append(children, map[string]any{
			"mediaType": m.MediaType, "digest": m.Digest, "size": len(m.Raw),
			"platform": map[string]string{"os": "linux", "architecture": arch},
		})
	}
	raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": types.OCIImageIndex, "manifests": children})
	idx, err := mirror.NewManifest(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	putManifest(t, e.Target, "multi", idx)
	closeTarget(t, e.Target)
	src := e.Reopen(t)
	got, err := src.GetManifest(ctx, repo, "multi")
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != idx.Digest || got.MediaType != string(types.OCIImageIndex) {
		t.Fatalf("index read back as %s %s, want %s %s", got.MediaType, got.Digest, types.OCIImageIndex, idx.Digest)
	}
	for _, c := range children {
		d := c["digest"].(v1.Hash)
		if _, err := src.GetManifest(ctx, repo, d.String()); err != nil {
			t.Fatalf("child %s: %v", d, err)
		}
	}
}

func tagMoves(t *testing.T, e Endpoint, _ Features) {
	ctx := context.Background()
	a := image(t, e.Target, "first", nil)
	b := image(t, e.Target, "second", nil)
	putManifest(t, e.Target, "latest", a)
	putManifest(t, e.Target, "latest", b)
	if d, ok, err := e.Target.ManifestDigest(ctx, repo, "latest"); err != nil || !ok || d != b.Digest {
		t.Fatalf("after retagging, latest = %v (%v, %v); want %s", d, ok, err, b.Digest)
	}
	closeTarget(t, e.Target)
	got, err := e.Reopen(t).GetManifest(ctx, repo, "latest")
	if err != nil || got.Digest != b.Digest {
		t.Fatalf("reopened, latest = %v, %v; want %s", got, err, b.Digest)
	}
}

func referrers(t *testing.T, e Endpoint, f Features) {
	ctx := context.Background()
	subject := image(t, e.Target, "subject", nil)
	putManifest(t, e.Target, "signed", subject)
	// A cosign-style signature tag.
	sig := image(t, e.Target, "signature", nil)
	sigTag := fmt.Sprintf("%s-%s.sig", subject.Digest.Algorithm, subject.Digest.Hex)
	putManifest(t, e.Target, sigTag, sig)
	// An OCI 1.1 referrer, pushed by digest only.
	sbom := image(t, e.Target, "sbom", map[string]any{
		"artifactType": "application/spdx+json",
		"subject":      subject.Descriptor(),
	})
	putManifest(t, e.Target, sbom.Digest.String(), sbom)
	closeTarget(t, e.Target)
	refs, err := e.Reopen(t).Referrers(ctx, repo, subject.Digest)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range refs {
		got[r.Descriptor.Digest.String()] = r.Tag
	}
	want := map[string]string{sig.Digest.String(): sigTag}
	if !f.NoReferrersAPI {
		want[sbom.Digest.String()] = ""
	}
	if len(got) != len(want) {
		t.Fatalf("Referrers = %v, want %v", sortedKeys(got), sortedKeys(want))
	}
	for d, tag := range want {
		if gt, ok := got[d]; !ok || gt != tag {
			t.Fatalf("Referrers = %v, want %s (tag %q) among them", got, d, tag)
		}
	}
	if f.NoReferrersAPI {
		t.Log("no referrers API: the referrer pushed by digest alone is not listed (skipped)")
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
