package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/server"
	"github.com/berth-registry/berth/internal/testpeer"
)

// TestRobotTokenRevocation records two robot tokens of one user, revokes
// one in the metadata store (as berth admin token revoke does, from
// another process), and sees serve refuse it — in Basic auth and through
// an access token issued for it — within the refresh interval, while the
// other keeps working; on SQLite and on PostgreSQL.
func TestRobotTokenRevocation(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	const refresh = 100 * time.Millisecond
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			cfg, err := config.Parse(strings.NewReader(`
auth:
  tokenSecret: ` + secret + `
  roleBindings:
  - {role: registry-viewer, namespace: "*", users: [ci-bot]}
`))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Storage.Filesystem = &config.Filesystem{RootDirectory: t.TempDir()}
			if backend == "postgres" {
				cfg.MetadataDatabase = testpeer.StartPostgres(t).NewDatabase(t)
			}
			// What the admin command does: open the store the config
			// names, record each token as it is made.
			meta, err := server.OpenMetadata(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer meta.Close()
			var robots []auth.Robot
			for range 2 {
				r, err := auth.NewRobot(auth.SigningKey(secret, ""), "ci-bot", time.Hour, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if err := meta.RecordToken(ctx, metadata.RobotToken{ID: r.ID, Subject: r.User, Created: r.Created, Expires: r.Expires}); err != nil {
					t.Fatal(err)
				}
				robots = append(robots, r)
			}
			_, addr := startServer(t, cfg, &syncBuffer{}, server.Options{RevocationRefresh: refresh})
			c := ociClient{t: t, base: "http://" + addr}
			bearer := func(r auth.Robot) string {
				t.Helper()
				rep := c.call(http.MethodGet, "/v2/token?service=berth&scope=repository:app:pull", r.User, r.Token)
				expect(t, "token for "+r.ID, rep, http.StatusOK, "")
				var body struct{ Token string }
				if err := json.Unmarshal(rep.body, &body); err != nil || body.Token == "" {
					t.Fatalf("token reply %s: %v", rep.body, err)
				}
				return body.Token
			}
			access := bearer(robots[0])
			for _, r := range robots {
				expect(t, "before: "+r.ID, c.call(http.MethodGet, "/v2/app/tags/list", r.User, r.Token), http.StatusNotFound, "NAME_UNKNOWN")
			}

			if err := meta.RevokeTokens(ctx, []string{robots[0].ID}, time.Now()); err != nil {
				t.Fatal(err)
			}
			revoked := time.Now()
			for c.call(http.MethodGet, "/v2/app/tags/list", robots[0].User, robots[0].Token).status != http.StatusUnauthorized {
				if time.Since(revoked) > refresh+5*time.Second {
					t.Fatalf("the revoked token still works %s after the revocation (refresh %s)", time.Since(revoked), refresh)
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("revocation applied after %s (refresh every %s)", time.Since(revoked).Round(time.Millisecond), refresh)
			expect(t, "revoked, Basic", c.call(http.MethodGet, "/v2/app/tags/list", robots[0].User, robots[0].Token), http.StatusUnauthorized, "UNAUTHORIZED")
			req := c.req(http.MethodGet, "/v2/app/tags/list", "", "", nil, 0, "Authorization", "Bearer "+access)
			expect(t, "revoked, its access token", c.do(req), http.StatusUnauthorized, "UNAUTHORIZED")
			expect(t, "revoked, new access token", c.call(http.MethodGet, "/v2/token?service=berth&scope=repository:app:pull", robots[0].User, robots[0].Token), http.StatusUnauthorized, "UNAUTHORIZED")
			expect(t, "the user's other token", c.call(http.MethodGet, "/v2/app/tags/list", robots[1].User, robots[1].Token), http.StatusNotFound, "NAME_UNKNOWN")
			other := c.req(http.MethodGet, "/v2/app/tags/list", "", "", nil, 0, "Authorization", "Bearer "+bearer(robots[1]))
			expect(t, "the other token's access token", c.do(other), http.StatusNotFound, "NAME_UNKNOWN")
		})
	}
}
