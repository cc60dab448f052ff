package console

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/api"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/units"
	"github.com/opencontainers/go-digest"
)

//go:embed templates/*.html static/*
var assets embed.FS

// DefaultSessionLifetime is how long a console sign-in lasts.
const DefaultSessionLifetime = 8 * time.Hour

// Options wire the console.
type Options struct {
	// API serves /v2/, the metrics and /healthz; its live settings
	// (authorizer, read-only) are the console's, and deletes go through it.
	API *api.Handler
	// Registry and Meta are the stores the API serves from.
	Registry *registry.Registry
	Meta     *metadata.Store
	// SessionSecret signs session cookies (httpSecret); empty means a
	// random key: sessions then end with the process and stay on one
	// replica.
	SessionSecret string
	// SessionLifetime of a sign-in; zero means DefaultSessionLifetime.
	SessionLifetime time.Duration
	// DisableDelete hides and refuses deletes (the API refuses them too).
	DisableDelete bool
	// Storage describes the blob store for the status page.
	Storage string
	// Version of the binary, for the status page.
	Version string
	// Endpoints are the names of the notification endpoints (serve's
	// notifications.endpoints), whose queues the status page shows.
	Endpoints []string
	// Upstreams are the pull-through cache's upstreams (serve's
	// pullThrough.upstreams): an image under one's prefix shows where it
	// was cached from and when. Nil: no provenance is shown.
	Upstreams []Upstream
	// Log receives errors the pages hit; nil discards them.
	Log *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Upstream is one pull-through upstream, as the image page names it.
type Upstream struct {
	// Prefix is the local repository prefix of the cache (quay.io).
	Prefix string
	// URL is the upstream registry's base URL (https://quay.io).
	URL string
}

// upstreamOf is the pull-through upstream whose prefix holds repo (the
// longest, on whole path components), if any.
func (h *Handler) upstreamOf(repo string) (Upstream, bool) {
	var best Upstream
	for _, u := range h.opts.Upstreams {
		p := strings.TrimSuffix(u.Prefix, "/")
		if strings.HasPrefix(repo, p+"/") && len(p) > len(best.Prefix) {
			best, best.Prefix = u, p
		}
	}
	return best, best.Prefix != ""
}

// Handler serves the console, and hands /v2/, the metrics and /healthz to
// the API.
type Handler struct {
	api      *api.Handler
	reg      *registry.Registry
	meta     *metadata.Store
	key      []byte
	lifetime time.Duration
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	tmpl     *template.Template
	static   map[string]staticFile
	cssPath  string
	jsPath   string
	plat     summaryCache
}

type staticFile struct {
	body  []byte
	ctype string
}

// New builds the console over the API handler and its stores.
func New(opts Options) (*Handler, error) {
	if opts.API == nil || opts.Registry == nil || opts.Meta == nil {
		return nil, errors.New("console: API, Registry and Meta are required")
	}
	h := &Handler{api: opts.API, reg: opts.Registry, meta: opts.Meta, opts: opts, log: opts.Log, now: opts.Now, lifetime: opts.SessionLifetime}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.lifetime <= 0 {
		h.lifetime = DefaultSessionLifetime
	}
	if opts.SessionSecret != "" {
		k := sha256.Sum256([]byte("berth console session\x00" + opts.SessionSecret))
		h.key = k[:]
	} else {
		h.key = make([]byte, 32)
		if _, err := rand.Read(h.key); err != nil {
			return nil, err
		}
	}
	h.plat.m = map[digest.Digest]manifestSummary{}
	// Static files are named by their content's hash, so they can be
	// cached for good and a new binary's never mixes with an old one's.
	h.static = map[string]staticFile{}
	for _, f := range []struct{ name, ctype string }{{"console.css", "text/css; charset=utf-8"}, {"console.js", "text/javascript; charset=utf-8"}} {
		b, err := fs.ReadFile(assets, "static/"+f.name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		p := "/static/" + hex.EncodeToString(sum[:6]) + "/" + f.name
		h.static[p] = staticFile{b, f.ctype}
		if strings.HasSuffix(f.name, ".css") {
			h.cssPath = p
		} else {
			h.jsPath = p
		}
	}
	t, err := template.New("").Funcs(template.FuncMap{
		"size":  units.FormatBytes,
		"short": shortDigest,
		"time":  func(t time.Time) string { return fmtTime(t) },
		"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"join":  strings.Join,
	}).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	h.tmpl = t
	return h, nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// httpError is a page-level failure with the status to answer.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func notFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

// isAPI tells the requests the console leaves to the API.
func isAPI(p string) bool {
	return p == "/v2" || strings.HasPrefix(p, "/v2/") || p == api.MetricsPath || p == "/healthz"
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isAPI(r.URL.Path) {
		h.api.ServeHTTP(w, r)
		return
	}
	if f, ok := h.static[r.URL.Path]; ok {
		w.Header().Set("Content-Type", f.ctype)
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(f.body)
		return
	}
	hdr := w.Header()
	// Nothing but this origin: no CDN, no fonts, no inline script, no
	// framing by another site.
	hdr.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "same-origin")
	hdr.Set("Cache-Control", "no-store")
	v := h.viewer(w, r)
	if err := h.route(w, r, v); err != nil {
		h.writeError(w, r, v, err)
	}
}

func (h *Handler) route(w http.ResponseWriter, r *http.Request, v *viewer) error {
	p := r.URL.Path
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case p == "/" && get:
		return h.repositories(w, r, v)
	case p == "/status" && get:
		return h.status(w, r, v)
	case p == "/login" && get:
		return h.loginForm(w, r, v, "", http.StatusOK)
	case p == "/login":
		return h.login(w, r, v)
	case p == "/logout":
		return h.logout(w, r, v)
	case p == "/delete":
		return h.delete(w, r, v)
	case p == "/tag":
		return h.tag(w, r, v)
	case strings.HasPrefix(p, "/r/") && get:
		rest := strings.TrimPrefix(p, "/r/")
		if repo, ref, ok := strings.Cut(rest, "@"); ok {
			d, err := digest.Parse(ref)
			if err != nil {
				return notFound("%q is not a digest", ref)
			}
			return h.image(w, r, v, repo, d)
		}
		return h.repository(w, r, v, rest)
	case strings.HasPrefix(p, "/r/"), p == "/", p == "/status":
		return &httpError{http.StatusMethodNotAllowed, "this page takes GET"}
	}
	return notFound("no page at %s", p)
}

// page is what every template gets.
type page struct {
	Title   string
	CSS, JS string
	AuthOn  bool
	User    string
	CSRF    string
	Host    string
	// PlainHTTP: the browser came without TLS, so pull commands skip it too.
	PlainHTTP bool
	Data      any
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, v *viewer, status int, name, title string, data any) error {
	pg := page{Title: title, CSS: h.cssPath, JS: h.jsPath, AuthOn: v.authz != nil, User: v.sess.User, CSRF: h.csrfToken(v.sess), Host: r.Host, PlainHTTP: !secure(r), Data: data}
	var buf bytes.Buffer
	if err := h.tmpl.ExecuteTemplate(&buf, name, pg); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
	return nil
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, v *viewer, err error) {
	status, msg := http.StatusInternalServerError, "internal error; the server log has the details"
	var he *httpError
	if errors.As(err, &he) {
		status, msg = he.status, he.msg
	} else {
		h.log.Error("console", "path", r.URL.Path, "error", err)
	}
	if rerr := h.render(w, r, v, status, "error.html", http.StatusText(status), msg); rerr != nil {
		http.Error(w, msg, status)
	}
}

// manifestSummary is what the tag table shows of a manifest (see summary).
type manifestSummary struct {
	platforms []string
	size      int64
}

// summaryCache remembers manifests' summaries: a manifest never changes
// under its digest, so an entry never goes stale.
type summaryCache struct {
	mu sync.Mutex
	m  map[digest.Digest]manifestSummary
}

const summaryCacheMax = 200_000

func (c *summaryCache) get(d digest.Digest) (manifestSummary, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[d]
	return p, ok
}

func (c *summaryCache) put(d digest.Digest, p manifestSummary) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= summaryCacheMax {
		clear(c.m)
	}
	c.m[d] = p
}
