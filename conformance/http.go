package conformance

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// response is a fully read HTTP answer.
type response struct {
	Method string
	URL    string
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string {
	body := string(r.Body)
	if len(body) > 300 {
		body = body[:300] + "…"
	}
	return fmt.Sprintf("%s %s → %d %q", r.Method, r.URL, r.Status, body)
}

// u builds an absolute URL under the base from a path and optional query
// key/value pairs.
func (s *suite) u(path string, query ...string) string {
	v := *s.base
	v.Path = s.base.Path + path
	v.RawPath = ""
	q := url.Values{}
	for i := 0; i+1 < len(query); i += 2 {
		q.Add(query[i], query[i+1])
	}
	v.RawQuery = q.Encode()
	return v.String()
}

// resolve turns a Location header (absolute or relative) into an absolute
// URL, optionally adding query key/value pairs to the ones it already has.
func (s *suite) resolve(t *testing.T, loc string, query ...string) string {
	t.Helper()
	if loc == "" {
		t.Fatal("empty Location header")
	}
	ref, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	abs := s.base.ResolveReference(ref)
	q := abs.Query()
	for i := 0; i+1 < len(query); i += 2 {
		q.Add(query[i], query[i+1])
	}
	abs.RawQuery = q.Encode()
	return abs.String()
}

// do sends one request. body nil sends no body (Content-Length: 0 where the
// method carries one); kv are header name/value pairs.
func (s *suite) do(t *testing.T, method, target string, body []byte, kv ...string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	return s.send(t, req)
}

// stream sends body with chunked transfer encoding (no Content-Length).
func (s *suite) stream(t *testing.T, method, target string, body []byte, kv ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, target, io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	req.ContentLength = -1
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	return s.send(t, req)
}

func (s *suite) send(t *testing.T, req *http.Request) response {
	t.Helper()
	r, err := s.roundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// try is do for goroutines: it reports failures instead of stopping the
// test.
func (s *suite) try(method, target string, body []byte, kv ...string) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	return s.roundTrip(req)
}

func (s *suite) roundTrip(req *http.Request) (response, error) {
	resp, err := s.hc.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: reading body: %w", req.Method, req.URL, err)
	}
	return response{Method: req.Method, URL: req.URL.String(), Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// raw writes a hand-made HTTP/1.1 request on its own connection: head is the
// request line and headers (without the blank line), body is written as is,
// and closeWrite half-closes the connection afterwards so that a server
// waiting for more body sees EOF. It returns the first response, or ok=false
// when the server closed the connection without answering.
func (s *suite) raw(t *testing.T, head string, body []byte, closeWrite bool) (r response, ok bool) {
	t.Helper()
	host := s.base.Host
	if s.base.Port() == "" {
		if s.base.Scheme == "https" {
			host += ":443"
		} else {
			host += ":80"
		}
	}
	var conn net.Conn
	var err error
	d := &net.Dialer{Timeout: 10 * time.Second}
	if s.base.Scheme == "https" {
		conn, err = tls.DialWithDialer(d, "tcp", host, &tls.Config{ServerName: s.base.Hostname()})
	} else {
		conn, err = d.Dial("tcp", host)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", host, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	msg := strings.ReplaceAll(strings.TrimRight(head, "\n"), "\n", "\r\n") + "\r\nHost: " + s.base.Host + "\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatalf("write request head: %v", err)
	}
	// The server may answer (and close) before reading the whole body.
	_, _ = conn.Write(body)
	if closeWrite {
		switch c := conn.(type) {
		case *net.TCPConn:
			_ = c.CloseWrite()
		case *tls.Conn:
			_ = c.CloseWrite()
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return response{}, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	line, _, _ := strings.Cut(head, "\n")
	return response{Method: "raw", URL: line, Status: resp.StatusCode, Header: resp.Header, Body: b}, true
}

// ociError is one entry of the OCI error envelope.
type ociError struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail"`
}

// wantStatus reports an error unless r has one of the statuses.
func wantStatus(t *testing.T, r response, status ...int) bool {
	t.Helper()
	if slices.Contains(status, r.Status) {
		return true
	}
	t.Errorf("%v: want status %v", r, status)
	return false
}

// mustStatus is wantStatus that stops the test.
func mustStatus(t *testing.T, r response, status ...int) {
	t.Helper()
	if !wantStatus(t, r, status...) {
		t.FailNow()
	}
}

// wantError requires the given status and an OCI error envelope whose
// errors include one of codes (and only known-shaped entries).
func wantError(t *testing.T, r response, status int, codes ...string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%v: want status %d with error code %v", r, status, codes)
		return
	}
	if r.Method == http.MethodHead {
		return // no body to carry the envelope
	}
	wantEnvelope(t, r, codes...)
}

// wantEnvelope checks the body is {"errors":[{"code":...},...]} with one of
// codes among them.
func wantEnvelope(t *testing.T, r response, codes ...string) {
	t.Helper()
	var env struct {
		Errors []ociError `json:"errors"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil {
		t.Errorf("%v: body is not an OCI error envelope: %v", r, err)
		return
	}
	if len(env.Errors) == 0 {
		t.Errorf("%v: OCI error envelope has no errors", r)
		return
	}
	for _, e := range env.Errors {
		if e.Code == "" {
			t.Errorf("%v: error entry without a code", r)
		}
		if slices.Contains(codes, e.Code) {
			return
		}
	}
	t.Errorf("%v: want error code one of %v", r, codes)
}

// wantHeader requires header key to equal want.
func wantHeader(t *testing.T, r response, key, want string) {
	t.Helper()
	if got := r.Header.Get(key); got != want {
		t.Errorf("%v: header %s = %q, want %q", r, key, got, want)
	}
}

// wantBody requires the body to equal want byte for byte.
func wantBody(t *testing.T, r response, want []byte) {
	t.Helper()
	if !bytes.Equal(r.Body, want) {
		t.Errorf("%s %s: body differs: got %d bytes, want %d bytes", r.Method, r.URL, len(r.Body), len(want))
	}
}

// linkNext extracts the target of a Link header with rel="next".
func linkNext(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if !strings.HasPrefix(part, "<") {
				continue
			}
			end := strings.Index(part, ">")
			if end < 0 {
				continue
			}
			params := strings.ToLower(part[end+1:])
			if strings.Contains(params, `rel="next"`) || strings.Contains(params, "rel=next") {
				return part[1:end]
			}
		}
	}
	return ""
}
