package api

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/pullthrough"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure the HTTP layer.
type Options struct {
	// ReadOnly refuses every push and delete; pulls are unaffected.
	ReadOnly bool
	// DisableDelete refuses manifest, tag and blob deletes.
	DisableDelete bool
	// ReadLimit and WriteLimit bound concurrent pulls and pushes/deletes.
	ReadLimit, WriteLimit Limit
	// Metrics, when set, receives the request metrics, which are then
	// served at MetricsPath.
	Metrics *prometheus.Registry
	// Build names the binary in imageregistry_build_info.
	Build BuildInfo
	// MetricsSecret, when set, must be presented to read the metrics, as
	// the cluster registry's metrics.secret: as the password of Basic
	// authentication (any user name) or as a Bearer token. With Auth on, a
	// user holding the admin role everywhere may read them too.
	MetricsSecret string
	// MetricsOpen serves the metrics to anyone even with Auth on.
	MetricsOpen bool
	// Auth, when set, turns on access control: every /v2/ request is
	// authenticated and authorized, and bearer tokens are issued at
	// TokenPath. Nil is an anonymous, open registry. The metrics endpoint
	// and /healthz stay unauthenticated either way.
	Auth *auth.Authorizer
	// AuthRealm overrides the token endpoint URL sent in challenges
	// (default: TokenPath on the host and scheme the client used).
	AuthRealm string
	// Notifications records each request's details (id, client address,
	// host, method, user agent, user) for the events its changes queue.
	Notifications bool
	// PullThrough, when set, serves the repositories under its prefixes
	// (and requests with containerd's ?ns=) as a caching mirror of their
	// upstreams; pushes and deletes there are refused.
	PullThrough *pullthrough.Cache
}

// Handler serves the distribution API.
type Handler struct {
	reg     *registry.Registry
	log     *slog.Logger
	opts    Options
	live    atomic.Pointer[live]
	metrics *metrics
}

// Live are the settings that may change while the handler serves (berth
// serve's reload); Options sets their first values.
type Live struct {
	ReadOnly              bool
	ReadLimit, WriteLimit Limit
	Auth                  *auth.Authorizer
	AuthRealm             string
}

// live is what requests read: one atomic load gives a consistent set, and
// a swap never touches requests in flight (they keep the limiter slot and
// the authorizer they started with).
type live struct {
	Live
	reads, writes *limiter
}

// NewHandler wires the API over a registry.
func NewHandler(reg *registry.Registry, log *slog.Logger, opts Options) *Handler {
	h := &Handler{reg: reg, log: log, opts: opts}
	h.SetLive(Live{ReadOnly: opts.ReadOnly, ReadLimit: opts.ReadLimit, WriteLimit: opts.WriteLimit, Auth: opts.Auth, AuthRealm: opts.AuthRealm})
	if opts.Metrics != nil {
		h.metrics = newMetrics(opts.Metrics, opts.Build)
	}
	return h
}

// SetLive swaps in new live settings for the requests that start from now
// on. A limiter whose Limit is unchanged is kept, with its running and
// queued requests; a changed one is replaced, so until the requests the old
// one admitted finish, both count (briefly more than either limit runs).
func (h *Handler) SetLive(l Live) {
	next := &live{Live: l}
	if cur := h.live.Load(); cur != nil && cur.ReadLimit == l.ReadLimit {
		next.reads = cur.reads
	} else {
		next.reads = newLimiter(l.ReadLimit)
	}
	if cur := h.live.Load(); cur != nil && cur.WriteLimit == l.WriteLimit {
		next.writes = cur.writes
	} else {
		next.writes = newLimiter(l.WriteLimit)
	}
	h.live.Store(next)
}

// Settings are the live settings requests start with now, so another face
// of the registry (the web console) decides exactly as the API does.
func (h *Handler) Settings() Live { return h.live.Load().Live }

