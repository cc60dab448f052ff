// Package mirrortest builds synthetic content in a registry for mirror tests
// and benchmarks: images with shared layers, multi-arch indexes, signatures
// and referrers, and whole release payloads (a release image whose
// release-manifests/image-references pins every component by digest).
package mirrortest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// StartRegistry serves go-containerregistry's in-memory registry (with the
// OCI 1.1 referrers API) until the test ends and returns its host:port.
func StartRegistry(t testing.TB) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(nopLogger()), registry.WithReferrersSupport(true)))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// CountingRegistry is an in-memory registry that counts the blob bytes
// clients upload to it and can fail requests on demand.
type CountingRegistry struct {
	Host string
	mu   sync.Mutex
	// UploadedBytes counts request bodies of blob uploads (PUT/PATCH).
	UploadedBytes int64
	// Fail, when set, may answer a request instead of the registry.
	Fail func(r *http.Request) (status int, ok bool)
}

// StartCountingRegistry starts a CountingRegistry for the test's lifetime.
func StartCountingRegistry(t testing.TB) *CountingRegistry {
	t.Helper()
	c := &CountingRegistry{}
	inner := registry.New(registry.Logger(nopLogger()), registry.WithReferrersSupport(true))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		fail := c.Fail
		c.mu.Unlock()
		if fail != nil {
			if status, ok := fail(r); ok {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(status)
				return
			}
		}
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && (r.Method == http.MethodPut || r.Method == http.MethodPatch) && r.Body != nil {
			r.Body = &countingBody{ReadCloser: r.Body, c: c}
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	c.Host = strings.TrimPrefix(s.URL, "http://")
	return c
}

// SetFail installs (or, with nil, removes) the failure injector.
func (c *CountingRegistry) SetFail(f func(r *http.Request) (int, bool)) {
	c.mu.Lock()
	c.Fail = f
	c.mu.Unlock()
}

// Uploaded returns the blob bytes received so far.
func (c *CountingRegistry) Uploaded() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.UploadedBytes
}

type countingBody struct {
	io.ReadCloser
	c *CountingRegistry
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.mu.Lock()
	b.c.UploadedBytes += int64(n)
	b.c.mu.Unlock()
	return n, err
}

// Layer returns a deterministic gzip'd tar layer of about size bytes.
func Layer(seed uint64, size int) (v1.Layer, error) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	tw := tar.NewWriter(gz)
	_ = tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data-%d", seed), Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg})
	_, _ = tw.Write(data)
	_ = tw.Close()
	_ = gz.Close()
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// Image builds an OCI image for os/arch from layers.
func Image(layers []v1.Layer, arch string, labels map[string]string) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Labels = labels
	return mutate.ConfigFile(img, cf)
}

// MultiArch wraps one image per architecture into an OCI index.
func MultiArch(imgs map[string]v1.Image) v1.ImageIndex {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range sortedKeys(imgs) {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        imgs[arch],
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	// go-containerregistry sets artifactType on image entries, which
	// skopeo then insists on rewriting; real indexes do not carry it.
	im, err := idx.IndexManifest()
	if err != nil {
		panic(err)
	}
	im = im.DeepCopy()
	for i := range im.Manifests {
		im.Manifests[i].ArtifactType = ""
	}
	raw, err := json.Marshal(im)
	if err != nil {
		panic(err)
	}
	return &plainIndex{inner: idx, raw: raw, im: im}
}

// plainIndex is an index with its entries' artifactType removed.
type plainIndex struct {
	inner v1.ImageIndex
	raw   []byte
	im    *v1.IndexManifest
}

func (p *plainIndex) MediaType() (types.MediaType, error)         { return types.OCIImageIndex, nil }
func (p *plainIndex) Image(h v1.Hash) (v1.Image, error)           { return p.inner.Image(h) }
func (p *plainIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) { return p.inner.ImageIndex(h) }
func (p *plainIndex) RawManifest() ([]byte, error)                { return p.raw, nil }
func (p *plainIndex) IndexManifest() (*v1.IndexManifest, error)   { return p.im, nil }
func (p *plainIndex) Size() (int64, error)                        { return int64(len(p.raw)), nil }
func (p *plainIndex) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(p.raw))
	return h, err
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

