package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/berth-registry/berth/internal/units"
)

// The small-image shape is part of the fixed workload.
const (
	LayersPerImage = 3
	LayerSize      = 1 << 20
)

const (
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
	manifestAccept    = mediaTypeManifest + ", application/vnd.docker.distribution.manifest.v2+json"
)

// ErrDigestMismatch marks bytes that did not hash to the digest they were
// stored or fetched under. Run finishes the workload and returns it with the
// report, whose digest_ok fields say where.
var ErrDigestMismatch = errors.New("digest mismatch")

// Config is one benchmark run. The zero value of each field but Target means
// its default (see Defaults).
type Config struct {
	// Target is the registry: host:port, http://host:port or https://host.
	Target string
	// Repo prefixes the repositories the run writes: Repo/blob, Repo/images.
	Repo string
	// BlobSize is the size of the large blob; ChunkSize its PATCH size.
	BlobSize, ChunkSize int64
	// Images is how many small images are pushed and pulled by Workers.
	Images, Workers int
	// ManifestWorkers GET manifests by tag for ManifestDuration.
	ManifestWorkers  int
	ManifestDuration time.Duration
	// PID, when not 0, is the server process to measure via /proc.
	PID int
	// CeilingDir holds the durable-write ceiling's file; empty means the
	// system temporary directory. Put it on the registry's disk.
	CeilingDir string
	// Insecure skips TLS certificate verification.
	Insecure bool
	// Seed names the content; 0 picks a random one (reported), so a second
	// run against the same registry pushes new bytes.
	Seed uint64
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
}

// Defaults returns c with every unset field at its documented default.
func (c Config) Defaults() Config {
	if c.Repo == "" {
		c.Repo = "bench"
	}
	if c.BlobSize == 0 {
		c.BlobSize = 1 << 30
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = 16 << 20
	}
	if c.Images == 0 {
		c.Images = 100
	}
	if c.Workers == 0 {
		c.Workers = 8
	}
	if c.ManifestWorkers == 0 {
		c.ManifestWorkers = 64
	}
	if c.ManifestDuration == 0 {
		c.ManifestDuration = 10 * time.Second
	}
	if c.CeilingDir == "" {
		c.CeilingDir = os.TempDir()
	}
	return c
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if _, err := ParseTarget(c.Target); err != nil {
		errs = append(errs, err)
	}
	if c.BlobSize < 1 {
		errs = append(errs, fmt.Errorf("blob size %d: want at least 1 byte", c.BlobSize))
	}
	if c.ChunkSize < 1 {
		errs = append(errs, fmt.Errorf("chunk size %d: want at least 1 byte", c.ChunkSize))
	}
	if c.Images < 1 {
		errs = append(errs, fmt.Errorf("images %d: want at least 1", c.Images))
	}
	if c.Workers < 1 || c.ManifestWorkers < 1 {
		errs = append(errs, fmt.Errorf("workers %d, manifest workers %d: want at least 1", c.Workers, c.ManifestWorkers))
	}
	if c.ManifestDuration <= 0 {
		errs = append(errs, fmt.Errorf("duration %s: want more than 0", c.ManifestDuration))
	}
	if c.PID < 0 {
		errs = append(errs, fmt.Errorf("pid %d: want a process id", c.PID))
	}
	if st, err := os.Stat(c.CeilingDir); err != nil || !st.IsDir() {
		errs = append(errs, fmt.Errorf("ceiling dir %q: not a directory", c.CeilingDir))
	}
	return errors.Join(errs...)
}

type runner struct {
	cfg  Config
	c    *client
	smp  *sampler
	mism atomic.Bool
}

func (r *runner) progress(format string, a ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "bench: "+format+"\n", a...)
	}
}

