package failover_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
)

// The phases of the run: before the kill, while the replica is down, after
// its restart.
const (
	before = iota
	during
	after
	phases
)

var phaseNames = [phases]string{"before", "during", "after"}

// clock places an instant in its phase.
type clock struct {
	t0             time.Time
	kill, restart  time.Duration
	killed, reborn time.Time // when the kill and the restart actually happened
}

func (c *clock) phase(at time.Time) int {
	switch d := at.Sub(c.t0); {
	case d < c.kill:
		return before
	case d < c.restart:
		return during
	default:
		return after
	}
}

// record is what the clients saw, shared by all of them.
type record struct {
	clk *clock

	mu sync.Mutex
	// retryable failures by phase and kind ("conn: reset", "502", ...)
	failures [phases]map[string]int
	// when each failure happened, from t0
	failedAt []time.Duration
	// answers no client should have had: non-retryable errors, lost
	// acknowledged bytes or sessions, wrong content
	violations []string
	// 404s on a session whose completing PUT was sent but not answered: the
	// PUT consumed it, legitimately
	consumed int
	// latency of whole image pushes and pulls by the phase they began in
	push, pull [phases][]time.Duration
	acked      []image
	// per request latency by kind ("PATCH upload"), while the load runs
	reqs map[string][]time.Duration
	// validating: the load is over and every replica is up, so nothing
	// may fail any more
	validating bool
}

func newRecord(clk *clock) *record {
	rec := &record{clk: clk}
	for i := range rec.failures {
		rec.failures[i] = map[string]int{}
	}
	return rec
}

// fail records a retryable failure when the client sees it.
func (rec *record) fail(kind string) {
	at := time.Now()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.validating {
		rec.violations = append(rec.violations, fmt.Sprintf("a request failed (%s) during the validation, with every replica up", kind))
		return
	}
	rec.failures[rec.clk.phase(at)][kind]++
	rec.failedAt = append(rec.failedAt, at.Sub(rec.clk.t0))
}

func (rec *record) violate(format string, args ...any) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.violations = append(rec.violations, fmt.Sprintf("%s: ", time.Since(rec.clk.t0).Round(time.Millisecond))+fmt.Sprintf(format, args...))
}

func (rec *record) ack(img image, began time.Time) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.acked = append(rec.acked, img)
	rec.push[rec.clk.phase(began)] = append(rec.push[rec.clk.phase(began)], time.Since(began))
}

func (rec *record) pulled(began time.Time) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.pull[rec.clk.phase(began)] = append(rec.pull[rec.clk.phase(began)], time.Since(began))
}

// took records the latency of a request answered (with any status).
func (rec *record) took(key string, began time.Time) {
	d := time.Since(began)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.validating {
		return
	}
	if rec.reqs == nil {
		rec.reqs = map[string][]time.Duration{}
	}
	rec.reqs[key] = append(rec.reqs[key], d)
}

// pick returns an acknowledged image, or false when there is none yet.
func (rec *record) pick(n int) (image, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.acked) == 0 {
		return image{}, false
	}
	return rec.acked[n%len(rec.acked)], true
}

// image is an acknowledged push: its manifest PUT was answered 201.
type image struct {
	repo, tag string
	manifest  digest.Digest
	blobs     []blobRef
}

type blobRef struct {
	d    digest.Digest
	size int64
}

// client speaks the distribution API to one base URL, retrying what a
// failover may cause (connection errors, 5xx, 429) and recording it;
// anything else unexpected is a violation.
type client struct {
	base string
	hc   *http.Client
	rec  *record
}

const mediaManifest = "application/vnd.oci.image.manifest.v1+json"

// errViolation ends an operation that met an answer it must not get; the
// answer is already recorded.
var errViolation = errors.New("violation")

// answer is one request's outcome: a response with its body read, or a
// transport error.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// retryable says whether a is what a dying replica may cause, and what kind
// of failure it is.
func (a answer) retryable() (string, bool) {
	if a.err != nil {
		return "conn: " + connKind(a.err), true
	}
	if a.status >= 500 || a.status == http.StatusTooManyRequests {
		code := ociCode(a.body)
		if code == "" && a.status == http.StatusBadGateway {
			code = "from the balancer"
		}
		return strings.TrimSpace(strconv.Itoa(a.status) + " " + code), true
	}
	return "", false
}