// Signature pushes an OCI 1.1 referrer (artifactType
// application/vnd.example.signature) whose subject is subject, and a
// cosign-style `sha256-<hex>.sig` tag for it, to repo. It returns the
// referrer's digest.
func Signature(ctx context.Context, repo name.Repository, subject v1.Descriptor, payload string) (v1.Hash, error) {
	layer := static.NewLayer([]byte(payload), "application/vnd.example.signature.v1")
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, "application/vnd.oci.empty.v1+json")
	img, err := mutate.Append(img, mutate.Addendum{Layer: layer})
	if err != nil {
		return v1.Hash{}, err
	}
	img = mutate.Subject(img, subject).(v1.Image)
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(repo.Digest(d.String()), img, remote.WithContext(ctx)); err != nil {
		return v1.Hash{}, err
	}
	tag := repo.Tag(subject.Digest.Algorithm + "-" + subject.Digest.Hex + ".sig")
	return d, remote.Write(tag, img, remote.WithContext(ctx))
}

// ReleaseSpec describes a synthetic release payload.
type ReleaseSpec struct {
	// Version names the release (default "4.99.0").
	Version string
	// ReleaseRepo and ComponentRepo are repository paths on the registry
	// (defaults "openshift-release-dev/ocp-release" and
	// "openshift-release-dev/ocp-v4.0-art-dev").
	ReleaseRepo, ComponentRepo string
	// Components is the number of component images (default 10).
	Components int
	// LayersPerImage (default 4): half come from a pool shared by all
	// components, half are unique to the component.
	LayersPerImage int
	// SharedPool is the size of the shared layer pool (default
	// LayersPerImage).
	SharedPool int
	// LayerSize is the payload bytes of each layer (default 8 KiB).
	LayerSize int
	// MultiArchEvery makes every Nth component a linux/amd64+arm64 index
	// (0: none).
	MultiArchEvery int
	// Seed varies the content between payloads.
	Seed uint64
	// TagComponents also tags each component with its name in
	// ComponentRepo, so tools that copy "all tags" see the payload.
	TagComponents bool
}

// Component is one component of a synthetic release.
type Component struct {
	Name      string
	Ref       string // host/repo@sha256:...
	Digest    string
	MultiArch bool
}

// Release is what PushRelease built.
type Release struct {
	Ref        string // host/ReleaseRepo:VERSION-x86_64
	Digest     string
	Version    string
	Components []Component
	// UniqueBlobs and UniqueBytes count every distinct blob (layers and
	// configs, release image included), i.e. the minimum a mirror moves.
	UniqueBlobs int
	UniqueBytes int64
	// Blobs maps every distinct blob digest to its size.
	Blobs map[string]int64
}

