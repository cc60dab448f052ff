package api

import (
	"context"
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
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away (while queued by a limiter, or mid-body):
		// nobody reads the answer, and it is no failure of the server.
		h.log.DebugContext(r.Context(), "client went away", "method", r.Method, "path", r.URL.Path, "error", err)
		w.WriteHeader(statusClientClosedRequest)
		return
	}
	var rangeErr *registry.RangeError
	if errors.As(err, &rangeErr) {
		// Out-of-order chunk: the range the upload holds, so the client
		// can resume from the right offset.
		w.Header().Set("Location", uploadLocation(rt.Repo, rt.Ref))
		w.Header().Set("Range", rangeHeader(rangeErr.Size))
		w.Header().Set("Docker-Upload-UUID", rt.Ref)
	}
	e, ok := oci.AsError(err)
	if !ok {
		h.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "error", err)
		e = &oci.Error{Code: oci.ErrUnknown, Message: "internal error"}
	}
	status := e.HTTPStatus()
	if status >= 500 && e.Code != oci.ErrUnknown {
		h.log.ErrorContext(r.Context(), "server error", "method", r.Method, "path", r.URL.Path, "error", err)
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

// statusClientClosedRequest is what the request log and metrics record for
// a client that went away before its answer: nginx's 499, as no standard
// status means that.
const statusClientClosedRequest = 499

func rangeHeader(size int64) string {
	if size <= 0 {
		return "0-0"
	}
	return fmt.Sprintf("0-%d", size-1)
}
