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
