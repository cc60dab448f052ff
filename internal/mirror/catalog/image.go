package catalog

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"

	"github.com/berth-registry/berth/internal/mirror"
)

// ConfigsLabel is the image label naming a catalog image's configs
// directory.
const ConfigsLabel = "operators.operatorframework.io.index.configs.v1"

// ErrNoConfigsLabel is returned for an image without ConfigsLabel: it is
// not a file-based catalog (perhaps an old SQLite one).
var ErrNoConfigsLabel = errors.New("image has no " + ConfigsLabel + " label: not a file-based catalog")

// maxConfigFile bounds one file read from a configs directory.
const maxConfigFile = 1 << 30

// Catalog is a catalog image as read from its source, with its FBC.
type Catalog struct {
	// Ref names the image in messages ("source/repo:ref").
	Ref string
	// Manifest is the top manifest: an image, or an index of them.
	Manifest *mirror.Manifest
	// ConfigsDir is the configs directory (the label's value, cleaned,
	// absolute).
	ConfigsDir string
	// Config is the catalog's FBC.
	Config *Config
	// Images are the catalog's image manifests, one per platform.
	Images []*PlatformImage

	src  mirror.Source
	repo string
	// dropped are index entries that are not catalog images (attestations).
	dropped map[v1.Hash]bool
}

// PlatformImage is one image manifest of a catalog.
type PlatformImage struct {
	Platform *v1.Platform // nil for a single-image catalog
	Manifest *mirror.Manifest
	// CacheDir is the image command's opm serve --cache-dir, "" if none.
	CacheDir string

	config   []byte
	manifest imageManifest
}

type imageManifest struct {
	MediaType string          `json:"mediaType"`
	Config    v1.Descriptor   `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
}

type imageConfig struct {
	Config struct {
		Labels     map[string]string `json:"Labels"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
	} `json:"config"`
}

// LayoutImage returns the repository and tag of the one image an OCI
// layout holds (an oci:// catalog); a layout with several names is
// ambiguous.
func LayoutImage(l *mirror.Layout) (repo, ref string, err error) {
	es := l.Entries()
	var named []mirror.CatalogEntry
	for _, e := range es {
		if e.Subject == "" {
			named = append(named, e)
		}
	}
	if len(named) != 1 {
		return "", "", fmt.Errorf("%s: want exactly one image in the layout, it holds %d", l.Dir(), len(named))
	}
	e := named[0]
	if e.Tag != "" {
		return e.Repository, e.Tag, nil
	}
	return e.Repository, e.Digest, nil
}

// Read fetches the catalog image repo:ref from src, checks that every
// platform carries a file-based catalog and extracts it. All platforms
// must carry the same configs.
func Read(ctx context.Context, src mirror.Source, repo, ref string) (*Catalog, error) {
	name := src.Name() + "/" + repo + ":" + ref
	if strings.Contains(ref, ":") {
		name = src.Name() + "/" + repo + "@" + ref
	}
	top, err := src.GetManifest(ctx, repo, ref)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", name, err)
	}
	c := &Catalog{Ref: name, Manifest: top, src: src, repo: repo, dropped: map[v1.Hash]bool{}}
	if isIndex(top.MediaType) {
		var idx v1.IndexManifest
		if err := json.Unmarshal(top.Raw, &idx); err != nil {
			return nil, fmt.Errorf("catalog %s: index: %w", name, err)
		}
		for _, d := range idx.Manifests {
			if d.Annotations["vnd.docker.reference.type"] != "" || isIndex(string(d.MediaType)) {
				c.dropped[d.Digest] = true // an attestation, or a nested index
				continue
			}
			m, err := src.GetManifest(ctx, repo, d.Digest.String())
			if err != nil {
				return nil, fmt.Errorf("catalog %s: platform %s: %w", name, platformString(d.Platform), err)
			}
			pi, err := c.readImage(ctx, m, d.Platform)
			if err != nil {
				return nil, err
			}
			c.Images = append(c.Images, pi)
		}
		if len(c.Images) == 0 {
			return nil, fmt.Errorf("catalog %s: the index holds no image", name)
		}
	} else {
		pi, err := c.readImage(ctx, top, nil)
		if err != nil {
			return nil, err
		}
		c.Images = []*PlatformImage{pi}
	}
	// Extract once per distinct layer list; platforms usually share all
	// the layers that touch the configs, but that is only known by reading.
	var first map[string][]byte
	firstKey := ""
	done := map[string]string{}
	var ex *extractor
	for _, pi := range c.Images {
		dir, err := c.configsDir(pi)
		if err != nil {
			return nil, err
		}
		if c.ConfigsDir == "" {
			c.ConfigsDir = dir
		} else if dir != c.ConfigsDir {
			return nil, fmt.Errorf("catalog %s: platforms disagree on the configs directory (%s, %s)", name, c.ConfigsDir, dir)
		}
		key := layersKey(pi.manifest.Layers)
		if _, ok := done[key]; ok {
			continue
		}
		if ex == nil {
			ex = newExtractor(src, repo, dir)
		}
		files, err := ex.extract(ctx, pi.manifest.Layers)
		if err != nil {
			return nil, fmt.Errorf("catalog %s, platform %s: %w", name, platformString(pi.Platform), err)
		}
		sum := filesDigest(files)
		done[key] = sum
		if first == nil {
			first, firstKey = files, sum
		} else if sum != firstKey {
			return nil, fmt.Errorf("catalog %s: platform %s carries other configs than platform %s; a catalog index must carry one catalog", name, platformString(pi.Platform), platformString(c.Images[0].Platform))
		}
	}
	if len(first) == 0 {
		return nil, fmt.Errorf("catalog %s: %w in %s", name, ErrNoConfigs, c.ConfigsDir)
	}
	cfg, err := LoadFiles(first)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: configs %s: %w", name, c.ConfigsDir, err)
	}
	c.Config = cfg
	return c, nil
}