// authz is the current authorizer; nil when access control is off.
func (h *Handler) authz() *auth.Authorizer { return h.live.Load().Auth }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == MetricsPath && h.metrics != nil:
		if !h.metricsAllowed(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="berth metrics"`)
			http.Error(w, "metrics: give the metrics secret (any user name, the secret as password) or an admin's credentials", http.StatusUnauthorized)
			return
		}
		h.metrics.handler.ServeHTTP(w, r)
		return
	case r.URL.Path == "/healthz":
		// Liveness and readiness: the process serves requests.
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
		return
	}
	start := time.Now()
	if h.opts.Notifications {
		r = r.WithContext(events.WithRequest(r.Context(), events.Request{
			Addr: remoteAddr(r), Host: r.Host, Method: r.Method, UserAgent: r.UserAgent(),
		}, scheme(r)))
	}
	if h.metrics != nil {
		h.metrics.inFlight.Inc()
		defer h.metrics.inFlight.Dec()
	}
	sw := &statusWriter{ResponseWriter: w}
	rt, err := h.serve(sw, r)
	if err != nil {
		h.writeError(sw, r, rt, err)
	}
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	if h.metrics != nil {
		h.metrics.observe(rt.Action, r, sw.status, sw.bytes, time.Since(start))
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", sw.status, "bytes", sw.bytes, "duration", time.Since(start)}
	if rt.Repo != "" {
		attrs = append(attrs, "repository", rt.Repo)
	}
	if sw.user != "" {
		attrs = append(attrs, "user", sw.user)
	}
	if rt.Action != "" {
		attrs = append(attrs, "action", string(rt.Action))
	}
	if sw.code != "" {
		attrs = append(attrs, "error", string(sw.code))
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "request", toAttrs(attrs)...)
}

func toAttrs(kv []any) []slog.Attr {
	out := make([]slog.Attr, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, slog.Any(kv[i].(string), kv[i+1]))
	}
	return out
}

// serve classifies the request, applies the access rules that depend only
// on (repository, action), then dispatches.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (Route, error) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	lv := h.live.Load()
	if lv.Auth != nil && r.URL.Path == TokenPath {
		return Route{}, h.token(w, r)
	}
	rt, ok, err := ParseRoute(r.Method, r.URL.Path)
	if err != nil {
		return rt, err
	}
	if !ok {
		return rt, oci.Errorf(oci.ErrUnsupported, "no such endpoint: %s", r.URL.Path).WithStatus(http.StatusNotFound)
	}
	rt, cached := h.cacheRoute(r, rt)
	if lv.Auth != nil {
		if r, err = h.authorize(w, r, rt); err != nil {
			return rt, err
		}
	}
	if cached && (rt.Action == ActionPush || rt.Action == ActionDelete) {
		return rt, h.opts.PullThrough.Refuse(rt.Repo, r.Method)
	}
	if lv.ReadOnly && (rt.Action == ActionPush || rt.Action == ActionDelete) {
		return rt, oci.Errorf(oci.ErrUnsupported, "the registry is in read-only mode: pushes and deletes are refused")
	}
	if h.opts.DisableDelete && rt.Action == ActionDelete {
		return rt, oci.Errorf(oci.ErrUnsupported, "deletes are disabled on this registry")
	}
	lim := lv.reads
	if rt.Action == ActionPush || rt.Action == ActionDelete {
		lim = lv.writes
	}
	release, err := lim.acquire(r.Context())
	if err != nil {
		return rt, err
	}
	defer release()
	if cached {
		return rt, h.dispatchCache(w, r, rt)
	}
	return rt, h.dispatch(w, r, rt)
}

func methodNotAllowed(r *http.Request) error {
	return oci.Errorf(oci.ErrUnsupported, "method %s is not allowed here", r.Method)
}

func (h *Handler) dispatch(w http.ResponseWriter, r *http.Request, rt Route) error {
	switch rt.Kind {
	case KindBase:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return methodNotAllowed(r)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, "{}")
		}
		return nil
	case KindCatalog:
		if r.Method != http.MethodGet {
			return methodNotAllowed(r)
		}
		return h.catalog(w, r)
	case KindTags:
		if r.Method != http.MethodGet {
			return methodNotAllowed(r)
		}
		return h.tags(w, r, rt)
	case KindManifest:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return h.getManifest(w, r, rt)
		case http.MethodPut:
			return h.putManifest(w, r, rt)
		case http.MethodDelete:
			if err := h.reg.DeleteManifest(r.Context(), rt.Repo, rt.Ref); err != nil {
				return err
			}
			w.WriteHeader(http.StatusAccepted)
			return nil
		}
	case KindBlob:
		d, err := oci.ParseDigest(rt.Ref)
		if err != nil {
			return err
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return h.getBlob(w, r, rt, d)
		case http.MethodDelete:
			if err := h.reg.DeleteBlob(r.Context(), rt.Repo, d); err != nil {
				return err
			}
			w.WriteHeader(http.StatusAccepted)
			return nil
		}
	case KindUploadStart:
		if r.Method == http.MethodPost {
			return h.startUpload(w, r, rt)
		}
	case KindUpload:
		switch r.Method {
		case http.MethodGet:
			size, err := h.reg.UploadSize(r.Context(), rt.Repo, rt.Ref)
			if err != nil {
				return err
			}
			uploadAccepted(w, rt.Repo, rt.Ref, size, http.StatusNoContent)
			return nil
		case http.MethodPatch:
			return h.patchUpload(w, r, rt)
		case http.MethodPut:
			return h.putUpload(w, r, rt)
		case http.MethodDelete:
			if err := h.reg.CancelUpload(r.Context(), rt.Repo, rt.Ref); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	case KindReferrers:
		if r.Method == http.MethodGet {
			return h.referrers(w, r, rt)
		}
	}
	return methodNotAllowed(r)
}

// ---- manifests ----

func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request, rt Route) error {
	if r.Method == http.MethodHead {
		info, err := h.reg.StatManifest(r.Context(), rt.Repo, rt.Ref)
		if err != nil {
			return err
		}
		manifestHeaders(w, info)
		return nil
	}
	info, raw, err := h.reg.GetManifest(r.Context(), rt.Repo, rt.Ref)
	if err != nil {
		return err
	}
	manifestHeaders(w, info)
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, string(info.Digest)) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	_, _ = w.Write(raw)
	tag := rt.Ref
	if oci.IsDigestReference(tag) {
		tag = ""
	}
	h.reg.Pulled(r.Context(), events.Change{Repo: rt.Repo, Digest: info.Digest, MediaType: info.MediaType, Size: info.Size, Tag: tag})
	return nil
}

func manifestHeaders(w http.ResponseWriter, info registry.ManifestInfo) {
	hd := w.Header()
	hd.Set("Content-Type", info.MediaType)
	hd.Set("Docker-Content-Digest", string(info.Digest))
	hd.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	hd.Set("ETag", `"`+string(info.Digest)+`"`)
}

func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, rt Route) error {
	if r.ContentLength > oci.MaxManifestSize {
		return oci.ManifestTooLarge(r.ContentLength)
	}
	d, m, err := h.reg.PutManifest(r.Context(), rt.Repo, rt.Ref, r.Header.Get("Content-Type"), r.Body)
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("Location", "/v2/"+rt.Repo+"/manifests/"+string(d))
	hd.Set("Docker-Content-Digest", string(d))
	if m.Subject != nil {
		hd.Set("OCI-Subject", string(m.Subject.Digest))
	}
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// ---- blobs ----

func (h *Handler) getBlob(w http.ResponseWriter, r *http.Request, rt Route, d digestT) error {
	if r.Method == http.MethodHead {
		size, err := h.reg.StatBlob(r.Context(), rt.Repo, d)
		if err != nil {
			return err
		}
		hd := w.Header()
		hd.Set("Content-Type", "application/octet-stream")
		hd.Set("Content-Length", strconv.FormatInt(size, 10))
		hd.Set("Docker-Content-Digest", string(d))
		hd.Set("Accept-Ranges", "bytes")
		hd.Set("ETag", `"`+string(d)+`"`)
		return nil
	}
	blob, size, err := h.reg.OpenBlob(r.Context(), rt.Repo, d)
	if err != nil {
		return err
	}
	defer blob.Close()
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Docker-Content-Digest", string(d))
	hd.Set("ETag", `"`+string(d)+`"`)
	hd.Set("Cache-Control", "max-age=31536000")
	// ServeContent answers Range (206/416) and If-None-Match, and copies a
	// filesystem blob with sendfile.
	http.ServeContent(w, r, "", time.Time{}, blob)
	h.reg.Pulled(r.Context(), events.Change{Repo: rt.Repo, Digest: d, MediaType: events.BlobMediaType, Size: size})
	return nil
}

func uploadLocation(repo, id string) string { return "/v2/" + repo + "/blobs/uploads/" + id }

func uploadAccepted(w http.ResponseWriter, repo, id string, size int64, status int) {
	hd := w.Header()
	hd.Set("Location", uploadLocation(repo, id))
	hd.Set("Range", rangeHeader(size))
	hd.Set("Docker-Upload-UUID", id)
	hd.Set("Content-Length", "0")
	w.WriteHeader(status)
}

func blobCreated(w http.ResponseWriter, repo string, d digestT) {
	hd := w.Header()
	hd.Set("Location", "/v2/"+repo+"/blobs/"+string(d))
	hd.Set("Docker-Content-Digest", string(d))
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func (h *Handler) startUpload(w http.ResponseWriter, r *http.Request, rt Route) error {
	q := r.URL.Query()
	ctx := r.Context()
	if mount := q.Get("mount"); mount != "" {
		d, err := oci.ParseDigest(mount)
		if err != nil {
			return err
		}
		if from := q.Get("from"); from != "" && oci.ValidateName(from) == nil && from != rt.Repo {
			ok, err := h.reg.MountBlob(ctx, rt.Repo, from, d)
			if err != nil {
				return err
			}
			if ok {
				blobCreated(w, rt.Repo, d)
				return nil
			}
		} else if from == rt.Repo {
			if _, err := h.reg.StatBlob(ctx, rt.Repo, d); err == nil {
				blobCreated(w, rt.Repo, d)
				return nil
			}
		}
		// Not mountable: fall back to an ordinary upload session.
	} else if dg := q.Get("digest"); dg != "" {
		d, err := oci.ParseDigest(dg)
		if err != nil {
			return err
		}
		if err := h.reg.PutBlob(ctx, rt.Repo, d, r.Body); err != nil {
			return err
		}
		blobCreated(w, rt.Repo, d)
		return nil
	}
	id, err := h.reg.StartUpload(ctx, rt.Repo)
	if err != nil {
		return err
	}
	w.Header().Set("OCI-Chunk-Min-Length", "0")
	uploadAccepted(w, rt.Repo, id, 0, http.StatusAccepted)
	return nil
}

func (h *Handler) patchUpload(w http.ResponseWriter, r *http.Request, rt Route) error {
	start, err := h.reg.ChunkStart(r.Context(), rt.Repo, rt.Ref, r.Header.Get("Content-Range"), r.ContentLength)
	if err != nil {
		return err
	}
	size, err := h.reg.AppendUpload(r.Context(), rt.Repo, rt.Ref, start, r.Body)
	if err != nil {
		return err
	}
	uploadAccepted(w, rt.Repo, rt.Ref, size, http.StatusAccepted)
	return nil
}

func (h *Handler) putUpload(w http.ResponseWriter, r *http.Request, rt Route) error {
	dg := r.URL.Query().Get("digest")
	if dg == "" {
		return oci.Errorf(oci.ErrDigestInvalid, "the digest query parameter is required to complete an upload")
	}
	d, err := oci.ParseDigest(dg)
	if err != nil {
		return err
	}
	start, err := h.reg.ChunkStart(r.Context(), rt.Repo, rt.Ref, r.Header.Get("Content-Range"), r.ContentLength)
	if err != nil {
		return err
	}
	var body io.Reader
	if r.ContentLength != 0 {
		body = r.Body
	}
	if err := h.reg.CompleteUpload(r.Context(), rt.Repo, rt.Ref, d, start, body); err != nil {
		return err
	}
	blobCreated(w, rt.Repo, d)
	return nil
}

// ---- discovery ----

// pageParams reads n and last; n < 0 means no limit given.
func pageParams(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	n = -1
	if s := q.Get("n"); s != "" {
		v, perr := strconv.Atoi(s)
		if perr != nil || v < 0 {
			return 0, "", oci.Errorf(oci.ErrUnsupported, "n must be a non-negative integer, got %q", s).WithStatus(http.StatusBadRequest)
		}
		n = v
	}
	return n, q.Get("last"), nil
}

func nextLink(path string, last string, n int) string {
	v := url.Values{}
	v.Set("last", last)
	v.Set("n", strconv.Itoa(n))
	return fmt.Sprintf(`<%s?%s>; rel="next"`, path, v.Encode())
}

func writeJSON(w http.ResponseWriter, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
	return nil
}

func (h *Handler) tags(w http.ResponseWriter, r *http.Request, rt Route) error {
	n, last, err := pageParams(r)
	if err != nil {
		return err
	}
	tags, more, err := h.reg.Tags(r.Context(), rt.Repo, last, n)
	if err != nil {
		return err
	}
	if more && len(tags) > 0 {
		w.Header().Set("Link", nextLink(r.URL.Path, tags[len(tags)-1], n))
	}
	return writeJSON(w, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.Repo, tags})
}

func (h *Handler) catalog(w http.ResponseWriter, r *http.Request) error {
	if id, ok := r.Context().Value(catalogIdentityKey{}).(auth.Identity); ok && !h.authz().CatalogAll(id) {
		return h.filteredCatalog(w, r, id)
	}
	n, last, err := pageParams(r)
	if err != nil {
		return err
	}
	names, more, err := h.reg.Catalog(r.Context(), last, n)
	if err != nil {
		return err
	}
	if more && len(names) > 0 {
		w.Header().Set("Link", nextLink(r.URL.Path, names[len(names)-1], n))
	}
	return writeJSON(w, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{names})
}

func (h *Handler) referrers(w http.ResponseWriter, r *http.Request, rt Route) error {
	d, err := oci.ParseDigest(rt.Ref)
	if err != nil {
		return err
	}
	artifactType := r.URL.Query().Get("artifactType")
	list, err := h.reg.Referrers(r.Context(), rt.Repo, d, artifactType)
	if err != nil {
		return err
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, oci.MediaTypeOCIIndex, struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType"`
		Manifests     []oci.Descriptor `json:"manifests"`
	}{2, oci.MediaTypeOCIIndex, list})
}
