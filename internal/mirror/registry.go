package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// HTTPError is an unexpected registry answer. Status 408, 429 and 5xx are
// retried, honouring RetryAfter.
type HTTPError struct {
	Method     string
	URL        string
	StatusCode int
	RetryAfter time.Duration
	Body       string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

func httpError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	e := &HTTPError{
		Method:     resp.Request.Method,
		URL:        resp.Request.URL.Redacted(),
		StatusCode: resp.StatusCode,
		Body:       strings.TrimSpace(string(body)),
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// parseRetryAfter reads delta-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// RegistryOptions configure how a registry is reached.
type RegistryOptions struct {
	// Keychain supplies credentials per registry; nil means anonymous.
	Keychain authn.Keychain
	// Transport is the base HTTP transport (TLS settings live here); nil
	// means http.DefaultTransport.
	Transport http.RoundTripper
	// Insecure allows plain HTTP (loopback and private addresses are always
	// tried over plain HTTP as well).
	Insecure bool
}

// Registry is a Source and Target over the OCI Distribution API.
type Registry struct {
	reg  name.Registry
	opts RegistryOptions

	mu         sync.Mutex
	transports map[string]*repoTransport
	tags       map[string]*tagList
	noRefAPI   bool // the referrers API answered 404 once
}

type repoTransport struct {
	once sync.Once
	rt   http.RoundTripper
	err  error
}

type tagList struct {
	once sync.Once
	tags []string
	err  error
}

var (
	_ Source         = (*Registry)(nil)
	_ Target         = (*Registry)(nil)
	_ Mounter        = (*Registry)(nil)
	_ FilePutter     = (*Registry)(nil)
	_ RegistryTarget = (*Registry)(nil)
)

// NewRegistry returns a client for host (host[:port]).
func NewRegistry(host string, opts RegistryOptions) (*Registry, error) {
	var nopts []name.Option
	if opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", host, err)
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.NewMultiKeychain()
	}
	return &Registry{reg: reg, opts: opts, transports: map[string]*repoTransport{}, tags: map[string]*tagList{}}, nil
}

// Name is the registry host.
func (r *Registry) Name() string { return r.reg.Name() }

// Host implements RegistryTarget.
func (r *Registry) Host() string { return r.reg.Name() }

func (r *Registry) client(ctx context.Context, repo string, push bool) (*http.Client, error) {
	key := repo + "|pull"
	if push {
		key = repo + "|push"
	}
	r.mu.Lock()
	t, ok := r.transports[key]
	if !ok {
		t = &repoTransport{}
		r.transports[key] = t
	}
	r.mu.Unlock()
	t.once.Do(func() {
		rp := r.reg.Repo(repo)
		scope := rp.Scope(transport.PullScope)
		if push {
			scope = rp.Scope(transport.PushScope)
		}
		auth, err := r.opts.Keychain.Resolve(rp)
		if err != nil {
			t.err = err
			return
		}
		// The ping is not retried by the transport; a registry still
		// starting or briefly overloaded must not fail the run.
		t.err = retry(ctx, defaultRetry, func() error {
			var err error
			t.rt, err = transport.NewWithContext(ctx, r.reg, auth, r.opts.Transport, []string{scope})
			return err
		})
	})
	if t.err != nil {
		// Let a later call try again after a failed handshake.
		r.mu.Lock()
		if r.transports[key] == t {
			delete(r.transports, key)
		}
		r.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", r.reg.Name(), t.err)
	}
	return &http.Client{Transport: t.rt}, nil
}

func (r *Registry) url(repo, kind, ref string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", r.reg.Scheme(), r.reg.RegistryStr(), repo, kind, ref)
}

func (r *Registry) do(ctx context.Context, repo string, push bool, req *http.Request) (*http.Response, error) {
	c, err := r.client(ctx, repo, push)
	if err != nil {
		return nil, err
	}
	return c.Do(req.WithContext(ctx))
}

// GetManifest implements Source.
func (r *Registry) GetManifest(ctx context.Context, repo, ref string) (*Manifest, error) {
	req, _ := http.NewRequest(http.MethodGet, r.url(repo, "manifests", ref), nil)
	req.Header.Set("Accept", manifestAccept)
	resp, err := r.do(ctx, repo, false, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, httpError(resp)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	want := ""
	if strings.Contains(ref, ":") {
		want = ref
	}
	m, err := newManifest(raw, resp.Header.Get("Content-Type"), want)
	if err != nil {
		return nil, fmt.Errorf("%s/%s@%s: %w", r.Name(), repo, ref, err)
	}
	return m, nil
}

// ManifestDigest implements Target.
func (r *Registry) ManifestDigest(ctx context.Context, repo, ref string) (v1.Hash, bool, error) {
	req, _ := http.NewRequest(http.MethodHead, r.url(repo, "manifests", ref), nil)
	req.Header.Set("Accept", manifestAccept)
	resp, err := r.do(ctx, repo, true, req)
	if err != nil {
		return v1.Hash{}, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		if h, err := v1.NewHash(resp.Header.Get("Docker-Content-Digest")); err == nil {
			return h, true, nil
		}
		if strings.Contains(ref, ":") {
			h, err := v1.NewHash(ref)
			return h, err == nil, err
		}
		// No digest header for a tag: fetch it to find out.
		m, err := r.GetManifest(ctx, repo, ref)
		if err != nil {
			return v1.Hash{}, false, err
		}
		return m.Digest, true, nil
	case http.StatusNotFound:
		return v1.Hash{}, false, nil
	default:
		return v1.Hash{}, false, httpError(resp)
	}
}

// PutManifest implements Target.
func (r *Registry) PutManifest(ctx context.Context, repo, ref string, m *Manifest) error {
	req, _ := http.NewRequest(http.MethodPut, r.url(repo, "manifests", ref), bytes.NewReader(m.Raw))
	req.ContentLength = int64(len(m.Raw))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(m.Raw)), nil }
	req.Header.Set("Content-Type", m.MediaType)
	resp, err := r.do(ctx, repo, true, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return httpError(resp)
	}
	return nil
}

