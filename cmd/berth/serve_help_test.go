package main

import (
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
)

// TestServeHelpNotifications checks that serve --help documents every
// notifications field, and that its example is a config serve accepts.
func TestServeHelpNotifications(t *testing.T) {
	stdout, _, err := runBerth(t, "serve", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"notifications:", "endpoints", "name", "url", "headers", "headersFromEnv", "timeout", "threshold", "backoff", "ignoredMediaTypes", "ignore {mediaTypes", "actions", "pulls", "application/vnd.docker.distribution.events.v1+json", "registry_notifications_pending_total"} {
		if !strings.Contains(stdout, f) {
			t.Errorf("serve --help lacks %q", f)
		}
	}
	_, example, ok := strings.Cut(stdout, "# manifest push and delete events to a CI webhook (registry.yaml):\n")
	if !ok {
		t.Fatal("serve --help has no notifications example")
	}
	example, _, _ = strings.Cut(example, "\n\n")
	var lines []string
	for _, l := range strings.Split(example, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "  "))
	}
	cfg, err := config.Parse(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("the help's example does not load: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if e := cfg.Notifications.Endpoints; len(e) != 1 || e[0].Name != "ci" || e[0].IgnoredMediaTypes[0] != "application/octet-stream" || e[0].HeadersFromEnv["Authorization"] != "BERTH_CI_HOOK_AUTH" {
		t.Fatalf("the example loads as %+v", cfg.Notifications)
	}
}
