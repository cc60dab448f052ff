package config

import (
	"strings"
	"testing"
	"time"
)

func TestNotifications(t *testing.T) {
	for _, c := range []struct {
		name    string
		in      string
		wantErr []string
		check   func(t *testing.T, n Notifications)
	}{
		{name: "absent: none", in: "", check: func(t *testing.T, n Notifications) {
			if n.Enabled() || n.Pulls || len(n.Endpoints) != 0 {
				t.Fatalf("notifications = %+v", n)
			}
		}},
		{name: "defaults", in: `notifications:
  endpoints:
  - name: ci
    url: https://hooks.example.com/registry
    headers:
      Authorization: [Bearer s3cret]
    ignoredMediaTypes: [application/octet-stream]
    ignore:
      actions: [delete]
`, check: func(t *testing.T, n Notifications) {
			e := n.Endpoints[0]
			if !n.Enabled() || e.Timeout.D() != DefaultEndpointTimeout || e.Threshold != DefaultEndpointThreshold || e.Backoff.D() != DefaultEndpointBackoff {
				t.Fatalf("endpoint = %+v", e)
			}
			if e.Headers["Authorization"][0] != "Bearer s3cret" || e.IgnoredMediaTypes[0] != "application/octet-stream" || e.Ignore.Actions[0] != "delete" {
				t.Fatalf("endpoint = %+v", e)
			}
		}},
		{name: "set values", in: `notifications:
  pulls: true
  endpoints:
  - {name: a, url: "http://127.0.0.1:9000/hook", timeout: 500ms, threshold: 10, backoff: 2s}
  - {name: b, url: "http://127.0.0.1:9001/hook", disabled: true}
`, check: func(t *testing.T, n Notifications) {
			if !n.Pulls || n.Endpoints[0].Timeout.D() != 500*time.Millisecond || n.Endpoints[0].Threshold != 10 || n.Endpoints[0].Backoff.D() != 2*time.Second || !n.Endpoints[1].Disabled {
				t.Fatalf("notifications = %+v", n)
			}
		}},
		{name: "every problem at once", in: `notifications:
  endpoints:
  - url: ftp://x
    threshold: -1
    ignore: {actions: [pul]}
  - {name: dup, url: "http://a"}
  - {name: dup, url: "http://b", headers: {"Bad Name": [x]}}
`, wantErr: []string{
			"notifications.endpoints[0].name: required",
			`notifications.endpoints[0].url: "ftp://x" is not an http(s) URL`,
			"notifications.endpoints[0].threshold: -1 must not be negative",
			`notifications.endpoints[0].ignore.actions: "pul" is not one of push, pull, delete, mount`,
			`notifications.endpoints[2].name: "dup" is already the name of endpoints[1]`,
			`notifications.endpoints[2].headers: "Bad Name" is not a header name`,
		}},
		{name: "a zero timeout is refused with its line", in: "notifications:\n  endpoints:\n  - name: a\n    url: http://a\n    timeout: 0s\n", wantErr: []string{"line 5"}},
		{name: "Distribution's spelling gets a hint", in: "notifications:\n  endpoints:\n  - name: a\n    url: http://a\n    ignoredmediatypes: [x]\n", wantErr: []string{"line 5: field ignoredmediatypes not found in notifications.endpoints (Berth spells it ignoredMediaTypes)"}},
		{name: "headersFromEnv problems", in: `notifications:
  endpoints:
  - name: a
    url: http://a
    headers: {authorization: [x]}
    headersFromEnv: {Authorization: TOKEN, X-Key: 1BAD, "Bad Name": OK}
`, wantErr: []string{
			"notifications.endpoints[0].headersFromEnv.Authorization: the header is in headers too",
			`notifications.endpoints[0].headersFromEnv.X-Key: "1BAD" is not an environment variable name`,
			`notifications.endpoints[0].headersFromEnv: "Bad Name" is not a header name`,
		}},
		{name: "pulls without an endpoint", in: "notifications:\n  pulls: true\n", wantErr: []string{"notifications.pulls: no endpoint"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse(strings.NewReader(c.in))
			if len(c.wantErr) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range c.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, cfg.Notifications)
		})
	}
}

func TestEndpointHeadersFromEnv(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`notifications:
  endpoints:
  - name: a
    url: http://a
    headers: {X-Source: [berth]}
    headersFromEnv: {Authorization: HOOK_TOKEN}
  - name: b
    url: http://b
    headersFromEnv: {Authorization: UNSET_TOKEN}
`))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOOK_TOKEN": "Bearer s3cret"}
	cfg.ReadEnv(func(k string) string { return env[k] })
	h, err := cfg.EndpointHeaders(0)
	if err != nil || h["Authorization"][0] != "Bearer s3cret" || h["X-Source"][0] != "berth" || len(h) != 2 {
		t.Fatalf("EndpointHeaders(0) = %v, %v", h, err)
	}
	if cfg.Notifications.Endpoints[0].Headers["Authorization"] != nil {
		t.Fatal("resolving the headers changed the config")
	}
	if _, err := cfg.EndpointHeaders(1); err == nil || !strings.Contains(err.Error(), "notifications.endpoints[1].headersFromEnv.Authorization: the environment variable UNSET_TOKEN is not set") {
		t.Fatalf("EndpointHeaders(1) with its variable unset: %v", err)
	}
}
