// Package pullthroughtest has what pull-through tests share: pushing
// synthetic images over the distribution API, and a counting, fault
// injecting reverse proxy to put in front of a real upstream registry.
package pullthroughtest

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Image is what PushImage pushed.
type Image struct {
	Repo     string
	Tag      string
	Digest   digest.Digest
	Manifest []byte
	Config   digest.Digest
	Layers   []digest.Digest
	// Size is the total of the manifest, config and layers.
	Size int64
}

// Client speaks to a registry at Base (scheme://host:port), with basic
// credentials when User is set.
type Client struct {
	Base       string
	User, Pass string
	HTTP       *http.Client
}

func (c *Client) do(t testing.TB, method, u string, body []byte, contentType string) *http.Response {
	t.Helper()
	if !strings.HasPrefix(u, "http") {
		u = c.Base + u
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Pass)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return resp
}

// PutBlob uploads b monolithically.
func (c *Client) PutBlob(t testing.TB, repo string, b []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	resp := c.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload in %s: %s", repo, resp.Status)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", string(d))
	loc.RawQuery = q.Encode()
	resp = c.do(t, http.MethodPut, loc.String(), b, "application/octet-stream")
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload %s to %s: %s", d, repo, resp.Status)
	}
	return d
}

// PutManifest stores raw under ref.
func (c *Client) PutManifest(t testing.TB, repo, ref, mediaType string, raw []byte) digest.Digest {
	t.Helper()
	resp := c.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, raw, mediaType)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put manifest %s:%s: %s %s", repo, ref, resp.Status, msg)
	}
	return digest.FromBytes(raw)
}

// TarLayer returns an uncompressed tar layer holding one file of n random
// bytes, for clients that unpack what they pull.
func TarLayer(name string, n int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg})
	_, _ = tw.Write(RandomBytes(n))
	_ = tw.Close()
	return buf.Bytes()
}

// RandomBytes returns n random bytes (incompressible, unique per call).
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     map[string]string `json:"platform,omitempty"`
}

// PushImage pushes an OCI image with the given layer bytes and a small
// config, tagged tag (or by digest only when tag is empty).
func (c *Client) PushImage(t testing.TB, repo, tag string, layers ...[]byte) Image {
	t.Helper()
	img := Image{Repo: repo, Tag: tag}
	// The layers are uncompressed, so their diff IDs are their digests.
	diffIDs := []digest.Digest{}
	for _, l := range layers {
		diffIDs = append(diffIDs, digest.FromBytes(l))
	}
	ids, _ := json.Marshal(diffIDs)
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":%s},"config":{"Labels":{"nonce":"%x"}}}`, ids, RandomBytes(8)))
	img.Config = c.PutBlob(t, repo, cfg)
	m := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}{2, "application/vnd.oci.image.manifest.v1+json", descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: img.Config, Size: int64(len(cfg))}, []descriptor{}}
	img.Size = int64(len(cfg))
	for _, l := range layers {
		d := c.PutBlob(t, repo, l)
		img.Layers = append(img.Layers, d)
		img.Size += int64(len(l))
		m.Layers = append(m.Layers, descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: d, Size: int64(len(l))})
	}
	raw, _ := json.Marshal(m)
	ref := tag
	if ref == "" {
		ref = string(digest.FromBytes(raw))
	}
	img.Digest = c.PutManifest(t, repo, ref, m.MediaType, raw)
	img.Manifest = raw
	img.Size += int64(len(raw))
	return img
}

// PushIndex pushes an OCI index of images (pushed before, into repo), one
// platform architecture each, tagged tag.
func (c *Client) PushIndex(t testing.TB, repo, tag string, archs []string, imgs []Image) (digest.Digest, []byte) {
	t.Helper()
	idx := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}{2, "application/vnd.oci.image.index.v1+json", nil}
	for i, img := range imgs {
		idx.Manifests = append(idx.Manifests, descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: img.Digest, Size: int64(len(img.Manifest)), Platform: map[string]string{"os": "linux", "architecture": archs[i]}})
	}
	raw, _ := json.Marshal(idx)
	return c.PutManifest(t, repo, tag, idx.MediaType, raw), raw
}

// PushSignature pushes a cosign-style signature of subject under the
// sha256-<hex>.sig tag, the scheme registries without the referrers API
// use.
func (c *Client) PushSignature(t testing.TB, repo string, subject digest.Digest) digest.Digest {
	t.Helper()
	payload := []byte(fmt.Sprintf(`{"critical":{"image":{"docker-manifest-digest":%q}}}`, subject))
	pd := c.PutBlob(t, repo, payload)
	cfg := []byte(`{}`)
	cd := c.PutBlob(t, repo, cfg)
	m := map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cd, Size: int64(len(cfg))},
		"layers": []descriptor{{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: pd, Size: int64(len(payload)), Annotations: map[string]string{"dev.cosignproject.cosign/signature": "c2lnbmF0dXJl"}}},
	}
	raw, _ := json.Marshal(m)
	return c.PutManifest(t, repo, subject.Algorithm().String()+"-"+subject.Encoded()+".sig", "application/vnd.oci.image.manifest.v1+json", raw)
}

