package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Upstream is a pull-through cache's client of one upstream registry: the
// few reads a cache needs (manifest HEAD and GET, a streamed blob GET,
// referrers), each bounded by a timeout that covers the wait for the
// answer, not the length of a body. It shares Registry's authentication
// (token flow, credentials from an auths file) and TLS settings, and never
// retries: a cache serves what it holds rather than keep a client waiting.
type Upstream struct {
	reg     *Registry
	base    string // scheme://host[:port]
	timeout time.Duration
}

// UpstreamOptions configure an Upstream.
type UpstreamOptions struct {
	// URL is the registry's base URL, https://host[:port] (http only with
	// Insecure).
	URL string
	// AuthFile is an auths JSON file with credentials (empty: anonymous).
	AuthFile string
	// CAFile is an extra PEM bundle trusted for the registry.
	CAFile string
	// Insecure allows plain HTTP and skips certificate verification.
	Insecure bool
	// Timeout bounds each request until its answer starts, and any pause
	// while reading a body; zero means 30s.
	Timeout time.Duration
	// Log receives which credentials are used (never the secret).
	Log *slog.Logger
}

// UpstreamManifest is a manifest's description as an upstream answers a
// HEAD or GET: Raw is nil for a HEAD.
type UpstreamManifest struct {
	Digest    string
	MediaType string
	Size      int64
	Raw       []byte
}

// UpstreamDescriptor is one referrer as an upstream lists it.
type UpstreamDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// NewUpstream builds the client; the CA and auth files must load.
func NewUpstream(opts UpstreamOptions) (*Upstream, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q: not a registry base URL like https://quay.io", opts.URL)
	}
	if u.Scheme == "http" && !opts.Insecure {
		return nil, fmt.Errorf("upstream %s: plain HTTP needs insecure", opts.URL)
	}
	copts := ClientOptions{Insecure: map[string]bool{u.Host: opts.Insecure}}
	if opts.CAFile != "" {
		copts.CAFiles = []string{opts.CAFile}
	}
	if opts.AuthFile != "" {
		if _, err := os.Stat(opts.AuthFile); err != nil {
			return nil, fmt.Errorf("upstream %s: authFile: %w", opts.URL, err)
		}
		kc := NewFileKeychain([]string{opts.AuthFile}, true, opts.Log)
		if err := kc.Err(); err != nil {
			return nil, fmt.Errorf("upstream %s: %w", opts.URL, err)
		}
		copts.Keychain = kc
	}
	c, err := NewClient(copts)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", opts.URL, err)
	}
	reg, err := c.Registry(u.Host)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	return &Upstream{reg: reg, base: u.Scheme + "://" + u.Host, timeout: opts.Timeout}, nil
}

// Host is the upstream's host[:port].
func (u *Upstream) Host() string { return u.reg.Name() }

func (u *Upstream) url(repo, kind, ref string) string {
	return u.base + "/v2/" + repo + "/" + kind + "/" + ref
}

// send runs req and returns once its answer has started, or fails when
// that takes longer than the timeout. The returned body keeps the request
// alive; a read that waits longer than the timeout fails it. Any status
// other than want is returned as *HTTPError.
func (u *Upstream) send(ctx context.Context, repo string, req *http.Request, want int) (*http.Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	stall := newStallTimer(u.timeout, cancel)
	resp, err := u.reg.do(ctx, repo, false, req)
	if err != nil {
		stall.stop()
		cancel()
		if ctx.Err() != nil && !stall.fired() {
			return nil, err
		}
		if stall.fired() {
			return nil, fmt.Errorf("%s %s: no answer within %s: %w", req.Method, req.URL.Redacted(), u.timeout, context.DeadlineExceeded)
		}
		return nil, err
	}
	if resp.StatusCode != want {
		defer cancel()
		defer stall.stop()
		defer resp.Body.Close()
		return nil, httpError(resp)
	}
	stall.kick()
	resp.Body = &stallReader{rc: resp.Body, t: stall, cancel: cancel}
	return resp, nil
}