func (c *Catalog) readImage(ctx context.Context, m *mirror.Manifest, p *v1.Platform) (*PlatformImage, error) {
	pi := &PlatformImage{Platform: p, Manifest: m}
	if err := json.Unmarshal(m.Raw, &pi.manifest); err != nil {
		return nil, fmt.Errorf("catalog %s: manifest %s: %w", c.Ref, m.Digest, err)
	}
	if pi.manifest.MediaType == "" {
		pi.manifest.MediaType = m.MediaType
	}
	raw, err := readBlob(ctx, c.src, c.repo, pi.manifest.Config, 64<<20)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: image config: %w", c.Ref, err)
	}
	pi.config = raw
	var cfg imageConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("catalog %s: image config: %w", c.Ref, err)
	}
	pi.CacheDir = serveCacheDir(append(append([]string{}, cfg.Config.Entrypoint...), cfg.Config.Cmd...))
	return pi, nil
}

func (c *Catalog) configsDir(pi *PlatformImage) (string, error) {
	var cfg imageConfig
	_ = json.Unmarshal(pi.config, &cfg)
	dir, ok := cfg.Config.Labels[ConfigsLabel]
	if !ok || strings.TrimSpace(dir) == "" {
		return "", fmt.Errorf("catalog %s (platform %s): %w", c.Ref, platformString(pi.Platform), ErrNoConfigsLabel)
	}
	dir = path.Clean("/" + dir)
	if dir == "/" {
		return "", fmt.Errorf("catalog %s: label %s is %q: the configs cannot be the root directory", c.Ref, ConfigsLabel, cfg.Config.Labels[ConfigsLabel])
	}
	return dir, nil
}

// serveCacheDir finds `--cache-dir DIR` or `--cache-dir=DIR` in an opm
// serve command line.
func serveCacheDir(args []string) string {
	serve := false
	for i, a := range args {
		switch {
		case a == "serve":
			serve = true
		case strings.HasPrefix(a, "--cache-dir="):
			if serve {
				return path.Clean("/" + strings.TrimPrefix(a, "--cache-dir="))
			}
		case a == "--cache-dir" && i+1 < len(args):
			if serve {
				return path.Clean("/" + args[i+1])
			}
		}
	}
	return ""
}

func isIndex(mt string) bool {
	return mt == string(types.OCIImageIndex) || mt == string(types.DockerManifestList)
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return "(single)"
	}
	return p.String()
}

func layersKey(ls []v1.Descriptor) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Digest.String())
		b.WriteByte(',')
	}
	return b.String()
}

