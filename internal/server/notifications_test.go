package server_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server"
)

// TestServeRefusesAnUnsetWebhookCredential: a headersFromEnv variable that
// is not set stops serve at start, naming the field and the variable,
// instead of posting events without their credential.
func TestServeRefusesAnUnsetWebhookCredential(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader("storage: {emptyDir: {}}\nnotifications:\n  endpoints:\n  - name: ci\n    url: http://127.0.0.1:1/hook\n    headersFromEnv: {Authorization: BERTH_TEST_UNSET_HOOK_TOKEN}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ReadEnv(func(string) string { return "" })
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{})
	if err == nil {
		srv.Close()
		t.Fatal("serve started without the webhook's credential")
	}
	if want := "notifications.endpoints[0].headersFromEnv.Authorization: the environment variable BERTH_TEST_UNSET_HOOK_TOKEN is not set"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q lacks %q", err, want)
	}
}