// PushRelease builds a synthetic release payload in the registry at host.
func PushRelease(ctx context.Context, host string, spec ReleaseSpec) (*Release, error) {
	if spec.Version == "" {
		spec.Version = "4.99.0"
	}
	if spec.ReleaseRepo == "" {
		spec.ReleaseRepo = "openshift-release-dev/ocp-release"
	}
	if spec.ComponentRepo == "" {
		spec.ComponentRepo = "openshift-release-dev/ocp-v4.0-art-dev"
	}
	if spec.Components <= 0 {
		spec.Components = 10
	}
	if spec.LayersPerImage <= 0 {
		spec.LayersPerImage = 4
	}
	if spec.SharedPool <= 0 {
		spec.SharedPool = spec.LayersPerImage
	}
	if spec.LayerSize <= 0 {
		spec.LayerSize = 8 << 10
	}
	compRepo, err := name.NewRepository(host + "/" + spec.ComponentRepo)
	if err != nil {
		return nil, err
	}
	relRepo, err := name.NewRepository(host + "/" + spec.ReleaseRepo)
	if err != nil {
		return nil, err
	}
	base := spec.Seed * 1_000_003
	pool := make([]v1.Layer, spec.SharedPool)
	for i := range pool {
		if pool[i], err = Layer(base+uint64(i)+1, spec.LayerSize); err != nil {
			return nil, err
		}
	}
	blobs := map[v1.Hash]int64{}
	var bmu sync.Mutex
	note := func(img v1.Image) error {
		m, err := img.Manifest()
		if err != nil {
			return err
		}
		bmu.Lock()
		defer bmu.Unlock()
		blobs[m.Config.Digest] = m.Config.Size
		for _, l := range m.Layers {
			blobs[l.Digest] = l.Size
		}
		return nil
	}
	build := func(i int, arch string) (v1.Image, error) {
		shared := spec.LayersPerImage / 2
		var layers []v1.Layer
		for k := 0; k < shared; k++ {
			layers = append(layers, pool[(i+k)%len(pool)])
		}
		for k := shared; k < spec.LayersPerImage; k++ {
			l, err := Layer(base+uint64(1_000+i*64+k)+uint64(len(arch))*100_000, spec.LayerSize)
			if err != nil {
				return nil, err
			}
			layers = append(layers, l)
		}
		img, err := Image(layers, arch, map[string]string{"io.openshift.build.component": fmt.Sprintf("component-%03d", i)})
		if err != nil {
			return nil, err
		}
		return img, note(img)
	}
	comps := make([]Component, spec.Components)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range comps {
		g.Go(func() error {
			c := Component{Name: fmt.Sprintf("component-%03d", i)}
			var d v1.Hash
			if spec.MultiArchEvery > 0 && i%spec.MultiArchEvery == 0 {
				imgs := map[string]v1.Image{}
				for _, arch := range []string{"amd64", "arm64"} {
					img, err := build(i, arch)
					if err != nil {
						return err
					}
					imgs[arch] = img
				}
				idx := MultiArch(imgs)
				if d, err = idx.Digest(); err != nil {
					return err
				}
				if err := remote.WriteIndex(compRepo.Digest(d.String()), idx, remote.WithContext(gctx)); err != nil {
					return err
				}
				c.MultiArch = true
			} else {
				img, err := build(i, "amd64")
				if err != nil {
					return err
				}
				if d, err = img.Digest(); err != nil {
					return err
				}
				if err := remote.Write(compRepo.Digest(d.String()), img, remote.WithContext(gctx)); err != nil {
					return err
				}
			}
			if spec.TagComponents {
				desc, err := remote.Get(compRepo.Digest(d.String()), remote.WithContext(gctx))
				if err != nil {
					return err
				}
				if err := remote.Tag(compRepo.Tag(c.Name), desc, remote.WithContext(gctx)); err != nil {
					return err
				}
			}
			c.Digest = d.String()
			c.Ref = compRepo.String() + "@" + d.String()
			comps[i] = c
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	refs, err := ImageReferences(spec.Version, comps)
	if err != nil {
		return nil, err
	}
	relLayer, err := fileLayer(map[string][]byte{
		"release-manifests/image-references": refs,
		"release-manifests/release-metadata": []byte(fmt.Sprintf(`{"kind":"cincinnati-metadata-v0","version":%q}`, spec.Version)),
	})
	if err != nil {
		return nil, err
	}
	rel, err := Image([]v1.Layer{pool[0], relLayer}, "amd64", map[string]string{"io.openshift.release": spec.Version})
	if err != nil {
		return nil, err
	}
	if err := note(rel); err != nil {
		return nil, err
	}
	tag := relRepo.Tag(spec.Version + "-x86_64")
	if err := remote.Write(tag, rel, remote.WithContext(ctx)); err != nil {
		return nil, err
	}
	rd, err := rel.Digest()
	if err != nil {
		return nil, err
	}
	out := &Release{Ref: tag.String(), Digest: rd.String(), Version: spec.Version, Components: comps, UniqueBlobs: len(blobs), Blobs: map[string]int64{}}
	for d, n := range blobs {
		out.UniqueBytes += n
		out.Blobs[d.String()] = n
	}
	return out, nil
}

// ImageReferences renders the payload's image-references ImageStream.
func ImageReferences(version string, comps []Component) ([]byte, error) {
	type tag struct {
		Name string `json:"name"`
		From struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"from"`
	}
	is := struct {
		Kind       string            `json:"kind"`
		APIVersion string            `json:"apiVersion"`
		Metadata   map[string]string `json:"metadata"`
		Spec       struct {
			Tags []tag `json:"tags"`
		} `json:"spec"`
	}{Kind: "ImageStream", APIVersion: "image.openshift.io/v1", Metadata: map[string]string{"name": version}}
	for _, c := range comps {
		var t tag
		t.Name = c.Name
		t.From.Kind = "DockerImage"
		t.From.Name = c.Ref
		is.Spec.Tags = append(is.Spec.Tags, t)
	}
	return json.MarshalIndent(is, "", "  ")
}

// fileLayer is a gzip'd tar layer holding files.
func fileLayer(files map[string][]byte) (v1.Layer, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, n := range sortedKeys(files) {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// FileLayer exposes fileLayer for tests that build odd payloads.
func FileLayer(files map[string][]byte) (v1.Layer, error) { return fileLayer(files) }

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// HeadDigest returns the digest ref (host/repo:tag or @digest) resolves to.
func HeadDigest(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	d, err := remote.Head(r)
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

// PushImage pushes a small single-platform image with one layer per seed to
// ref and returns its digest.
func PushImage(ref string, seeds ...uint64) (string, error) {
	var layers []v1.Layer
	for _, s := range seeds {
		l, err := Layer(s, 4<<10)
		if err != nil {
			return "", err
		}
		layers = append(layers, l)
	}
	img, err := Image(layers, "amd64", nil)
	if err != nil {
		return "", err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	if err := remote.Write(r, img); err != nil {
		return "", err
	}
	d, err := img.Digest()
	return d.String(), err
}