func filesDigest(files map[string][]byte) string {
	h := sha256.New()
	for _, p := range sortedKeys(files) {
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(files[p]))
		h.Write(files[p])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// readBlob reads a small blob whole and checks its digest.
func readBlob(ctx context.Context, src mirror.Source, repo string, d v1.Descriptor, limit int64) ([]byte, error) {
	rc, err := src.OpenBlob(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("blob %s is larger than %d bytes", d.Digest, limit)
	}
	sum := sha256.Sum256(b)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != d.Digest.String() {
		return nil, fmt.Errorf("blob %s: content hashes to %s", d.Digest, got)
	}
	return b, nil
}

// extracted is a file of the configs directory as the layers so far left
// it.
type extracted struct {
	layer int
	data  []byte
	link  string // symlink target, as written
}

// layerOp is what one layer entry does to the configs directory.
type layerOp struct {
	kind byte // 'f' file, 'h' hard link, 's' symlink, 'd' directory, 'w' whiteout, 'o' opaque directory
	path string
	link string
	data []byte
}

// extractor applies layers to a configs directory, reading each distinct
// layer once however many platforms share it.
type extractor struct {
	src  mirror.Source
	repo string
	dir  string
	ops  map[v1.Hash][]layerOp
}

func newExtractor(src mirror.Source, repo, dir string) *extractor {
	return &extractor{src: src, repo: repo, dir: dir, ops: map[v1.Hash][]layerOp{}}
}

// extract applies the layers in order, keeping only what lies below dir
// (an absolute path): regular files, hard links to them and symlinks that
// stay inside dir; whiteouts and opaque directories remove what lower
// layers put there. Each layer is streamed once and its digest checked.
func extract(ctx context.Context, src mirror.Source, repo string, layers []v1.Descriptor, dir string) (map[string][]byte, error) {
	return newExtractor(src, repo, dir).extract(ctx, layers)
}

func (x *extractor) extract(ctx context.Context, layers []v1.Descriptor) (map[string][]byte, error) {
	prefix := strings.TrimPrefix(x.dir, "/")
	files := map[string]*extracted{}
	remove := func(target string, layer int) {
		for p, f := range files {
			if f.layer < layer && (target == "" || p == target || strings.HasPrefix(p, target+"/")) {
				delete(files, p)
			}
		}
	}
	for i, l := range layers {
		ops, ok := x.ops[l.Digest]
		if !ok {
			var err error
			if ops, err = x.readLayer(ctx, l, prefix); err != nil {
				return nil, fmt.Errorf("layer %d (%s): %w", i, l.Digest, err)
			}
			x.ops[l.Digest] = ops
		}
		for _, op := range ops {
			switch op.kind {
			case 'o', 'w':
				remove(op.path, i)
			case 'f':
				remove(op.path, i+1) // a file replaces whatever was there, in this layer too
				files[op.path] = &extracted{layer: i, data: op.data}
			case 'h':
				t, ok := files[op.link]
				if !ok {
					return nil, fmt.Errorf("layer %d (%s): %s: hard link to /%s, which is not a configs file", i, l.Digest, "/"+op.path, op.link)
				}
				files[op.path] = &extracted{layer: i, data: t.data, link: t.link}
			case 's':
				files[op.path] = &extracted{layer: i, link: op.link}
			case 'd':
				// Directories exist implicitly; a non-directory at the
				// path from a lower layer is replaced.
				if f, ok := files[op.path]; ok && f.layer < i {
					delete(files, op.path)
				}
			}
		}
	}
	out := map[string][]byte{}
	for p, f := range files {
		rel := strings.TrimPrefix(p, prefix+"/")
		if f.link == "" {
			out[rel] = f.data
			continue
		}
		// Follow symlinks inside the configs directory (a few hops).
		cur, target := p, f
		for hops := 0; target != nil && target.link != "" && hops < 16; hops++ {
			next := target.link
			if !strings.HasPrefix(next, "/") {
				next = path.Join(path.Dir("/"+cur), next)
			}
			cur = strings.Trim(path.Clean(next), "/")
			target = files[cur]
		}
		if target == nil || target.link != "" {
			return nil, fmt.Errorf("%s: symbolic link to %s does not resolve to a file in %s", "/"+p, f.link, x.dir)
		}
		out[rel] = target.data
	}
	return out, nil
}

// readLayer streams one layer and returns what it does below prefix.
func (x *extractor) readLayer(ctx context.Context, l v1.Descriptor, prefix string) ([]layerOp, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	under := func(p string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }
	above := func(p string) bool { return p == "" || strings.HasPrefix(prefix, p+"/") }
	rc, err := x.src.OpenBlob(ctx, x.repo, l)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(rc, h)}
	tr, closeTar, err := layerTar(counted)
	if err != nil {
		return nil, err
	}
	defer closeTar()
	var ops []layerOp
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		p := strings.Trim(path.Clean("/"+hdr.Name), "/")
		base, parent := path.Base(p), path.Dir(p)
		if parent == "." {
			parent = ""
		}
		switch {
		case base == ".wh..wh..opq":
			if under(parent) || above(parent) {
				ops = append(ops, layerOp{kind: 'o', path: parent})
			}
			continue
		case strings.HasPrefix(base, ".wh."):
			target := strings.TrimPrefix(path.Join(parent, strings.TrimPrefix(base, ".wh.")), "/")
			if under(target) || above(target) {
				ops = append(ops, layerOp{kind: 'w', path: target})
			}
			continue
		}
		if p == prefix && hdr.Typeflag == tar.TypeSymlink {
			return nil, fmt.Errorf("the configs directory /%s is a symbolic link (to %s); not supported", prefix, hdr.Linkname)
		}
		if !under(p) || p == prefix {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			if hdr.Size > maxConfigFile {
				return nil, fmt.Errorf("/%s: %d bytes, larger than any catalog file should be", p, hdr.Size)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			ops = append(ops, layerOp{kind: 'f', path: p, data: b})
		case tar.TypeLink:
			ops = append(ops, layerOp{kind: 'h', path: p, link: strings.Trim(path.Clean("/"+hdr.Linkname), "/")})
		case tar.TypeSymlink:
			ops = append(ops, layerOp{kind: 's', path: p, link: hdr.Linkname})
		case tar.TypeDir:
			ops = append(ops, layerOp{kind: 'd', path: p})
		}
	}
	// Read to the end so the digest covers the whole blob.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return nil, err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != l.Digest.String() {
		return nil, fmt.Errorf("content hashes to %s", got)
	}
	if l.Size > 0 && counted.n != l.Size {
		return nil, fmt.Errorf("%d bytes, the manifest says %d", counted.n, l.Size)
	}
	return ops, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// layerTar opens a layer stream as tar, whatever its compression (gzip,