// Fault is what the proxy does with a request instead of forwarding it:
// an HTTP status to answer with, or Drop to close the connection.
type Fault int

// Drop closes the connection without an answer.
const Drop Fault = -1

// Proxy is a reverse proxy in front of an upstream registry that counts
// what the upstream served and can inject failures.
type Proxy struct {
	// URL is the proxy's base URL (http://127.0.0.1:port).
	URL string
	// Host is its host:port.
	Host string

	srv   *httptest.Server
	mu    sync.Mutex
	fault func(*http.Request) Fault
	gets  map[string]int // blob digest -> GETs forwarded
	paths map[string]int // "METHOD path" -> requests
	bytes int64
	reqs  int
	body  func(r *http.Request, off int64, p []byte) // sees (and may alter or hold) each body chunk
}

// StartProxy proxies to target (http:// or https:// base URL); roots
// verifies an https target (nil: the system's).
func StartProxy(t testing.TB, target string, roots *x509.CertPool) *Proxy {
	t.Helper()
	return startProxy(t, target, roots, nil)
}

// StartTLSProxy is StartProxy serving HTTPS with srvTLS.
func StartTLSProxy(t testing.TB, target string, roots *x509.CertPool, srvTLS *tls.Config) *Proxy {
	t.Helper()
	return startProxy(t, target, roots, srvTLS)
}

func startProxy(t testing.TB, target string, roots *x509.CertPool, srvTLS *tls.Config) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{gets: map[string]int{}, paths: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	rp.Transport = tr
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodGet && strings.Contains(resp.Request.URL.Path, "/blobs/sha256:") && resp.StatusCode == http.StatusOK {
			resp.Body = &countBody{rc: resp.Body, p: p, r: resp.Request}
		}
		return nil
	}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.reqs++
		p.paths[r.Method+" "+r.URL.Path]++
		fault := p.fault
		if r.Method == http.MethodGet {
			if i := strings.Index(r.URL.Path, "/blobs/sha256:"); i >= 0 {
				p.gets[r.URL.Path[i+len("/blobs/"):]]++
			}
		}
		p.mu.Unlock()
		if fault != nil {
			if f := fault(r); f == Drop {
				hj, ok := w.(http.Hijacker)
				if ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
						return
					}
				}
				panic(http.ErrAbortHandler)
			} else if f > 0 {
				if f == http.StatusTooManyRequests {
					w.Header().Set("Retry-After", "1")
				}
				if f == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Basic realm="upstream"`)
				}
				http.Error(w, http.StatusText(int(f)), int(f))
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	if srvTLS != nil {
		p.srv.TLS = srvTLS
		p.srv.StartTLS()
	} else {
		p.srv.Start()
	}
	t.Cleanup(p.srv.Close)
	p.URL = p.srv.URL
	p.Host = strings.TrimPrefix(strings.TrimPrefix(p.srv.URL, "http://"), "https://")
	return p
}

// Close stops the proxy: the upstream is unreachable (connections are
// refused) from then on.
func (p *Proxy) Close() {
	p.srv.CloseClientConnections()
	p.srv.Listener.Close()
}

// SetFault installs (nil: removes) the failure injector.
func (p *Proxy) SetFault(f func(*http.Request) Fault) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// BlobGets is how many GETs of blob d reached the upstream.
func (p *Proxy) BlobGets(d digest.Digest) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gets[string(d)]
}

// Count is how many method requests for path (/v2/...) reached the proxy.
func (p *Proxy) Count(method, path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paths[method+" "+path]
}

// SetBody installs (nil: removes) a hook that sees each chunk of a blob
// body at offset off before it is forwarded: it may change the bytes, or
// block to hold the body mid-way.
func (p *Proxy) SetBody(f func(r *http.Request, off int64, b []byte)) {
	p.mu.Lock()
	p.body = f
	p.mu.Unlock()
}

// BlobBytes is how many blob bytes the upstream sent through the proxy.
func (p *Proxy) BlobBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytes
}

// Requests is how many requests the proxy received.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reqs
}

type countBody struct {
	rc  io.ReadCloser
	p   *Proxy
	r   *http.Request
	off int64
}

func (b *countBody) Read(q []byte) (int, error) {
	n, err := b.rc.Read(q)
	b.p.mu.Lock()
	b.p.bytes += int64(n)
	hook := b.p.body
	b.p.mu.Unlock()
	if hook != nil && n > 0 {
		hook(b.r, b.off, q[:n])
	}
	b.off += int64(n)
	return n, err
}

func (b *countBody) Close() error { return b.rc.Close() }
