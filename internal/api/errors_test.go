package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/oci"
)

// TestQueuedClientGoesAway: a client that disconnects while the limiter
// queues it is no server error: nothing is logged at error level and the
// request log records 499, not 500.
func TestQueuedClientGoesAway(t *testing.T) {
	var logs bytes.Buffer
	base := newTestHandler(t)
	h := NewHandler(base.reg, slog.New(slog.NewJSONHandler(&logs, nil)), Options{ReadLimit: Limit{MaxRunning: 1, MaxInQueue: 1}})
	release, err := h.live.Load().reads.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v2/", nil).WithContext(ctx))
		done <- rec
	}()
	time.Sleep(20 * time.Millisecond) // queued behind the held slot
	cancel()
	rec := <-done
	if rec.Code != statusClientClosedRequest {
		t.Errorf("status %d, want %d", rec.Code, statusClientClosedRequest)
	}
	var line struct {
		Level  string
		Msg    string
		Status int
	}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if line.Level == "ERROR" {
			t.Errorf("logged as an error: %s", l)
		}
		if line.Msg == "request" && line.Status != statusClientClosedRequest {
			t.Errorf("request logged with status %d: %s", line.Status, l)
		}
	}
}

// TestChunkRangeRefused: a chunk whose Content-Range is malformed, does not
// match its body or is out of order is 416 BLOB_UPLOAD_INVALID with the
// range the upload holds.
func TestChunkRangeRefused(t *testing.T) {
	h := newTestHandler(t)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v2/r/blobs/uploads/", nil))
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusAccepted || loc == "" {
		t.Fatalf("start upload: %d %s", rec.Code, rec.Body)
	}
	patch := func(contentRange, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPatch, loc, strings.NewReader(body))
		if contentRange != "" {
			req.Header.Set("Content-Range", contentRange)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := patch("0-3", "abcd"); rec.Code != http.StatusAccepted {
		t.Fatalf("first chunk: %d %s", rec.Code, rec.Body)
	}
	for _, tc := range []struct{ name, contentRange, body, message string }{
		{"Malformed", "four-eight", "efgh", `malformed Content-Range "four-eight"`},
		{"LengthMismatch", "4-9", "efgh", "covers 6 bytes but Content-Length is 4"},
		{"OutOfOrder", "8-11", "ijkl", "does not start at the end of the upload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := patch(tc.contentRange, tc.body)
			if rec.Code != http.StatusRequestedRangeNotSatisfiable {
				t.Fatalf("status %d, want 416: %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Range"); got != "0-3" {
				t.Errorf("Range %q, want 0-3", got)
			}
			var env envelope
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || len(env.Errors) != 1 {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if e := env.Errors[0]; e.Code != oci.ErrBlobUploadInvalid || !strings.Contains(e.Message, tc.message) || !strings.Contains(e.Message, "4 bytes received") {
				t.Errorf("error %+v, want BLOB_UPLOAD_INVALID saying %q", e, tc.message)
			}
		})
	}
}

func TestManifestTooLarge(t *testing.T) {
	h := newTestHandler(t)
	body := bytes.Repeat([]byte(" "), oci.MaxManifestSize+1)
	req := httptest.NewRequest(http.MethodPut, "/v2/r/manifests/big", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), `"SIZE_INVALID"`) {
		t.Fatalf("oversized manifest: %d %s", rec.Code, rec.Body)
	}
}