// phase runs f and returns the server's usage during it (nil without a PID)
// and whether every digest matched. A digest mismatch does not stop the run.
func (r *runner) phase(name string, f func() error) (*ServerUsage, bool, error) {
	r.progress("%s", name)
	var cpu0 time.Duration
	if r.smp != nil {
		var err error
		if cpu0, err = r.smp.phaseStart(); err != nil {
			return nil, false, err
		}
	}
	ok := true
	if err := f(); err != nil {
		if !errors.Is(err, ErrDigestMismatch) {
			return nil, false, fmt.Errorf("%s: %w", name, err)
		}
		ok = false
		r.mism.Store(true)
		r.progress("%s: %v", name, err)
	}
	if r.smp == nil {
		return nil, ok, nil
	}
	srv, err := r.smp.phaseEnd(cpu0)
	return srv, ok, err
}

// Run measures the machine's ceilings, then the registry, and returns the
// report. doc.go describes the workload.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, _ := ParseTarget(cfg.Target)
	if cfg.Seed == 0 {
		// Below 2^53, so JSON readers that use doubles (jq) keep it exact.
		cfg.Seed = rand.Uint64N(1<<53-1) + 1
	}
	r := &runner{cfg: cfg, c: newClient(base, cfg.Insecure, 2*max(cfg.Workers, cfg.ManifestWorkers))}
	defer r.c.close()
	rep := &Report{
		Target:  base.String(),
		Seed:    cfg.Seed,
		Started: newStarted(time.Now()),
		Workload: Workload{
			BlobSizeBytes: cfg.BlobSize, ChunkSizeBytes: cfg.ChunkSize,
			Images: cfg.Images, LayersPerImage: LayersPerImage, LayerSizeBytes: LayerSize,
			Workers: cfg.Workers, ManifestWorkers: cfg.ManifestWorkers,
			ManifestDuration: cfg.ManifestDuration.Seconds(),
		},
	}
	if err := r.c.ping(ctx); err != nil {
		return nil, err
	}
	if cfg.PID != 0 {
		smp, err := newSampler(cfg.PID)
		if err != nil {
			return nil, err
		}
		r.smp = smp
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		go smp.run(sctx, 50*time.Millisecond)
	}

	if err := r.ceilings(ctx, &rep.Ceilings); err != nil {
		return nil, err
	}
	if err := r.largeBlob(ctx, rep); err != nil {
		return nil, err
	}
	if err := r.smallImages(ctx, rep); err != nil {
		return nil, err
	}
	if r.smp != nil {
		u, err := r.smp.total()
		if err != nil {
			return nil, err
		}
		rep.Server = u
	}
	if r.mism.Load() {
		return rep, ErrDigestMismatch
	}
	return rep, nil
}

func (r *runner) ceilings(ctx context.Context, c *Ceilings) error {
	buf := ceilingBuf(r.cfg.Seed)
	// At least 64 MiB so tiny test workloads still time something.
	n := max(r.cfg.BlobSize, 64<<20)
	r.progress("ceiling: sha256 of %s on one core", units.FormatBytes(n))
	c.SHA256MiBs = measureSHA256(n, buf)
	r.progress("ceiling: write+fsync %s in %s", units.FormatBytes(r.cfg.BlobSize), r.cfg.CeilingDir)
	var err error
	if c.DurableWriteMiBs, err = measureDurableWrite(r.cfg.CeilingDir, r.cfg.BlobSize, buf); err != nil {
		return err
	}
	r.progress("ceiling: one loopback TCP stream of %s", units.FormatBytes(n))
	c.LoopbackTCPMiBs, err = measureLoopback(ctx, n, buf)
	return err
}