func (a answer) String() string {
	if a.err != nil {
		return a.err.Error()
	}
	return fmt.Sprintf("%d %s", a.status, bytes.TrimSpace(a.body))
}

func connKind(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, context.DeadlineExceeded), strings.Contains(err.Error(), "Timeout"):
		return "timeout"
	}
	return err.Error()
}

func ociCode(body []byte) string {
	var env struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &env) == nil && len(env.Errors) > 0 {
		return env.Errors[0].Code
	}
	return ""
}

// do sends one request and reads the whole answer (bodies here are small).
func (c *client) do(ctx context.Context, method, u string, body []byte, hdr ...string) answer {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	t0 := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	key := method
	if strings.Contains(u, "/uploads/") {
		key += " upload"
	} else if strings.Contains(u, "/manifests/") {
		key += " manifest"
	}
	c.rec.took(key, t0)
	return answer{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// retry runs send until it gives an answer that is not retryable, recording
// each retryable failure; it gives up (a violation) when ctx ends first.
// failed reports whether an earlier attempt failed, which changes what
// answers are legitimate.
func (c *client) retry(ctx context.Context, what string, send func() answer) (a answer, failed bool) {
	for n := 0; ; n++ {
		a = send()
		kind, again := a.retryable()
		if !again {
			return a, failed
		}
		if ctx.Err() != nil {
			return answer{err: ctx.Err()}, failed
		}
		c.rec.fail(kind)
		failed = true
		if n == 50 {
			c.rec.violate("%s: still failing after %d attempts: %s", what, n+1, a)
			return answer{err: errViolation}, failed
		}
		waitCtx(ctx, time.Duration(min(n+1, 10))*20*time.Millisecond)
	}
}

// resolve turns a Location header into a URL on the client's base.
func (c *client) resolve(loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		return ""
	}
	return c.base + u.RequestURI()
}

func withQuery(u, key, value string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + key + "=" + url.QueryEscape(value)
}

// uploadSize asks an upload session how many bytes it holds (GET on its
// Location); lost says the session is unknown.
func (c *client) uploadSize(ctx context.Context, loc string) (size int64, next string, lost bool, err error) {
	a, _ := c.retry(ctx, "GET upload status", func() answer { return c.do(ctx, http.MethodGet, loc, nil) })
	if a.err != nil {
		return 0, "", false, a.err
	}
	switch a.status {
	case http.StatusNoContent:
	case http.StatusNotFound:
		return 0, "", true, nil
	default:
		c.rec.violate("GET upload status %s: %s", loc, a)
		return 0, "", false, errViolation
	}
	var end int64
	if _, err := fmt.Sscanf(a.header.Get("Range"), "0-%d", &end); err != nil {
		c.rec.violate("GET upload status %s: Range %q", loc, a.header.Get("Range"))
		return 0, "", false, errViolation
	}
	// "0-0" is also an empty upload; chunks here are never one byte.
	if end > 0 {
		size = end + 1
	}
	return size, c.resolve(a.header.Get("Location")), false, nil
}

// startUpload opens a session (POST) and returns its URL.
func (c *client) startUpload(ctx context.Context, repo string) (string, error) {
	a, _ := c.retry(ctx, "POST upload", func() answer { return c.do(ctx, http.MethodPost, c.base+"/v2/"+repo+"/blobs/uploads/", nil) })
	if a.err != nil {
		return "", a.err
	}
	if a.status != http.StatusAccepted {
		c.rec.violate("POST /v2/%s/blobs/uploads/: %s", repo, a)
		return "", errViolation
	}
	return c.resolve(a.header.Get("Location")), nil
}

// patch sends data[from:to] as one chunk of the session at loc and returns
// the session's next URL and how many bytes it then holds. A chunk whose
// fate is unknown (the connection broke) is settled by asking the session
// its size, so a chunk that did land is not sent twice; a session that
// forgets bytes it acknowledged, or the session itself, is a violation.
func (c *client) patch(ctx context.Context, loc string, data []byte, from, to, acked int64) (string, int64, error) {
	var failed bool
	for {
		a := c.do(ctx, http.MethodPatch, loc, data[from:to],
			"Content-Type", "application/octet-stream",
			"Content-Range", fmt.Sprintf("%d-%d", from, to-1))
		if a.status == http.StatusAccepted {
			if got := a.header.Get("Range"); got != fmt.Sprintf("0-%d", to-1) {
				c.rec.violate("PATCH %s acknowledged with Range %q, want 0-%d", loc, got, to-1)
				return "", 0, errViolation
			}
			return c.resolve(a.header.Get("Location")), to, nil
		}
		kind, again := a.retryable()
		switch {
		case again:
			if ctx.Err() != nil {
				return "", 0, ctx.Err()
			}
			c.rec.fail(kind)
		case a.status == http.StatusRequestedRangeNotSatisfiable && failed:
			// The earlier attempt landed after all: a legitimate answer.
		default:
			c.rec.violate("PATCH %s (bytes %d-%d, %d acknowledged): %s", loc, from, to-1, acked, a)
			return "", 0, errViolation
		}
		failed = true
		size, next, lost, err := c.uploadSize(ctx, loc)
		if err != nil {
			return "", 0, err
		}
		if lost {
			c.rec.violate("upload session %s lost after %d bytes were acknowledged", loc, acked)
			return "", 0, errViolation
		}
		if size < acked {
			c.rec.violate("upload session %s holds %d bytes, %d were acknowledged", loc, size, acked)
			return "", 0, errViolation
		}
		if size >= to {
			return next, size, nil
		}
		loc, from = next, size
	}
}

// pushBlob uploads data in chunks of chunk bytes (a POST, several PATCHes,
// a PUT), each request free to land on any replica.
func (c *client) pushBlob(ctx context.Context, repo string, data []byte, chunk int64) error {
	d := digest.FromBytes(data)
	for {
		loc, err := c.startUpload(ctx, repo)
		if err != nil {
			return err
		}
		var acked int64
		for acked < int64(len(data)) {
			if loc, acked, err = c.patch(ctx, loc, data, acked, min(acked+chunk, int64(len(data))), acked); err != nil {
				return err
			}
		}
		a, failed := c.retry(ctx, "PUT upload", func() answer { return c.do(ctx, http.MethodPut, withQuery(loc, "digest", string(d)), nil) })
		switch {
		case a.err != nil:
			return a.err
		case a.status == http.StatusCreated:
			if a.header.Get("Docker-Content-Digest") != string(d) {
				c.rec.violate("PUT upload of %s answered Docker-Content-Digest %q", d, a.header.Get("Docker-Content-Digest"))
				return errViolation
			}
			return nil
		case a.status == http.StatusNotFound && failed && ociCode(a.body) == "BLOB_UPLOAD_UNKNOWN":
			// An unanswered PUT completed (or began completing) the session.
			if h := c.do(ctx, http.MethodHead, c.base+"/v2/"+repo+"/blobs/"+string(d), nil); h.status == http.StatusOK {
				return nil
			}
			c.rec.mu.Lock()
			c.rec.consumed++
			c.rec.mu.Unlock()
			continue // a fresh session; the bytes already stored make it cheap
		default:
			c.rec.violate("PUT upload of %s: %s", d, a)
			return errViolation
		}
	}
}

// putMonolithic uploads a small blob in one POST.
func (c *client) putMonolithic(ctx context.Context, repo string, data []byte) error {
	d := digest.FromBytes(data)
	a, _ := c.retry(ctx, "POST monolithic", func() answer {
		return c.do(ctx, http.MethodPost, withQuery(c.base+"/v2/"+repo+"/blobs/uploads/", "digest", string(d)), data, "Content-Type", "application/octet-stream")
	})
	if a.err != nil {
		return a.err
	}
	if a.status != http.StatusCreated {
		c.rec.violate("POST %s monolithic: %s", d, a)
		return errViolation
	}
	return nil
}

func manifestFor(cfg, layer []byte) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
		mediaManifest, digest.FromBytes(cfg), len(cfg), digest.FromBytes(layer), len(layer))
}