// zstd or none, by the magic bytes).
func layerTar(r io.Reader) (*tar.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return tar.NewReader(gz), func() { gz.Close() }, nil
	case len(magic) == 4 && bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return tar.NewReader(zr), zr.Close, nil
	default:
		return tar.NewReader(br), func() {}, nil
	}
}

// Rebuilt describes a pushed catalog image.
type Rebuilt struct {
	// Digest and MediaType are those of the pushed top manifest.
	Digest    v1.Hash
	MediaType string
	// Platforms are the rebuilt image manifests, in index order.
	Platforms []RebuiltPlatform
	// Layer is the new layer's digest (one for all platforms when they
	// serve from the same cache directory).
	Layers []v1.Hash
	// Notes say what was done about opm's cache and index entries that
	// were left out.
	Notes []string
}

// RebuiltPlatform is one rebuilt image manifest.
type RebuiltPlatform struct {
	Platform *v1.Platform
	From     v1.Hash
	Digest   v1.Hash
}

// newLayer is a built layer, held in memory: it is the filtered configs
// and their cache, a small fraction of the catalog.
type newLayer struct {
	blob   []byte
	digest v1.Hash
	diffID v1.Hash
}

func buildLayer(cfg *Config, configsDir, cacheDir string) (*newLayer, error) {
	configs := newTree(cfg.Files())
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	if err := configs.writeLayer(tw, configsDir); err != nil {
		return nil, err
	}
	if cacheDir != "" {
		files, err := cacheFiles(cfg, configs)
		if err != nil {
			return nil, fmt.Errorf("opm cache: %w", err)
		}
		if err := newTree(files).writeLayer(tw, cacheDir); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &newLayer{blob: gz.Bytes(), digest: sha256Hash(gz.Bytes()), diffID: sha256Hash(raw.Bytes())}, nil
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// Rebuild builds the catalog image around the filtered catalog res (from
// c.Config.Apply) and pushes it to dst as repo, tagged tag (by digest only
// when tag is empty). Every original layer is copied when dst lacks it.
func (c *Catalog) Rebuild(ctx context.Context, res *Result, dst mirror.Target, repo, tag string) (*Rebuilt, error) {
	out := &Rebuilt{}
	layers := map[string]*newLayer{}
	built := map[v1.Hash]*mirror.Manifest{}
	for _, pi := range c.Images {
		nl, ok := layers[pi.CacheDir]
		if !ok {
			var err error
			if nl, err = buildLayer(res.Config, c.ConfigsDir, pi.CacheDir); err != nil {
				return nil, fmt.Errorf("catalog %s: %w", c.Ref, err)
			}
			layers[pi.CacheDir] = nl
			out.Layers = append(out.Layers, nl.digest)
			if pi.CacheDir != "" {
				out.Notes = append(out.Notes, fmt.Sprintf("opm serve cache in %s regenerated (json format, digest for --cache-enforce-integrity)", pi.CacheDir))
			} else {
				out.Notes = append(out.Notes, "the image's command names no opm serve --cache-dir: no cache written, opm builds one at start")
			}
		}
		m, err := c.rebuildImage(ctx, pi, nl, dst, repo)
		if err != nil {
			return nil, fmt.Errorf("catalog %s, platform %s: %w", c.Ref, platformString(pi.Platform), err)
		}
		built[pi.Manifest.Digest] = m
		out.Platforms = append(out.Platforms, RebuiltPlatform{Platform: pi.Platform, From: pi.Manifest.Digest, Digest: m.Digest})
	}
	top := built[c.Images[0].Manifest.Digest]
	if isIndex(c.Manifest.MediaType) {
		raw, err := rewriteIndex(c.Manifest.Raw, built, c.dropped)
		if err != nil {
			return nil, fmt.Errorf("catalog %s: index: %w", c.Ref, err)
		}
		for d := range c.dropped {
			out.Notes = append(out.Notes, fmt.Sprintf("index entry %s left out: not a catalog image (an attestation or nested index)", d))
		}
		top = &mirror.Manifest{Raw: raw, MediaType: c.Manifest.MediaType, Digest: sha256Hash(raw)}
	}
	ref := tag
	if ref == "" {
		ref = top.Digest.String()
	}
	if err := dst.PutManifest(ctx, repo, ref, top); err != nil {
		return nil, fmt.Errorf("catalog %s: push to %s/%s: %w", c.Ref, dst.Name(), repo, err)
	}
	out.Digest, out.MediaType = top.Digest, top.MediaType
	sort.Strings(out.Notes)
	return out, nil
}

func (c *Catalog) rebuildImage(ctx context.Context, pi *PlatformImage, nl *newLayer, dst mirror.Target, repo string) (*mirror.Manifest, error) {
	// The image config: one more diff_id and history entry, all else kept.
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(pi.config, &cfg); err != nil {
		return nil, err
	}
	var rootfs map[string]json.RawMessage
	if err := json.Unmarshal(cfg["rootfs"], &rootfs); err != nil {
		return nil, fmt.Errorf("image config rootfs: %w", err)
	}
	var diffIDs []string
	if err := json.Unmarshal(rootfs["diff_ids"], &diffIDs); err != nil {
		return nil, fmt.Errorf("image config rootfs.diff_ids: %w", err)
	}
	if len(diffIDs) != len(pi.manifest.Layers) {
		return nil, fmt.Errorf("image config lists %d diff_ids for %d layers", len(diffIDs), len(pi.manifest.Layers))
	}
	diffIDs = append(diffIDs, nl.diffID.String())
	if err := setJSON(rootfs, "diff_ids", diffIDs); err != nil {
		return nil, err
	}
	if err := setJSON(cfg, "rootfs", rootfs); err != nil {
		return nil, err
	}
	var history []json.RawMessage
	if h, ok := cfg["history"]; ok {
		if err := json.Unmarshal(h, &history); err != nil {
			return nil, fmt.Errorf("image config history: %w", err)
		}
	}
	entry, _ := json.Marshal(map[string]string{"created": layerEpoch.Format("2006-01-02T15:04:05Z"), "created_by": "berth mirror: filtered file-based catalog in " + c.ConfigsDir, "comment": "replaces " + c.ConfigsDir + cacheComment(pi.CacheDir)})
	history = append(history, entry)
	if err := setJSON(cfg, "history", history); err != nil {
		return nil, err
	}
	cfgRaw, err := marshalNoEscape(cfg)
	if err != nil {
		return nil, err
	}
	cfgDesc := v1.Descriptor{MediaType: pi.manifest.Config.MediaType, Size: int64(len(cfgRaw)), Digest: sha256Hash(cfgRaw)}

	layerType := types.OCILayer
	if pi.manifest.MediaType == string(types.DockerManifestSchema2) {
		layerType = types.DockerLayer
	}
	layerDesc := v1.Descriptor{MediaType: layerType, Size: int64(len(nl.blob)), Digest: nl.digest}

	// The manifest: new config, one more layer, all else kept.
	var man map[string]json.RawMessage
	if err := json.Unmarshal(pi.Manifest.Raw, &man); err != nil {
		return nil, err
	}
	var cd map[string]json.RawMessage
	if err := json.Unmarshal(man["config"], &cd); err != nil {
		return nil, fmt.Errorf("manifest config: %w", err)
	}
	setJSON(cd, "digest", cfgDesc.Digest.String())
	setJSON(cd, "size", cfgDesc.Size)
	if err := setJSON(man, "config", cd); err != nil {
		return nil, err
	}
	var ls []json.RawMessage
	if err := json.Unmarshal(man["layers"], &ls); err != nil {
		return nil, fmt.Errorf("manifest layers: %w", err)
	}
	ld, _ := json.Marshal(layerDesc)
	ls = append(ls, ld)
	if err := setJSON(man, "layers", ls); err != nil {
		return nil, err
	}
	manRaw, err := marshalNoEscape(man)
	if err != nil {
		return nil, err
	}

	// Push: the original layers, the new layer and config, then the
	// manifest by digest.
	for _, l := range pi.manifest.Layers {
		if err := c.copyBlob(ctx, dst, repo, l); err != nil {
			return nil, err
		}
	}
	if err := putBlob(ctx, dst, repo, layerDesc, nl.blob); err != nil {
		return nil, err
	}
	if err := putBlob(ctx, dst, repo, cfgDesc, cfgRaw); err != nil {
		return nil, err
	}
	m := &mirror.Manifest{Raw: manRaw, MediaType: pi.Manifest.MediaType, Digest: sha256Hash(manRaw)}
	if err := dst.PutManifest(ctx, repo, m.Digest.String(), m); err != nil {
		return nil, err
	}
	return m, nil
}

func cacheComment(dir string) string {
	if dir == "" {
		return ""
	}
	return " and the opm serve cache in " + dir
}

func (c *Catalog) copyBlob(ctx context.Context, dst mirror.Target, repo string, d v1.Descriptor) error {
	ok, err := dst.HasBlob(ctx, repo, d)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	rc, err := c.src.OpenBlob(ctx, c.repo, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	vr := &verifyingReader{r: rc, h: sha256.New(), want: d}
	if err := dst.PutBlob(ctx, repo, d, vr); err != nil {
		return err
	}
	return vr.err
}

// verifyingReader hashes what it reads and fails at EOF on a mismatch, so
// a corrupt source blob never lands at the destination unnoticed.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	want v1.Descriptor
	err  error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); got != v.want.Digest.String() || v.n != v.want.Size {
			v.err = fmt.Errorf("blob %s: source sent %d bytes hashing to %s", v.want.Digest, v.n, got)
			return n, v.err
		}
	}
	return n, err
}