func (r *runner) largeBlob(ctx context.Context, rep *Report) error {
	cfg := r.cfg
	repo := cfg.Repo + "/blob"
	size := cfg.BlobSize
	r.progress("digesting the two %s blobs (not timed)", units.FormatBytes(size))
	var monoD, chunkD digest.Digest
	var wg sync.WaitGroup
	wg.Go(func() { monoD = ContentDigest(cfg.Seed, "blob-monolithic", size) })
	chunkD = ContentDigest(cfg.Seed, "blob-chunked", size)
	wg.Wait()

	blobPhase := func(name string, d digest.Digest, out *BlobPhase, f func() error) error {
		var el time.Duration
		srv, ok, err := r.phase(name, func() error {
			start := time.Now()
			err := f()
			el = time.Since(start)
			return err
		})
		if err != nil {
			return err
		}
		*out = BlobPhase{Bytes: size, Seconds: el.Seconds(), MiBs: mibPerSec(size, el), Digest: d.String(), DigestOK: ok, Server: srv}
		return nil
	}
	if err := blobPhase("blob push monolithic", monoD, &rep.BlobPushMonolithic, func() error {
		return r.c.pushMonolithic(ctx, repo, monoD, NewContent(cfg.Seed, "blob-monolithic", size), size)
	}); err != nil {
		return err
	}
	if err := blobPhase("blob push chunked", chunkD, &rep.BlobPushChunked, func() error {
		return r.c.pushChunked(ctx, repo, chunkD, NewContent(cfg.Seed, "blob-chunked", size), size, cfg.ChunkSize)
	}); err != nil {
		return err
	}
	return blobPhase("blob pull", monoD, &rep.BlobPull, func() error {
		n, err := r.c.pullBlob(ctx, repo, monoD, newContentVerifier(cfg.Seed, "blob-monolithic", size))
		if err == nil && n != size {
			err = fmt.Errorf("pulled %d bytes, want %d: %w", n, size, ErrDigestMismatch)
		}
		return err
	})
}

// image is one small image of the workload, fully described before timing.
type image struct {
	tag            string
	layers         []digest.Digest
	layerLabels    []string
	config         []byte
	configD        digest.Digest
	manifest       []byte
	manifestDigest digest.Digest
}

type descriptor struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

func makeImage(seed uint64, i int) image {
	im := image{tag: fmt.Sprintf("img-%04d", i)}
	for j := range LayersPerImage {
		label := fmt.Sprintf("image-%d-layer-%d", i, j)
		im.layerLabels = append(im.layerLabels, label)
		im.layers = append(im.layers, ContentDigest(seed, label, LayerSize))
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Labels": map[string]string{"berth.bench.seed": fmt.Sprint(seed), "berth.bench.image": im.tag}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": im.layers},
	})
	im.config, im.configD = cfg, digest.FromBytes(cfg)
	m := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}{SchemaVersion: 2, MediaType: mediaTypeManifest, Config: descriptor{mediaTypeConfig, im.configD, int64(len(cfg))}}
	for _, d := range im.layers {
		m.Layers = append(m.Layers, descriptor{mediaTypeLayer, d, LayerSize})
	}
	im.manifest, _ = json.Marshal(m)
	im.manifestDigest = digest.FromBytes(im.manifest)
	return im
}

func (r *runner) pushImage(ctx context.Context, repo string, im *image) error {
	for j, d := range im.layers {
		if err := r.c.pushMonolithic(ctx, repo, d, NewContent(r.cfg.Seed, im.layerLabels[j], LayerSize), LayerSize); err != nil {
			return err
		}
	}
	if err := r.c.pushMonolithic(ctx, repo, im.configD, bytesReader(im.config), int64(len(im.config))); err != nil {
		return err
	}
	return r.c.putManifest(ctx, repo, im.tag, im.manifest)
}

func (r *runner) pullImage(ctx context.Context, repo string, im *image) error {
	m, err := r.c.getManifest(ctx, repo, im.tag, im.manifestDigest)
	if err != nil {
		return err
	}
	var parsed struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	if err := json.Unmarshal(m, &parsed); err != nil {
		return fmt.Errorf("manifest %s:%s: %w", repo, im.tag, err)
	}
	if parsed.Config.Digest != im.configD || len(parsed.Layers) != len(im.layers) {
		return fmt.Errorf("manifest %s:%s: not the one pushed: %w", repo, im.tag, ErrDigestMismatch)
	}
	if _, err := r.c.pullBlob(ctx, repo, im.configD, newDigestVerifier(im.configD)); err != nil {
		return err
	}
	for j, d := range parsed.Layers {
		if d.Digest != im.layers[j] {
			return fmt.Errorf("manifest %s:%s: layer %d is %s, pushed %s: %w", repo, im.tag, j, d.Digest, im.layers[j], ErrDigestMismatch)
		}
		if _, err := r.c.pullBlob(ctx, repo, d.Digest, newContentVerifier(r.cfg.Seed, im.layerLabels[j], LayerSize)); err != nil {
			return err
		}
	}
	return nil
}

