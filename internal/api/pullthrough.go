package api

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/pullthrough"
)

// cacheRoute maps a request to the pull-through cache's local repository
// (prefix/repository, or containerd's ?ns= plus the repository) and tells
// whether the cache serves it.
func (h *Handler) cacheRoute(r *http.Request, rt Route) (Route, bool) {
	pt := h.opts.PullThrough
	if pt == nil || rt.Repo == "" {
		return rt, false
	}
	local, ok := pt.Resolve(rt.Repo, r.URL.Query().Get("ns"))
	if !ok {
		return rt, false
	}
	if oci.ValidateName(local) != nil {
		return rt, false
	}
	rt.Repo = local
	return rt, true
}

// dispatchCache serves pulls under a pull-through prefix; pushes and
// deletes were refused before.
func (h *Handler) dispatchCache(w http.ResponseWriter, r *http.Request, rt Route) error {
	pt := h.opts.PullThrough
	switch rt.Kind {
	case KindManifest:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			break
		}
		res, err := pt.Manifest(r.Context(), rt.Repo, rt.Ref, r.Method == http.MethodHead)
		if err != nil {
			return err
		}
		if res.Warning != "" {
			w.Header().Set("Warning", res.Warning)
		}
		manifestHeaders(w, res.Info)
		if r.Method == http.MethodHead {
			return nil
		}
		if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, string(res.Info.Digest)) {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		_, _ = w.Write(res.Raw)
		return nil
	case KindBlob:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			break
		}
		d, err := oci.ParseDigest(rt.Ref)
		if err != nil {
			return err
		}
		return h.cachedBlob(w, r, pt, rt, d)
	case KindReferrers:
		if r.Method != http.MethodGet {
			break
		}
		d, err := oci.ParseDigest(rt.Ref)
		if err != nil {
			return err
		}
		artifactType := r.URL.Query().Get("artifactType")
		list, warning, err := pt.Referrers(r.Context(), rt.Repo, d, artifactType)
		if err != nil {
			return err
		}
		if warning != "" {
			w.Header().Set("Warning", warning)
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
	return h.dispatch(w, r, rt)
}

func (h *Handler) cachedBlob(w http.ResponseWriter, r *http.Request, pt *pullthrough.Cache, rt Route, d digestT) error {
	b, err := pt.Blob(r.Context(), rt.Repo, d)
	if err != nil {
		return err
	}
	defer b.Close()
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Docker-Content-Digest", string(d))
	hd.Set("ETag", `"`+string(d)+`"`)
	if b.Committed != nil {
		if r.Method == http.MethodHead {
			hd.Set("Content-Length", strconv.FormatInt(b.Size, 10))
			hd.Set("Accept-Ranges", "bytes")
			return nil
		}
		hd.Set("Cache-Control", "max-age=31536000")
		http.ServeContent(w, r, "", time.Time{}, b.Committed)
		return nil
	}
	// A fill in progress: stream what arrives.
	start, end, partial, err := blobRange(r.Header.Get("Range"), b.Size)
	if err != nil {
		hd.Set("Content-Range", fmt.Sprintf("bytes */%d", b.Size))
		return err
	}
	if b.Size >= 0 {
		hd.Set("Accept-Ranges", "bytes")
	}
	status := http.StatusOK
	switch {
	case partial:
		status = http.StatusPartialContent
		total := "*"
		if b.Size >= 0 {
			total = strconv.FormatInt(b.Size, 10)
		}
		hd.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%s", start, end-1, total))
		hd.Set("Content-Length", strconv.FormatInt(end-start, 10))
	case b.Size >= 0:
		hd.Set("Content-Length", strconv.FormatInt(b.Size, 10))
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return nil
	}
	w.WriteHeader(status)
	rd := b.Reader(r.Context(), start, end)
	defer rd.Close()
	buf := make([]byte, 256<<10)
	fl, _ := w.(http.Flusher)
	for {
		n, rerr := rd.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client went away; the fill goes on
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			// Headers are gone: break the connection so the client sees a
			// truncated body, never a complete wrong one.
			h.log.WarnContext(r.Context(), "pull-through: blob stream failed", "repository", rt.Repo, "digest", d, "error", rerr)
			panic(http.ErrAbortHandler)
		}
	}
}

// blobRange reads a single-range Range header against size (-1: unknown)
// as [start, end); partial is false for no header or one that is ignored
// (several ranges, another unit, a suffix of an unknown size).
func blobRange(h string, size int64) (start, end int64, partial bool, err error) {
	end = size
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, end, false, nil
	}
	a, z, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, end, false, nil
	}
	bad := oci.Errorf(oci.ErrRangeInvalid, "range %q is not satisfiable", h)
	switch {
	case a == "" && size < 0:
		return 0, end, false, nil
	case a == "":
		n, perr := strconv.ParseInt(z, 10, 64)
		if perr != nil || n <= 0 {
			return 0, 0, false, bad
		}
		return max(size-n, 0), size, true, nil
	}
	s, perr := strconv.ParseInt(a, 10, 64)
	if perr != nil || s < 0 || (size >= 0 && s >= size) {
		return 0, 0, false, bad
	}
	e := size
	if z != "" {
		v, perr := strconv.ParseInt(z, 10, 64)
		if perr != nil || v < s {
			return 0, 0, false, bad
		}
		e = v + 1
		if size >= 0 {
			e = min(e, size)
		}
	} else if size < 0 {
		return 0, end, false, nil // an open range of an unknown size: send it all
	}
	return s, e, true, nil
}
