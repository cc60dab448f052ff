package gc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/storage"
	"github.com/opencontainers/go-digest"
)

// env is a real filesystem root laid out as berth serve lays it out.
type env struct {
	root  string
	blobs storage.Backend
	meta  *metadata.Store
	reg   *registry.Registry
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	blobs, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	return newEnvOn(t, root, blobs)
}

// newEnvOn is an env over another blob store, its metadata under root.
func newEnvOn(t *testing.T, root string, blobs storage.Backend) *env {
	t.Helper()
	meta, err := metadata.OpenSQLite(context.Background(), filepath.Join(root, "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	return &env{root: root, blobs: blobs, meta: meta, reg: registry.New(blobs, meta, registry.Options{})}
}

func (e *env) blob(t *testing.T, repo, content string) digest.Digest {
	t.Helper()
	d := digest.FromString(content)
	if err := e.reg.PutBlob(context.Background(), repo, d, strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	return d
}

// leftover commits bytes with no metadata, as a crash between the commit
// and the metadata write leaves them.
func (e *env) leftover(t *testing.T, content string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	d := digest.FromString(content)
	id := "crash-" + d.Encoded()[:8]
	if err := e.blobs.StartUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.blobs.Append(ctx, id, strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	if err := e.blobs.Commit(ctx, id, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// image pushes a config blob and layers, then an image manifest (under tag
// if set; subject makes it a referrer).
func (e *env) image(t *testing.T, repo, tag, config string, subject digest.Digest, layers ...string) digest.Digest {
	t.Helper()
	cfg := e.blob(t, repo, config)
	var ls []string
	for _, l := range layers {
		ld := e.blob(t, repo, l)
		ls = append(ls, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}`, ld, len(l)))
	}
	subj := ""
	if subject != "" {
		subj = fmt.Sprintf(`,"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":1}`, subject)
	}
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[%s]%s}`,
		cfg, len(config), strings.Join(ls, ","), subj)
	return e.manifest(t, repo, tag, "application/vnd.oci.image.manifest.v1+json", body)
}

func (e *env) index(t *testing.T, repo, tag string, children ...digest.Digest) digest.Digest {
	t.Helper()
	var ms []string
	for _, c := range children {
		ms = append(ms, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":1}`, c))
	}
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}`, strings.Join(ms, ","))
	return e.manifest(t, repo, tag, "application/vnd.oci.image.index.v1+json", body)
}

func (e *env) manifest(t *testing.T, repo, tag, mt, body string) digest.Digest {
	t.Helper()
	ref := tag
	if ref == "" {
		ref = string(digest.FromString(body))
	}
	d, _, err := e.reg.PutManifest(context.Background(), repo, ref, mt, strings.NewReader(body))
	if err != nil {
		t.Fatalf("push manifest to %s:%s: %v", repo, ref, err)
	}
	return d
}

// pullable fetches manifest d of repo and every blob it names, through
// the registry's read path, and compares the bytes with their digests.
func (e *env) pullable(t *testing.T, repo string, d digest.Digest) error {
	t.Helper()
	ctx := context.Background()
	_, raw, err := e.reg.GetManifest(ctx, repo, string(d))
	if err != nil {
		return err
	}
	if digest.FromBytes(raw) != d {
		return errors.New("manifest bytes do not match")
	}
	for _, bd := range blobRefs(raw) {
		b, _, err := e.reg.OpenBlob(ctx, repo, bd)
		if err != nil {
			return fmt.Errorf("blob %s: %w", bd, err)
		}
		got, _ := io.ReadAll(b)
		b.Close()
		if digest.FromBytes(got) != bd {
			return fmt.Errorf("blob %s has wrong bytes", bd)
		}
	}
	return nil
}

// blobRefs returns the blob digests in an image manifest (config and
// layers), found by their JSON position: good enough for our own bodies.
func blobRefs(raw []byte) []digest.Digest {
	if !bytes.Contains(raw, []byte(`"config"`)) {
		return nil
	}
	var out []digest.Digest
	rest := string(raw)
	if i := strings.Index(rest, `"subject"`); i >= 0 {
		rest = rest[:i]
	}
	for {
		i := strings.Index(rest, `"digest":"`)
		if i < 0 {
			return out
		}
		rest = rest[i+len(`"digest":"`):]
		out = append(out, digest.Digest(rest[:strings.IndexByte(rest, '"')]))
	}
}