// forEachImage runs f over every image with n workers and returns the
// elapsed time and each image's latency.
func forEachImage(ctx context.Context, images []image, n int, f func(context.Context, *image) error) (time.Duration, []time.Duration, error) {
	lat := make([]time.Duration, len(images))
	next := atomic.Int64{}
	var mism atomic.Bool
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range n {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(images) {
					return nil
				}
				t := time.Now()
				if err := f(gctx, &images[i]); err != nil {
					if !errors.Is(err, ErrDigestMismatch) {
						return err
					}
					mism.Store(true)
				}
				lat[i] = time.Since(t)
			}
		})
	}
	err := g.Wait()
	el := time.Since(start)
	if err == nil && mism.Load() {
		err = ErrDigestMismatch
	}
	return el, lat, err
}

func ratePhase(count int64, el time.Duration, lat []time.Duration, ok bool, srv *ServerUsage) RatePhase {
	return RatePhase{
		Count: count, Seconds: el.Seconds(), PerSec: perSec(count, el),
		P50Ms: ms(Percentile(lat, 50)), P99Ms: ms(Percentile(lat, 99)),
		DigestOK: ok, Server: srv,
	}
}

func (r *runner) smallImages(ctx context.Context, rep *Report) error {
	cfg := r.cfg
	repo := cfg.Repo + "/images"
	r.progress("describing %d images (not timed)", cfg.Images)
	images := make([]image, cfg.Images)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(images); i = int(next.Add(1)) - 1 {
				images[i] = makeImage(cfg.Seed, i)
			}
		})
	}
	wg.Wait()

	for _, p := range []struct {
		name string
		out  *RatePhase
		f    func(context.Context, *image) error
	}{
		{"images push", &rep.ImagesPush, func(ctx context.Context, im *image) error { return r.pushImage(ctx, repo, im) }},
		{"images pull", &rep.ImagesPull, func(ctx context.Context, im *image) error { return r.pullImage(ctx, repo, im) }},
	} {
		var el time.Duration
		var lat []time.Duration
		srv, ok, err := r.phase(fmt.Sprintf("%s: %d images, %d workers", p.name, cfg.Images, cfg.Workers), func() error {
			var err error
			el, lat, err = forEachImage(ctx, images, cfg.Workers, p.f)
			return err
		})
		if err != nil {
			return err
		}
		*p.out = ratePhase(int64(len(images)), el, lat, ok, srv)
	}

	var count atomic.Int64
	var el time.Duration
	var lat []time.Duration
	srv, ok, err := r.phase(fmt.Sprintf("manifest get: %d workers for %s", cfg.ManifestWorkers, cfg.ManifestDuration), func() error {
		dctx, cancel := context.WithTimeout(ctx, cfg.ManifestDuration)
		defer cancel()
		perWorker := make([][]time.Duration, cfg.ManifestWorkers)
		var mu sync.Mutex
		var firstErr error
		var mism atomic.Bool
		var wg sync.WaitGroup
		start := time.Now()
		for w := range cfg.ManifestWorkers {
			wg.Go(func() {
				for k := w; dctx.Err() == nil; k += cfg.ManifestWorkers {
					im := &images[k%len(images)]
					t := time.Now()
					_, err := r.c.getManifest(dctx, repo, im.tag, im.manifestDigest)
					if dctx.Err() != nil {
						return // cut off by the deadline: not a sample
					}
					if err != nil && !errors.Is(err, ErrDigestMismatch) {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						cancel()
						return
					}
					if err != nil {
						mism.Store(true)
					}
					perWorker[w] = append(perWorker[w], time.Since(t))
					count.Add(1)
				}
			})
		}
		wg.Wait()
		el = time.Since(start)
		for _, l := range perWorker {
			lat = append(lat, l...)
		}
		if firstErr == nil && mism.Load() {
			return ErrDigestMismatch
		}
		return firstErr
	})
	if err != nil {
		return err
	}
	rep.ManifestGet = ratePhase(count.Load(), el, lat, ok, srv)
	return nil
}