func putBlob(ctx context.Context, dst mirror.Target, repo string, d v1.Descriptor, b []byte) error {
	ok, err := dst.HasBlob(ctx, repo, d)
	if err != nil || ok {
		return err
	}
	return dst.PutBlob(ctx, repo, d, bytes.NewReader(b))
}

func rewriteIndex(raw []byte, built map[v1.Hash]*mirror.Manifest, dropped map[v1.Hash]bool) ([]byte, error) {
	var idx map[string]json.RawMessage
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, err
	}
	var ms []map[string]json.RawMessage
	if err := json.Unmarshal(idx["manifests"], &ms); err != nil {
		return nil, err
	}
	var keep []map[string]json.RawMessage
	for _, m := range ms {
		var d v1.Hash
		if err := json.Unmarshal(m["digest"], &d); err != nil {
			return nil, err
		}
		if dropped[d] {
			continue
		}
		nm, ok := built[d]
		if !ok {
			return nil, fmt.Errorf("entry %s was not rebuilt", d)
		}
		setJSON(m, "digest", nm.Digest.String())
		setJSON(m, "size", len(nm.Raw))
		keep = append(keep, m)
	}
	if err := setJSON(idx, "manifests", keep); err != nil {
		return nil, err
	}
	return marshalNoEscape(idx)
}

func setJSON[M ~map[string]json.RawMessage](m M, k string, v any) error {
	b, err := marshalNoEscape(v)
	if err != nil {
		return err
	}
	m[k] = b
	return nil
}
