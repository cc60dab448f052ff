package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth-registry/berth/internal/units"
)

// Options tune a Copier. The zero value copies every platform and the
// referrers, four images and eight blobs at a time.
type Options struct {
	// Jobs is how many images are copied at once (default 4).
	Jobs int
	// BlobJobs is how many blobs are in flight across all images (default 8).
	BlobJobs int
	// PerRegistry caps blob transfers touching one registry (default 6).
	PerRegistry int
	// Retry bounds retries of every registry operation (default 5 attempts).
	Retry RetryPolicy
	// Platforms, when set, keeps only these index entries; the rewritten
	// index has a new digest, which the Result reports.
	Platforms []v1.Platform
	// NoReferrers skips signatures, attestations and other referrers.
	NoReferrers bool
	// Observer receives progress events; nil means none.
	Observer Observer
	// Log receives warnings (nil: discarded).
	Log *slog.Logger
}

// Job is one image to copy: Source/SrcRepo/SrcRef to Target/DstRepo, tagged
// DstTag (empty: pushed by digest only).
type Job struct {
	Source  Source
	SrcRepo string
	SrcRef  string
	Target  Target
	DstRepo string
	DstTag  string
	// From and To name the image in results; defaults are derived.
	From, To string
}

// Result is what happened to one Job; it is one entry of the --report JSON.
type Result struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// Digest is the digest written at the destination.
	Digest    string `json:"digest,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
	// SourceDigest differs from Digest only when a platform filter rewrote
	// an index.
	SourceDigest string `json:"sourceDigest,omitempty"`
	// UpToDate: the destination already had this digest under this tag.
	UpToDate         bool     `json:"upToDate,omitempty"`
	ManifestsWritten int      `json:"manifestsWritten"`
	Referrers        int      `json:"referrers"`
	BlobsCopied      int      `json:"blobsCopied"`
	BlobsSkipped     int      `json:"blobsSkipped"`
	BlobsMounted     int      `json:"blobsMounted"`
	BlobsShared      int      `json:"blobsShared"`
	Bytes            int64    `json:"bytes"`
	Seconds          float64  `json:"seconds"`
	Notes            []string `json:"notes,omitempty"`
	Error            string   `json:"error,omitempty"`

	mu        sync.Mutex
	referrers map[v1.Hash]bool
}

func (r *Result) add(f func(*Result)) {
	r.mu.Lock()
	f(r)
	r.mu.Unlock()
}

// Summary totals a run.
type Summary struct {
	Images       int           `json:"images"`
	Failed       int           `json:"failed"`
	BlobsCopied  int           `json:"blobsCopied"`
	BlobsSkipped int           `json:"blobsSkipped"`
	BlobsMounted int           `json:"blobsMounted"`
	BlobsShared  int           `json:"blobsShared"`
	Manifests    int           `json:"manifestsWritten"`
	Referrers    int           `json:"referrers"`
	Bytes        int64         `json:"bytes"`
	Duration     time.Duration `json:"-"`
	Seconds      float64       `json:"seconds"`
	Results      []*Result     `json:"results"`
}

// String is the one-paragraph end-of-run summary.
func (s *Summary) String() string {
	mibs := 0.0
	if s.Duration > 0 {
		mibs = float64(s.Bytes) / (1 << 20) / s.Duration.Seconds()
	}
	return fmt.Sprintf("%d images (%d failed), %d manifests and %d referrers written; blobs: %d copied, %d already there, %d mounted, %d shared between images; %s in %s (%.1f MiB/s)",
		s.Images, s.Failed, s.Manifests, s.Referrers, s.BlobsCopied, s.BlobsSkipped, s.BlobsMounted, s.BlobsShared,
		units.FormatBytes(s.Bytes), s.Duration.Round(time.Millisecond), mibs)
}

// Err lists every failed image, or returns nil.
func (s *Summary) Err() error {
	var errs []error
	for _, r := range s.Results {
		if r.Error != "" {
			errs = append(errs, fmt.Errorf("%s -> %s: %s", r.Source, r.Destination, r.Error))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d images failed:\n%w", len(errs), s.Images, errors.Join(errs...))
}

// EventKind says what an Event reports.
type EventKind int

// The progress events, in the order they happen for one image.
const (
	ImageStarted EventKind = iota
	BlobStarted
	BlobProgress
	BlobDone
	ImageDone
)

// Event is one progress report. Image is the Job's From; Blob events carry
// the digest, Size is the blob size, N the bytes moved since the last event.
type Event struct {
	Kind   EventKind
	Image  string
	Digest v1.Hash
	Size   int64
	N      int64
	Result *Result // ImageDone only
}

// Observer receives progress events from many goroutines at once.
type Observer interface {
	Observe(Event)
}

// Progress is a snapshot of a running Copier, for periodic progress lines.
type Progress struct {
	ImagesDone, ImagesTotal int64
	Bytes                   int64
	BlobsDone               int64
}

// Copier copies images. One Copier deduplicates blobs across all the jobs
// it runs, so use one per run.
type Copier struct {
	opts Options

	blobSem chan struct{}
	mu      sync.Mutex
	hostSem map[string]chan struct{}
	flights map[string]*flight

	imagesDone, imagesTotal, bytes, blobsDone atomic.Int64
}

// sourceNoter is a Target that records where each top-level image came from.
type sourceNoter interface {
	NoteSource(ctx context.Context, repo, ref string, m *Manifest, source string) error
}

// flight is one blob being put into one target; later users wait for it.
type flight struct {
	done chan struct{}
	repo string
	err  error
}

// NewCopier returns a Copier with opts' defaults filled in.
func NewCopier(opts Options) *Copier {
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	if opts.BlobJobs <= 0 {
		opts.BlobJobs = 8
	}
	if opts.PerRegistry <= 0 {
		opts.PerRegistry = 6
	}
	if opts.Retry.Attempts == 0 {
		opts.Retry = defaultRetry
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Copier{
		opts:    opts,
		blobSem: make(chan struct{}, opts.BlobJobs),
		hostSem: map[string]chan struct{}{},
		flights: map[string]*flight{},
	}
}

// Progress returns the counters so far.
func (c *Copier) Progress() Progress {
	return Progress{ImagesDone: c.imagesDone.Load(), ImagesTotal: c.imagesTotal.Load(), Bytes: c.bytes.Load(), BlobsDone: c.blobsDone.Load()}
}

func (c *Copier) observe(e Event) {
	if c.opts.Observer != nil {
		c.opts.Observer.Observe(e)
	}
}

// Run copies every job, opts.Jobs at a time, and returns the per-image
// results; a failed image does not stop the others. It flushes targets
// that need it (OCI layouts) at the end.
func (c *Copier) Run(ctx context.Context, jobs []Job) *Summary {
	start := time.Now()
	c.imagesTotal.Add(int64(len(jobs)))
	results := make([]*Result, len(jobs))
	sem := make(chan struct{}, c.opts.Jobs)
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				j := jobs[i]
				results[i] = &Result{Source: j.from(), Destination: j.to(), Error: ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			results[i] = c.Copy(ctx, jobs[i])
		}()
	}
	wg.Wait()
	s := &Summary{Images: len(jobs), Results: results}
	closed := map[Target]bool{}
	for _, j := range jobs {
		if cl, ok := j.Target.(Closer); ok && !closed[j.Target] {
			closed[j.Target] = true
			if err := cl.Close(); err != nil {
				s.Failed++
				s.Results = append(s.Results, &Result{Destination: j.Target.Name(), Error: err.Error()})
			}
		}
	}
	for _, r := range results {
		if r.Error != "" {
			s.Failed++
		}
		s.BlobsCopied += r.BlobsCopied
		s.BlobsSkipped += r.BlobsSkipped
		s.BlobsMounted += r.BlobsMounted
		s.BlobsShared += r.BlobsShared
		s.Manifests += r.ManifestsWritten
		s.Referrers += r.Referrers
		s.Bytes += r.Bytes
	}
	s.Duration = time.Since(start)
	s.Seconds = s.Duration.Seconds()
	return s
}

func (j Job) from() string {
	if j.From != "" {
		return j.From
	}
	return refString(j.Source.Name(), j.SrcRepo, j.SrcRef)
}

func (j Job) to() string {
	if j.To != "" {
		return j.To
	}
	return refString(j.Target.Name(), j.DstRepo, j.DstTag)
}

func refString(host, repo, ref string) string {
	s := host + "/" + repo
	if strings.HasPrefix(host, "oci:") {
		s = host + ":" + repo
	}
	switch {
	case ref == "":
	case strings.Contains(ref, ":"):
		s += "@" + ref
	default:
		s += ":" + ref
	}
	return s
}

// Copy copies one image (with all its platforms and referrers).
func (c *Copier) Copy(ctx context.Context, j Job) *Result {
	start := time.Now()
	res := &Result{Source: j.from(), Destination: j.to()}
	c.observe(Event{Kind: ImageStarted, Image: res.Source})
	err := c.copyImage(ctx, j, res)
	if err != nil {
		res.Error = err.Error()
	}
	res.Seconds = time.Since(start).Seconds()
	c.imagesDone.Add(1)
	c.observe(Event{Kind: ImageDone, Image: res.Source, Result: res})
	return res
}

func (c *Copier) copyImage(ctx context.Context, j Job, res *Result) error {
	var m *Manifest
	err := retry(ctx, c.opts.Retry, func() error {
		var err error
		m, err = j.Source.GetManifest(ctx, j.SrcRepo, j.SrcRef)
		return err
	})
	if err != nil {
		return fmt.Errorf("reading source manifest: %w", err)
	}
	res.SourceDigest = m.Digest.String()
	if len(c.opts.Platforms) > 0 && isIndex(m.MediaType) {
		fm, kept, err := filterIndex(m, c.opts.Platforms)
		if err != nil {
			return err
		}
		if fm.Digest != m.Digest {
			res.Notes = append(res.Notes, fmt.Sprintf("platform filter kept %d entries: the index at the destination has a NEW digest %s (source index %s); references pinned to the source digest will not resolve there", kept, fm.Digest, m.Digest))
		}
		m = fm
	}
	res.Digest = m.Digest.String()
	res.MediaType = m.MediaType
	ref := j.DstTag
	if ref == "" {
		ref = m.Digest.String()
	}
	// Already there under the same name: nothing to copy but referrers.
	var have v1.Hash
	var ok bool
	err = retry(ctx, c.opts.Retry, func() error {
		var err error
		have, ok, err = j.Target.ManifestDigest(ctx, j.DstRepo, ref)
		return err
	})
	if err != nil {
		return fmt.Errorf("checking destination: %w", err)
	}
	if ok && have == m.Digest {
		res.UpToDate = true
	} else if err := c.copyTree(ctx, j, m, ref, res); err != nil {
		return err
	}
	if sn, ok := j.Target.(sourceNoter); ok {
		if err := sn.NoteSource(ctx, j.DstRepo, ref, m, res.Source); err != nil {
			return err
		}
	}
	if c.opts.NoReferrers {
		return nil
	}
	return c.copyReferrers(ctx, j, m, res, 0)
}

// copyTree puts everything m references, then m itself under ref.
// A child the target already holds by digest is skipped by the caller: a
// registry has all content of a manifest it accepted.
func (c *Copier) copyTree(ctx context.Context, j Job, m *Manifest, ref string, res *Result) error {
	g, gctx := errgroup.WithContext(ctx)
	switch {
	case isIndex(m.MediaType):
		var idx v1.IndexManifest
		if err := json.Unmarshal(m.Raw, &idx); err != nil {
			return fmt.Errorf("index %s: %w", m.Digest, err)
		}
		for _, d := range idx.Manifests {
			g.Go(func() error {
				var child *Manifest
				err := retry(gctx, c.opts.Retry, func() error {
					// Check first: a child already at the target is not fetched.
					if _, ok, err := j.Target.ManifestDigest(gctx, j.DstRepo, d.Digest.String()); err == nil && ok {
						child = nil
						return nil
					}
					var err error
					child, err = j.Source.GetManifest(gctx, j.SrcRepo, d.Digest.String())
					return err
				})
				if err != nil || child == nil {
					return err
				}
				return c.copyTree(gctx, j, child, d.Digest.String(), res)
			})
		}
	default:
		var im v1.Manifest
		if err := json.Unmarshal(m.Raw, &im); err != nil {
			return fmt.Errorf("manifest %s: %w", m.Digest, err)
		}
		if im.SchemaVersion == 1 {
			return fmt.Errorf("manifest %s: Docker schema 1 manifests are not supported", m.Digest)
		}
		blobs := append([]v1.Descriptor{im.Config}, im.Layers...)
		for _, d := range blobs {
			if len(d.URLs) > 0 {
				// Foreign (non-distributable) layers stay where they are.
				res.add(func(r *Result) { r.Notes = append(r.Notes, "foreign layer "+d.Digest.String()+" not copied") })
				continue
			}
			if d.Digest.Hex == "" {
				continue
			}
			g.Go(func() error { return c.copyBlob(gctx, j, d, res) })
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	err := retry(ctx, c.opts.Retry, func() error { return j.Target.PutManifest(ctx, j.DstRepo, ref, m) })
	if err != nil {
		return fmt.Errorf("writing manifest %s: %w", m.Digest, err)
	}
	res.add(func(r *Result) { r.ManifestsWritten++ })
	return nil
}

const maxReferrerDepth = 3

// copyReferrers copies what refers to m (and, for an index, to each of its
// entries), recursively: a signature of an SBOM travels too.
func (c *Copier) copyReferrers(ctx context.Context, j Job, m *Manifest, res *Result, depth int) error {
	if depth >= maxReferrerDepth {
		return nil
	}
	subjects := []v1.Hash{m.Digest}
	if res.SourceDigest != "" && depth == 0 && res.SourceDigest != m.Digest.String() {
		if h, err := v1.NewHash(res.SourceDigest); err == nil {
			subjects = append(subjects, h)
		}
	}
	if isIndex(m.MediaType) {
		var idx v1.IndexManifest
		if json.Unmarshal(m.Raw, &idx) == nil {
			for _, d := range idx.Manifests {
				subjects = append(subjects, d.Digest)
			}
		}
	}
	for _, s := range subjects {
		var refs []Referrer
		err := retry(ctx, c.opts.Retry, func() error {
			var err error
			refs, err = j.Source.Referrers(ctx, j.SrcRepo, s)
			return err
		})
		if err != nil {
			return fmt.Errorf("listing referrers of %s: %w", s, err)
		}
		for _, r := range refs {
			ref := r.Tag
			if ref == "" {
				ref = r.Descriptor.Digest.String()
			}
			have, ok, err := j.Target.ManifestDigest(ctx, j.DstRepo, ref)
			if err == nil && ok && have == r.Descriptor.Digest {
				continue
			}
			var rm *Manifest
			err = retry(ctx, c.opts.Retry, func() error {
				var err error
				rm, err = j.Source.GetManifest(ctx, j.SrcRepo, r.Descriptor.Digest.String())
				return err
			})
			if err != nil {
				return fmt.Errorf("reading referrer %s: %w", r.Descriptor.Digest, err)
			}
			if err := c.copyTree(ctx, j, rm, ref, res); err != nil {
				return fmt.Errorf("copying referrer %s: %w", r.Descriptor.Digest, err)
			}
			res.add(func(r *Result) {
				if r.referrers == nil {
					r.referrers = map[v1.Hash]bool{}
				}
				if !r.referrers[rm.Digest] {
					r.referrers[rm.Digest] = true
					r.Referrers++
				}
			})
			if err := c.copyReferrers(ctx, j, rm, res, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyBlob makes d present in the target repository: skipped when there,
// shared when another image of this run already put it in the same
// repository, mounted when it lives in another repository of the same
// registry, otherwise streamed once.
func (c *Copier) copyBlob(ctx context.Context, j Job, d v1.Descriptor, res *Result) error {
	key := j.Target.Name() + "\x00" + d.Digest.String()
	c.mu.Lock()
	f, waiting := c.flights[key]
	if !waiting {
		f = &flight{done: make(chan struct{})}
		c.flights[key] = f
	}
	c.mu.Unlock()
	if waiting {
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if f.err == nil {
			if f.repo == j.DstRepo {
				res.add(func(r *Result) { r.BlobsShared++ })
				c.blobsDone.Add(1)
				return nil
			}
			if mt, ok := j.Target.(Mounter); ok {
				if mounted, err := mt.MountBlob(ctx, j.DstRepo, f.repo, d); err == nil && mounted {
					res.add(func(r *Result) { r.BlobsMounted++ })
					c.blobsDone.Add(1)
					return nil
				}
			}
		}
		// The first attempt failed or could not be reused: do it ourselves.
		return c.putBlob(ctx, j, d, res)
	}
	err := c.putBlob(ctx, j, d, res)
	f.repo, f.err = j.DstRepo, err
	if err != nil {
		c.mu.Lock()
		delete(c.flights, key)
		c.mu.Unlock()
	}
	close(f.done)
	return err
}

func (c *Copier) putBlob(ctx context.Context, j Job, d v1.Descriptor, res *Result) error {
	defer c.blobsDone.Add(1)
	var have bool
	err := retry(ctx, c.opts.Retry, func() error {
		var err error
		have, err = j.Target.HasBlob(ctx, j.DstRepo, d)
		return err
	})
	if err != nil {
		return fmt.Errorf("checking blob %s: %w", d.Digest, err)
	}
	if have {
		res.add(func(r *Result) { r.BlobsSkipped++ })
		return nil
	}
	if mt, ok := j.Target.(Mounter); ok && j.Source.Name() == j.Target.Name() && j.SrcRepo != j.DstRepo {
		if mounted, err := mt.MountBlob(ctx, j.DstRepo, j.SrcRepo, d); err == nil && mounted {
			res.add(func(r *Result) { r.BlobsMounted++ })
			return nil
		}
	}
	release, err := c.acquire(ctx, j.Source.Name(), j.Target.Name())
	if err != nil {
		return err
	}
	defer release()
	c.observe(Event{Kind: BlobStarted, Image: res.Source, Digest: d.Digest, Size: d.Size})
	var moved int64
	vs, ok := j.Source.(verifiedSource)
	trusted := ok && vs.verified(d)
	files, srcFiles := j.Source.(BlobFiler)
	fp, dstFiles := j.Target.(FilePutter)
	// Verified bytes go from the file to the socket as they are
	// (sendfile), not through a buffer; progress comes when the blob is
	// done, which at this size is soon.
	direct := trusted && srcFiles && dstFiles && d.Size > 0 && d.Size <= directMax
	err = retry(ctx, c.opts.Retry, func() error {
		if direct {
			f, err := files.OpenBlobFile(ctx, j.SrcRepo, d)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := fp.PutBlobFile(ctx, j.DstRepo, d, f); err != nil {
				return err
			}
			moved += d.Size
			c.bytes.Add(d.Size)
			c.observe(Event{Kind: BlobProgress, Image: res.Source, Digest: d.Digest, Size: d.Size, N: d.Size})
			return nil
		}
		rc, err := j.Source.OpenBlob(ctx, j.SrcRepo, d)
		if err != nil {
			return err
		}
		defer rc.Close()
		vr := &verifyingReader{r: rc, d: d, onRead: func(n int) {
			moved += int64(n)
			c.bytes.Add(int64(n))
			c.observe(Event{Kind: BlobProgress, Image: res.Source, Digest: d.Digest, Size: d.Size, N: int64(n)})
		}}
		// Hash on the way unless the source hashed these very bytes
		// itself (see doc.go: what is verified once, and where).
		if !trusted {
			vr.h = sha256.New()
		}
		err = j.Target.PutBlob(ctx, j.DstRepo, d, vr)
		if err != nil && vr.mismatch != nil {
			// Our own check and the destination's may both refuse the
			// bytes, in either order; ours names the source's fault.
			return vr.mismatch
		}
		return err
	})
	c.observe(Event{Kind: BlobDone, Image: res.Source, Digest: d.Digest, Size: d.Size})
	res.add(func(r *Result) { r.Bytes += moved })
	if err != nil {
		return fmt.Errorf("copying blob %s: %w", d.Digest, err)
	}
	res.add(func(r *Result) { r.BlobsCopied++ })
	return nil
}

// directMax is the largest verified layout blob pushed straight from its
// file; bigger ones stream through a counting reader so progress bars move.
const directMax = 64 << 20

// acquire takes a global blob slot and one slot per registry involved, in
// name order so two transfers never wait on each other.
func (c *Copier) acquire(ctx context.Context, hosts ...string) (func(), error) {
	sort.Strings(hosts)
	var held []chan struct{}
	release := func() {
		for _, s := range held {
			<-s
		}
	}
	take := func(s chan struct{}) error {
		select {
		case s <- struct{}{}:
			held = append(held, s)
			return nil
		case <-ctx.Done():
			release()
			return ctx.Err()
		}
	}
	if err := take(c.blobSem); err != nil {
		return nil, err
	}
	for i, h := range hosts {
		if i > 0 && hosts[i-1] == h {
			continue
		}
		c.mu.Lock()
		s, ok := c.hostSem[h]
		if !ok {
			s = make(chan struct{}, c.opts.PerRegistry)
			c.hostSem[h] = s
		}
		c.mu.Unlock()
		if err := take(s); err != nil {
			return nil, err
		}
	}
	return release, nil
}

// ErrDigestMismatch reports content that does not hash to its digest.
var ErrDigestMismatch = errors.New("content does not match its digest")

// verifiedSource is a Source that can vouch for some of its blobs: this
// process hashed their bytes when it stored them, so reading them back to
// push them need not hash them again.
type verifiedSource interface {
	verified(d v1.Descriptor) bool
}

// digestChecker is a reader that fails at EOF unless what it delivered
// hashes to checks()'s digest with its size: a Target that reads it to EOF
// before committing the blob need not hash the bytes a second time.
type digestChecker interface {
	io.Reader
	checks() (v1.Descriptor, bool)
}

// verifyingReader hashes what passes through and fails at EOF when the
// bytes do not match the descriptor. With h nil it only counts and checks
// the size (a blob its source already verified).
type verifyingReader struct {
	r      io.Reader
	d      v1.Descriptor
	h      hash.Hash
	n      int64
	onRead func(int)
	// mismatch is the error Read returned at EOF when the bytes did not
	// match d, kept so a failure elsewhere can be traced back to it.
	mismatch error
}

var _ digestChecker = (*verifyingReader)(nil)

// checks implements digestChecker: only a hashing reader vouches for the
// digest.
func (v *verifyingReader) checks() (v1.Descriptor, bool) {
	return v.d, v.h != nil && v.d.Digest.Algorithm == "sha256"
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	if n > 0 {
		if v.h != nil {
			v.h.Write(p[:n])
		}
		v.n += int64(n)
		if v.onRead != nil {
			v.onRead(n)
		}
	}
	if err == io.EOF {
		if v.d.Size > 0 && v.n != v.d.Size {
			v.mismatch = fmt.Errorf("blob %s: got %d bytes, want %d: %w", v.d.Digest, v.n, v.d.Size, ErrDigestMismatch)
			return n, v.mismatch
		}
		if v.h == nil {
			return n, err
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); v.d.Digest.Algorithm == "sha256" && got != v.d.Digest.Hex {
			v.mismatch = fmt.Errorf("blob %s: content hashes to sha256:%s: %w", v.d.Digest, got, ErrDigestMismatch)
			return n, v.mismatch
		}
	}
	return n, err
}

// filterIndex keeps the entries of an index matching one of platforms.
// Entries without a platform (attestations, artifacts) are dropped too.
func filterIndex(m *Manifest, platforms []v1.Platform) (*Manifest, int, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(m.Raw, &doc); err != nil {
		return nil, 0, fmt.Errorf("index %s: %w", m.Digest, err)
	}
	var entries []v1.Descriptor
	if err := json.Unmarshal(doc["manifests"], &entries); err != nil {
		return nil, 0, fmt.Errorf("index %s: %w", m.Digest, err)
	}
	var raws []json.RawMessage
	_ = json.Unmarshal(doc["manifests"], &raws)
	var kept []json.RawMessage
	for i, e := range entries {
		if e.Platform == nil {
			continue
		}
		for _, p := range platforms {
			if e.Platform.OS == p.OS && e.Platform.Architecture == p.Architecture && (p.Variant == "" || p.Variant == e.Platform.Variant) {
				kept = append(kept, raws[i])
				break
			}
		}
	}
	if len(kept) == 0 {
		return nil, 0, fmt.Errorf("index %s has no entry for the requested platforms", m.Digest)
	}
	if len(kept) == len(entries) {
		return m, len(kept), nil
	}
	doc["manifests"], _ = json.Marshal(kept)
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, 0, err
	}
	fm, err := newManifest(raw, m.MediaType, "")
	return fm, len(kept), err
}

// ParsePlatform reads os/arch[/variant].
func ParsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant], e.g. linux/arm64 or linux/arm/v7", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// ParsePlatforms reads a list of os/arch[/variant].
func ParsePlatforms(ss []string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, s := range ss {
		p, err := ParsePlatform(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
