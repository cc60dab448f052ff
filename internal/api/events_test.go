package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/storage"
	"github.com/opencontainers/go-digest"
)

// TestEventsNameTheRequest pushes, pulls and deletes through the HTTP
// layer with access control on and checks what the queued events say
// about the request: who, from where, to which host, how; and that HEADs
// and refused requests queue nothing.
func TestEventsNameTheRequest(t *testing.T) {
	ctx := context.Background()
	meta, err := metadata.OpenSQLite(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	n := events.New(config.Notifications{Pulls: true, Endpoints: []config.Endpoint{{Name: "hook", URL: "http://hook.example"}}}, "127.0.0.1:5000", nil)
	reg := registry.New(storage.NewMemory(), meta, registry.Options{Notifier: n})
	h := newAuthHandlerOn(t, reg, Options{Notifications: true})

	send := func(c cred, method, target, body, contentType string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		r.Host = "registry.corp:5000"
		r.Header.Set("User-Agent", "events-test/1")
		r.Header.Set("X-Forwarded-For", "10.1.2.3, 10.0.0.1")
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		c.set(r)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	editor := cred{user: "editor"}
	cfg := `{"architecture":"amd64","os":"linux"}`
	cd := digest.FromString(cfg)
	if rec := send(editor, http.MethodPost, "/v2/team-a/app/blobs/uploads/?digest="+cd.String(), cfg, "application/octet-stream"); rec.Code != http.StatusCreated {
		t.Fatalf("blob push: %d %s", rec.Code, rec.Body)
	}
	man := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, cd, len(cfg))
	md := digest.FromString(man)
	if rec := send(cred{user: "viewer"}, http.MethodPut, "/v2/team-a/app/manifests/v1", man, "application/vnd.oci.image.manifest.v1+json"); rec.Code != http.StatusForbidden {
		t.Fatalf("viewer's push: %d", rec.Code)
	}
	if rec := send(editor, http.MethodPut, "/v2/team-a/app/manifests/v1", man, "application/vnd.oci.image.manifest.v1+json"); rec.Code != http.StatusCreated {
		t.Fatalf("manifest push: %d %s", rec.Code, rec.Body)
	}
	if rec := send(cred{user: "viewer"}, http.MethodHead, "/v2/team-a/app/manifests/v1", "", ""); rec.Code != http.StatusOK {
		t.Fatalf("HEAD: %d", rec.Code)
	}
	if rec := send(cred{user: "viewer"}, http.MethodGet, "/v2/team-a/app/manifests/v1", "", ""); rec.Code != http.StatusOK {
		t.Fatalf("GET: %d", rec.Code)
	}
	if rec := send(cred{user: "admin"}, http.MethodDelete, "/v2/team-a/app/manifests/"+md.String(), "", ""); rec.Code != http.StatusAccepted {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}

	q, err := meta.PendingEvents(ctx, "hook", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range q {
		var ev events.Event
		if err := json.Unmarshal(e.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Request.Addr != "10.1.2.3" || ev.Request.Host != "registry.corp:5000" || ev.Request.UserAgent != "events-test/1" || ev.Request.ID == "" {
			t.Errorf("%s event's request = %+v", ev.Action, ev.Request)
		}
		got = append(got, fmt.Sprintf("%s %s %s %s %s", ev.Action, ev.Actor.Name, ev.Request.Method, ev.Target.Tag, ev.Target.URL))
	}
	base := "http://registry.corp:5000/v2/team-a/app/"
	want := []string{
		"push editor POST  " + base + "blobs/" + cd.String(),
		"push editor PUT v1 " + base + "manifests/" + md.String(),
		"pull viewer GET v1 " + base + "manifests/" + md.String(),
		"delete admin DELETE  " + base + "manifests/" + md.String(),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
