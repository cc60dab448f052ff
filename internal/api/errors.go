package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

type envelope struct {
	Errors []wireError `json:"errors"`
}

type wireError struct {
	Code    oci.Code `json:"code"`
	Message string   `json:"message"`
	Detail  any      `json:"detail,omitempty"`
}

// writeError is the one place errors become responses: protocol errors in
// the OCI envelope with their status, anything else as a logged 500.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, rt Route, err error) {
	var rangeErr *registry.RangeError
	var e *oci.Error
	switch {
	case errors.As(err, &rangeErr):
		// Out-of-order chunk: 416 with the range the upload holds, so the
		// client can resume from the right offset.
		w.Header().Set("Location", uploadLocation(rt.Repo, rt.Ref))
		w.Header().Set("Range", rangeHeader(rangeErr.Size))
		w.Header().Set("Docker-Upload-UUID", rt.Ref)
		e = oci.Errorf(oci.ErrBlobUploadInvalid, "%s", rangeErr.Error()).WithStatus(http.StatusRequestedRangeNotSatisfiable)
	case errors.As(err, &e):
	default:
		h.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &oci.Error{Code: oci.ErrUnknown, Message: "internal error"}
	}
	status := e.HTTPStatus()
	if status >= 500 && e.Code != oci.ErrUnknown {
		h.log.ErrorContext(r.Context(), "server error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body, _ := json.Marshal(envelope{Errors: []wireError{{Code: e.Code, Message: e.Message, Detail: e.Detail}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.code = e.Code
	}
}

func rangeHeader(size int64) string {
	if size <= 0 {
		return "0-0"
	}
	return fmt.Sprintf("0-%d", size-1)
}