// HeadManifest asks for ref's digest, media type and size without the body.
func (u *Upstream) HeadManifest(ctx context.Context, repo, ref string) (*UpstreamManifest, error) {
	req, _ := http.NewRequest(http.MethodHead, u.url(repo, "manifests", ref), nil)
	req.Header.Set("Accept", manifestAccept)
	resp, err := u.send(ctx, repo, req, http.StatusOK)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	m := &UpstreamManifest{Digest: resp.Header.Get("Docker-Content-Digest"), MediaType: resp.Header.Get("Content-Type"), Size: resp.ContentLength}
	if m.Digest == "" && strings.Contains(ref, ":") {
		m.Digest = ref
	}
	return m, nil
}

// GetManifest fetches ref; its digest is computed from the bytes (and
// checked when ref is a digest), never taken from a header.
func (u *Upstream) GetManifest(ctx context.Context, repo, ref string) (*UpstreamManifest, error) {
	req, _ := http.NewRequest(http.MethodGet, u.url(repo, "manifests", ref), nil)
	req.Header.Set("Accept", manifestAccept)
	resp, err := u.send(ctx, repo, req, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20+1))
	if err != nil {
		return nil, fmt.Errorf("%s/%s@%s: %w", u.Host(), repo, ref, err)
	}
	if len(raw) > 4<<20 {
		return nil, fmt.Errorf("%s/%s@%s: manifest larger than 4 MiB", u.Host(), repo, ref)
	}
	want := ""
	if strings.Contains(ref, ":") {
		want = ref
	}
	m, err := newManifest(raw, resp.Header.Get("Content-Type"), want)
	if err != nil {
		return nil, fmt.Errorf("%s/%s@%s: %w", u.Host(), repo, ref, err)
	}
	return &UpstreamManifest{Digest: m.Digest.String(), MediaType: m.MediaType, Size: int64(len(raw)), Raw: raw}, nil
}

// GetBlob starts streaming blob d; size is the upstream's Content-Length
// (-1 when it sent none). The caller hashes what it reads.
func (u *Upstream) GetBlob(ctx context.Context, repo, d string) (io.ReadCloser, int64, error) {
	req, _ := http.NewRequest(http.MethodGet, u.url(repo, "blobs", d), nil)
	resp, err := u.send(ctx, repo, req, http.StatusOK)
	if err != nil {
		return nil, 0, err
	}
	return resp.Body, resp.ContentLength, nil
}

// Referrers lists the manifests whose subject is d: those of the OCI
// referrers API when the upstream has it, and always those of the tag
// schemes (the sha256-<hex> index and cosign's sha256-<hex>.sig/.att/.sbom
// tags), which upstreams without the API and older signing tools use.
// tags are the referrer tags found, so the cache can offer them too.
func (u *Upstream) Referrers(ctx context.Context, repo, d string) (list []UpstreamDescriptor, tags []string, err error) {
	list = []UpstreamDescriptor{}
	seen := map[string]bool{}
	add := func(x UpstreamDescriptor) {
		if !seen[x.Digest] {
			seen[x.Digest] = true
			list = append(list, x)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, u.url(repo, "referrers", d), nil)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
	resp, err := u.send(ctx, repo, req, http.StatusOK)
	var he *HTTPError
	switch {
	case err == nil && strings.Contains(resp.Header.Get("Content-Type"), "json"):
		var idx struct {
			Manifests []UpstreamDescriptor `json:"manifests"`
		}
		err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&idx)
		resp.Body.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("referrers of %s/%s@%s: %w", u.Host(), repo, d, err)
		}
		for _, x := range idx.Manifests {
			add(x)
		}
	case err == nil:
		resp.Body.Close()
	case errors.As(err, &he) && he.StatusCode == http.StatusNotFound:
	default:
		return nil, nil, err
	}
	all, err := u.tags(ctx, repo)
	if err != nil {
		return nil, nil, err
	}
	alg, hex, _ := strings.Cut(d, ":")
	prefix := alg + "-" + hex
	for _, t := range all {
		if t != prefix && !strings.HasPrefix(t, prefix+".") {
			continue
		}
		m, err := u.GetManifest(ctx, repo, t)
		if err != nil {
			return nil, nil, err
		}
		tags = append(tags, t)
		if t == prefix {
			var idx struct {
				Manifests []UpstreamDescriptor `json:"manifests"`
			}
			if json.Unmarshal(m.Raw, &idx) == nil {
				for _, x := range idx.Manifests {
					add(x)
				}
			}
			continue
		}
		add(UpstreamDescriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, ArtifactType: sniffArtifactType(m.Raw)})
	}
	return list, tags, nil
}

