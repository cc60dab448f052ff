package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// client is a bare OCI distribution client over net/http: no retries, no
// library between the load and the server, so the numbers are the server's.
type client struct {
	base *url.URL // scheme://host[:port]
	hc   *http.Client
}

// ParseTarget turns "host:port", "http://host:port" or "https://host" into
// the registry's base URL.
func ParseTarget(target string) (*url.URL, error) {
	t := strings.TrimSpace(target)
	if !strings.Contains(t, "://") {
		t = "http://" + t
	}
	u, err := url.Parse(t)
	if err != nil {
		return nil, fmt.Errorf("registry URL %q: %w", target, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("registry URL %q: scheme %q, want http or https", target, u.Scheme)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("registry URL %q: want scheme://host[:port] with no path", target)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

func newClient(base *url.URL, insecure bool, conns int) *client {
	tr := &http.Transport{
		Proxy:               nil, // measure the server, never a proxy in between
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: insecure},
	}
	return &client{base: base, hc: &http.Client{Transport: tr}}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// drain reads body to the end into w with a large buffer.
func drain(w io.Writer, body io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(w, body, *bp)
}

// statusError describes an unexpected response, with the start of its body
// (the OCI error envelope, when the registry sends one).
func statusError(op string, resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("%s: %s %s: %s: %s", op, resp.Request.Method, resp.Request.URL.Path, resp.Status, bytes.TrimSpace(msg))
}

func (c *client) do(ctx context.Context, method, u string, body io.Reader, size int64, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return c.hc.Do(req)
}

func (c *client) url(format string, a ...any) string {
	return c.base.String() + fmt.Sprintf(format, a...)
}

// ping checks GET /v2/ answers 200.
func (c *client) ping(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodGet, c.url("/v2/"), nil, 0, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusError("ping (bench does not authenticate)", resp)
	}
	_, err = drain(io.Discard, resp.Body)
	return err
}

// nextLocation resolves an upload session's Location header.
func nextLocation(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("%s %s: %s without a Location header", resp.Request.Method, resp.Request.URL.Path, resp.Status)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("%s %s: Location %q: %w", resp.Request.Method, resp.Request.URL.Path, loc, err)
	}
	return u.String(), nil
}

func withDigest(loc string, d digest.Digest) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + "digest=" + url.QueryEscape(d.String())
}

// startUpload opens an upload session: POST /v2/<repo>/blobs/uploads/.
func (c *client) startUpload(ctx context.Context, repo string) (string, error) {
	resp, err := c.do(ctx, http.MethodPost, c.url("/v2/%s/blobs/uploads/", repo), http.NoBody, 0, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", statusError("start upload", resp)
	}
	_, _ = drain(io.Discard, resp.Body)
	return nextLocation(resp)
}

// finishUpload is the closing PUT ?digest=, carrying body (may be empty).
func (c *client) finishUpload(ctx context.Context, loc string, d digest.Digest, body io.Reader, size int64) error {
	resp, err := c.do(ctx, http.MethodPut, withDigest(loc, d), body, size,
		map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return statusError("finish upload", resp)
	}
	_, _ = drain(io.Discard, resp.Body)
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		return fmt.Errorf("finish upload: registry stored %s, pushed %s: %w", got, d, ErrDigestMismatch)
	}
	return nil
}

// pushMonolithic uploads a blob with POST then one PUT ?digest= carrying it.
func (c *client) pushMonolithic(ctx context.Context, repo string, d digest.Digest, body io.Reader, size int64) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	return c.finishUpload(ctx, loc, d, body, size)
}

// pushChunked uploads a blob with POST, one PATCH per chunk (Content-Range
// start-end, inclusive) and a closing PUT ?digest= with no body.
func (c *client) pushChunked(ctx context.Context, repo string, d digest.Digest, body io.Reader, size, chunk int64) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	for off := int64(0); off < size; {
		n := min(chunk, size-off)
		resp, err := c.do(ctx, http.MethodPatch, loc, io.LimitReader(body, n), n, map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, off+n-1),
		})
		if err != nil {
			return err
		}
		_, _ = drain(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return statusError(fmt.Sprintf("upload chunk at %d", off), resp)
		}
		if loc, err = nextLocation(resp); err != nil {
			return err
		}
		off += n
	}
	return c.finishUpload(ctx, loc, d, http.NoBody, 0)
}

// verifier checks the bytes of a body as they are read.
type verifier interface {
	io.Writer
	// check returns nil when the n bytes written were the expected ones.
	check(n int64) error
}

// digestVerifier hashes what it is given: for bytes known only by digest.
type digestVerifier struct {
	want digest.Digest
	h    hash.Hash
}

func newDigestVerifier(want digest.Digest) *digestVerifier {
	return &digestVerifier{want: want, h: sha256.New()}
}