// putManifest tags the manifest; its 201 is the acknowledgement.
func (c *client) putManifest(ctx context.Context, repo, tag string, man []byte) error {
	a, _ := c.retry(ctx, "PUT manifest", func() answer {
		return c.do(ctx, http.MethodPut, c.base+"/v2/"+repo+"/manifests/"+tag, man, "Content-Type", mediaManifest)
	})
	if a.err != nil {
		return a.err
	}
	if a.status != http.StatusCreated || a.header.Get("Docker-Content-Digest") != string(digest.FromBytes(man)) {
		c.rec.violate("PUT manifest %s:%s: %s (Docker-Content-Digest %q)", repo, tag, a, a.header.Get("Docker-Content-Digest"))
		return errViolation
	}
	return nil
}

// pushImage pushes a config (monolithic) and a layer (chunked) and tags a
// manifest naming them.
func (c *client) pushImage(ctx context.Context, repo, tag string, cfg, layer []byte, chunk int64) (image, error) {
	if err := c.putMonolithic(ctx, repo, cfg); err != nil {
		return image{}, err
	}
	if err := c.pushBlob(ctx, repo, layer, chunk); err != nil {
		return image{}, err
	}
	man := manifestFor(cfg, layer)
	if err := c.putManifest(ctx, repo, tag, man); err != nil {
		return image{}, err
	}
	return image{repo: repo, tag: tag, manifest: digest.FromBytes(man), blobs: []blobRef{
		{digest.FromBytes(cfg), int64(len(cfg))}, {digest.FromBytes(layer), int64(len(layer))},
	}}, nil
}