func sniffArtifactType(raw []byte) string {
	var p struct {
		ArtifactType string `json:"artifactType"`
		Config       struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return ""
	}
	if p.ArtifactType != "" {
		return p.ArtifactType
	}
	return p.Config.MediaType
}

// Tags lists repo's tags (none when the repository is unknown).
func (u *Upstream) Tags(ctx context.Context, repo string) ([]string, error) { return u.tags(ctx, repo) }

// tags lists repo's tags, following pagination.
func (u *Upstream) tags(ctx context.Context, repo string) ([]string, error) {
	var all []string
	next := u.base + "/v2/" + repo + "/tags/list?n=1000"
	for pages := 0; next != "" && pages < 100; pages++ {
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		resp, err := u.send(ctx, repo, req, http.StatusOK)
		var he *HTTPError
		if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var page struct {
			Tags []string `json:"tags"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("tags of %s/%s: %w", u.Host(), repo, err)
		}
		all = append(all, page.Tags...)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			if i, j := strings.Index(link, "<"), strings.Index(link, ">"); i >= 0 && j > i {
				if nu, err := resp.Request.URL.Parse(link[i+1 : j]); err == nil {
					next = nu.String()
				}
			}
		}
	}
	return all, nil
}

// StatusOf is the HTTP status of an upstream's refusal, or 0 when err is
// not one (a transport failure: refused, DNS, TLS, timeout).
func StatusOf(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	// The token handshake reports the registry's refusal as a
	// *transport.Error carrying the status.
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

// RetryAfterOf is the upstream's Retry-After on a refusal (0 if none).
func RetryAfterOf(err error) time.Duration {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.RetryAfter
	}
	return 0
}

// stallTimer cancels a request when nothing happened on it for d.
type stallTimer struct {
	d     time.Duration
	t     *time.Timer
	mu    sync.Mutex
	fire  bool
	dead  bool
	onEnd func()
}

func newStallTimer(d time.Duration, cancel func()) *stallTimer {
	s := &stallTimer{d: d, onEnd: cancel}
	s.t = time.AfterFunc(d, func() {
		s.mu.Lock()
		if !s.dead {
			s.fire = true
		}
		s.mu.Unlock()
		cancel()
	})
	return s
}

func (s *stallTimer) kick() { s.t.Reset(s.d) }

func (s *stallTimer) stop() {
	s.mu.Lock()
	s.dead = true
	s.mu.Unlock()
	s.t.Stop()
}

func (s *stallTimer) fired() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fire
}

// stallReader fails a body whose reads stall for longer than the timeout.
type stallReader struct {
	rc     io.ReadCloser
	t      *stallTimer
	cancel func()
}

func (r *stallReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if n > 0 {
		r.t.kick()
	}
	if err != nil && err != io.EOF && r.t.fired() {
		err = fmt.Errorf("upstream body stalled for more than %s: %w", r.t.d, context.DeadlineExceeded)
	}
	return n, err
}

func (r *stallReader) Close() error {
	r.t.stop()
	err := r.rc.Close()
	r.cancel()
	return err
}