// HasBlob implements Target.
func (r *Registry) HasBlob(ctx context.Context, repo string, d v1.Descriptor) (bool, error) {
	req, _ := http.NewRequest(http.MethodHead, r.url(repo, "blobs", d.Digest.String()), nil)
	resp, err := r.do(ctx, repo, true, req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	default:
		return false, httpError(resp)
	}
}

// MountBlob implements Mounter: a cross-repository mount within this registry.
func (r *Registry) MountBlob(ctx context.Context, repo, fromRepo string, d v1.Descriptor) (bool, error) {
	q := url.Values{"mount": {d.Digest.String()}, "from": {fromRepo}}
	req, _ := http.NewRequest(http.MethodPost, r.url(repo, "blobs", "uploads/")+"?"+q.Encode(), nil)
	resp, err := r.do(ctx, repo, true, req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, nil
	case http.StatusAccepted:
		// The registry opened an ordinary upload instead; abandon it.
		if loc, err := r.location(resp); err == nil {
			del, _ := http.NewRequest(http.MethodDelete, loc, nil)
			if dr, err := r.do(ctx, repo, true, del); err == nil {
				dr.Body.Close()
			}
		}
		return false, nil
	default:
		// Mount is an optimisation: any refusal means "upload instead".
		return false, nil
	}
}

func (r *Registry) location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("%s %s: no Location header", resp.Request.Method, resp.Request.URL.Redacted())
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// PutBlob implements Target with a monolithic upload.
func (r *Registry) PutBlob(ctx context.Context, repo string, d v1.Descriptor, body io.Reader) error {
	return r.putBlob(ctx, repo, d, io.NopCloser(body))
}

// PutBlobFile implements FilePutter: the file is handed to the transport
// as it is, so its bytes go to the socket by sendfile.
func (r *Registry) PutBlobFile(ctx context.Context, repo string, d v1.Descriptor, f *os.File) error {
	return r.putBlob(ctx, repo, d, f)
}

func (r *Registry) putBlob(ctx context.Context, repo string, d v1.Descriptor, body io.ReadCloser) error {
	req, _ := http.NewRequest(http.MethodPost, r.url(repo, "blobs", "uploads/"), nil)
	resp, err := r.do(ctx, repo, true, req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return httpError(resp)
	}
	loc, err := r.location(resp)
	if err != nil {
		return err
	}
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", d.Digest.String())
	u.RawQuery = q.Encode()
	put, _ := http.NewRequest(http.MethodPut, u.String(), body)
	put.ContentLength = d.Size
	put.Header.Set("Content-Type", "application/octet-stream")
	resp, err = r.do(ctx, repo, true, put)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return httpError(resp)
	}
	return nil
}