func (v *digestVerifier) Write(p []byte) (int, error) { return v.h.Write(p) }

func (v *digestVerifier) check(n int64) error {
	if got := digest.NewDigestFromBytes(digest.SHA256, v.h.Sum(nil)); got != v.want {
		return fmt.Errorf("%d bytes hash to %s, want %s: %w", n, got, v.want, ErrDigestMismatch)
	}
	return nil
}

// contentVerifier compares a body byte for byte with the Content it was
// pushed from. For generated blobs this is the same proof as hashing (their
// digest is that of the stream) at a fraction of the CPU: on a machine
// without SHA instructions, one core of sha256 is slower than a fast
// registry, and pull figures would then measure this client. The expected
// bytes are generated ahead on a second goroutine, so regenerating them
// overlaps reading the socket instead of adding to it.
type contentVerifier struct {
	size  int64
	ready chan []byte // expected bytes, in order
	free  chan []byte // buffers to refill
	stop  chan struct{}
	cur   []byte // the unread part of buf
	buf   []byte // the whole current buffer, to hand back
	bad   bool
	done  bool
}

const verifyChunk = 1 << 20

func newContentVerifier(seed uint64, label string, size int64) *contentVerifier {
	v := &contentVerifier{size: size, ready: make(chan []byte, 4), free: make(chan []byte, 6), stop: make(chan struct{})}
	for i := 0; i < 6; i++ {
		v.free <- make([]byte, verifyChunk)
	}
	want := NewContent(seed, label, size)
	go func() {
		defer close(v.ready)
		for {
			var b []byte
			select {
			case b = <-v.free:
			case <-v.stop:
				return
			}
			n, _ := io.ReadFull(want, b[:verifyChunk])
			if n == 0 {
				return
			}
			select {
			case v.ready <- b[:n]:
			case <-v.stop:
				return
			}
		}
	}()
	return v
}

func (v *contentVerifier) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && !v.bad {
		if len(v.cur) == 0 {
			b, ok := <-v.ready
			if !ok {
				v.bad = true // more bytes than were pushed
				break
			}
			v.cur, v.buf = b, b
		}
		k := min(len(p), len(v.cur))
		if !bytes.Equal(p[:k], v.cur[:k]) {
			v.bad = true
		}
		p, v.cur = p[k:], v.cur[k:]
		if len(v.cur) == 0 {
			v.free <- v.buf[:cap(v.buf)]
		}
	}
	return n, nil
}

func (v *contentVerifier) check(n int64) error {
	if !v.done {
		v.done = true
		close(v.stop)
	}
	if v.bad || n != v.size {
		return fmt.Errorf("%d bytes differ from the %d pushed: %w", n, v.size, ErrDigestMismatch)
	}
	return nil
}

// getVerified GETs u and checks the body with v while reading it. It returns
// the body when keep is set (manifests), else discards it.
func (c *client) getVerified(ctx context.Context, u string, v verifier, accept string, keep bool) ([]byte, int64, error) {
	var hdr map[string]string
	if accept != "" {
		hdr = map[string]string{"Accept": accept}
	}
	resp, err := c.do(ctx, http.MethodGet, u, nil, 0, hdr)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, statusError("get", resp)
	}
	var w io.Writer = v
	var kept bytes.Buffer
	if keep {
		w = io.MultiWriter(v, &kept)
	}
	n, err := drain(w, resp.Body)
	if err != nil {
		return nil, n, fmt.Errorf("get %s: %w", resp.Request.URL.Path, err)
	}
	if err := v.check(n); err != nil {
		return nil, n, fmt.Errorf("get %s: %w", resp.Request.URL.Path, err)
	}
	return kept.Bytes(), n, nil
}

// pullBlob GETs a blob and checks it with v.
func (c *client) pullBlob(ctx context.Context, repo string, d digest.Digest, v verifier) (int64, error) {
	_, n, err := c.getVerified(ctx, c.url("/v2/%s/blobs/%s", repo, d), v, "", false)
	return n, err
}

// putManifest PUTs an OCI image manifest by tag.
func (c *client) putManifest(ctx context.Context, repo, tag string, body []byte) error {
	resp, err := c.do(ctx, http.MethodPut, c.url("/v2/%s/manifests/%s", repo, tag), bytes.NewReader(body), int64(len(body)),
		map[string]string{"Content-Type": mediaTypeManifest})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return statusError("put manifest", resp)
	}
	_, _ = drain(io.Discard, resp.Body)
	return nil
}

// getManifest GETs a manifest by tag and checks it hashes to want.
func (c *client) getManifest(ctx context.Context, repo, tag string, want digest.Digest) ([]byte, error) {
	b, _, err := c.getVerified(ctx, c.url("/v2/%s/manifests/%s", repo, tag), newDigestVerifier(want), manifestAccept, true)
	return b, err
}