// pullImage fetches the manifest by digest and every blob, re-hashing the
// bytes as they stream; a mismatch or a 404 is a violation.
func (c *client) pullImage(ctx context.Context, img image, where string) error {
	a, _ := c.retry(ctx, "GET manifest", func() answer {
		return c.do(ctx, http.MethodGet, c.base+"/v2/"+img.repo+"/manifests/"+string(img.manifest), nil, "Accept", mediaManifest)
	})
	if a.err != nil {
		return a.err
	}
	if a.status != http.StatusOK || digest.FromBytes(a.body) != img.manifest {
		c.rec.violate("%s: GET manifest %s@%s: %d, digest %s", where, img.repo, img.manifest, a.status, digest.FromBytes(a.body))
		return errViolation
	}
	var man struct {
		Config struct{ Digest digest.Digest } `json:"config"`
		Layers []struct{ Digest digest.Digest }
	}
	if err := json.Unmarshal(a.body, &man); err != nil || len(man.Layers) == 0 {
		c.rec.violate("%s: manifest %s does not parse: %v", where, img.manifest, err)
		return errViolation
	}
	for _, b := range img.blobs {
		if err := c.pullBlob(ctx, img.repo, b, where); err != nil {
			return err
		}
	}
	return nil
}

// pullBlob streams one blob through SHA-256; a stream cut short is retried.
func (c *client) pullBlob(ctx context.Context, repo string, b blobRef, where string) error {
	u := c.base + "/v2/" + repo + "/blobs/" + string(b.d)
	for n := 0; ; n++ {
		status, size, sum, err := c.hashGet(ctx, u)
		a := answer{status: status, err: err}
		if kind, again := a.retryable(); again {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.rec.fail(kind)
			if n == 50 {
				c.rec.violate("%s: GET blob %s: still failing: %s", where, b.d, a)
				return errViolation
			}
			waitCtx(ctx, time.Duration(min(n+1, 10))*20*time.Millisecond)
			continue
		}
		if status != http.StatusOK || size != b.size || sum != b.d.Encoded() {
			c.rec.violate("%s: GET blob %s@%s: %d, %d bytes (want %d), sha256 %s", where, repo, b.d, status, size, b.size, sum)
			return errViolation
		}
		return nil
	}
}

func (c *client) hashGet(ctx context.Context, u string) (status int, size int64, sum string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, "", err
	}
	t0 := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer resp.Body.Close()
	h := sha256.New()
	size, err = io.Copy(h, resp.Body)
	if err != nil {
		return 0, 0, "", err
	}
	c.rec.took("GET blob", t0)
	return resp.StatusCode, size, hex.EncodeToString(h.Sum(nil)), nil
}

// p99 is the nearest-rank 99th percentile.
func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*99 + 99) / 100
	return s[min(i, len(s))-1]
}