// OpenBlob implements Source.
func (r *Registry) OpenBlob(ctx context.Context, repo string, d v1.Descriptor) (io.ReadCloser, error) {
	req, _ := http.NewRequest(http.MethodGet, r.url(repo, "blobs", d.Digest.String()), nil)
	resp, err := r.do(ctx, repo, false, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, httpError(resp)
	}
	return resp.Body, nil
}

// Tags lists repo's tags, following pagination.
func (r *Registry) Tags(ctx context.Context, repo string) ([]string, error) {
	var all []string
	next := fmt.Sprintf("%s://%s/v2/%s/tags/list?n=1000", r.reg.Scheme(), r.reg.RegistryStr(), repo)
	for next != "" {
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		resp, err := r.do(ctx, repo, false, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusNotFound {
			resp.Body.Close()
			return nil, nil
		}
		if resp.StatusCode != http.StatusOK {
			err := httpError(resp)
			resp.Body.Close()
			return nil, err
		}
		var page struct {
			Tags []string `json:"tags"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("tags of %s/%s: %w", r.Name(), repo, err)
		}
		all = append(all, page.Tags...)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			if i, j := strings.Index(link, "<"), strings.Index(link, ">"); i >= 0 && j > i {
				if u, err := resp.Request.URL.Parse(link[i+1 : j]); err == nil {
					next = u.String()
				}
			}
		}
	}
	return all, nil
}

func (r *Registry) cachedTags(ctx context.Context, repo string) ([]string, error) {
	r.mu.Lock()
	tl, ok := r.tags[repo]
	if !ok {
		tl = &tagList{}
		r.tags[repo] = tl
	}
	r.mu.Unlock()
	tl.once.Do(func() {
		tl.err = retry(ctx, defaultRetry, func() error {
			var err error
			tl.tags, err = r.Tags(ctx, repo)
			return err
		})
	})
	return tl.tags, tl.err
}

// Referrers implements Source: the OCI 1.1 referrers API when the registry
// has it, and always the tag schemes (`sha256-<hex>` fallback index and
// cosign's `.sig`/`.att`/`.sbom` tags), which registries without the API
// and older signing tools use.
func (r *Registry) Referrers(ctx context.Context, repo string, subject v1.Hash) ([]Referrer, error) {
	var out []Referrer
	seen := map[v1.Hash]bool{}
	r.mu.Lock()
	noAPI := r.noRefAPI
	r.mu.Unlock()
	if !noAPI {
		req, _ := http.NewRequest(http.MethodGet, r.url(repo, "referrers", subject.String()), nil)
		req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
		resp, err := r.do(ctx, repo, false, req)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusOK && strings.Contains(resp.Header.Get("Content-Type"), "json"):
			var idx v1.IndexManifest
			err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&idx)
			resp.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("referrers of %s/%s@%s: %w", r.Name(), repo, subject, err)
			}
			for _, d := range idx.Manifests {
				if !seen[d.Digest] {
					seen[d.Digest] = true
					out = append(out, Referrer{Descriptor: d})
				}
			}
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusOK:
			resp.Body.Close()
			r.mu.Lock()
			r.noRefAPI = true
			r.mu.Unlock()
		default:
			err := httpError(resp)
			resp.Body.Close()
			return nil, err
		}
	}
	tags, err := r.cachedTags(ctx, repo)
	if err != nil {
		return nil, err
	}
	prefix := subject.Algorithm + "-" + subject.Hex
	for _, t := range tags {
		if t != prefix && !strings.HasPrefix(t, prefix+".") {
			continue
		}
		m, err := r.GetManifest(ctx, repo, t)
		if err != nil {
			return nil, err
		}
		if t == prefix && isIndex(m.MediaType) {
			// The OCI 1.1 fallback: an index listing the referrers.
			var idx v1.IndexManifest
			if err := json.Unmarshal(m.Raw, &idx); err == nil {
				for _, d := range idx.Manifests {
					if !seen[d.Digest] {
						seen[d.Digest] = true
						out = append(out, Referrer{Descriptor: d})
					}
				}
			}
		}
		out = append(out, Referrer{Descriptor: m.Descriptor(), Tag: t})
	}
	return out, nil
}
