package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/berth-registry/berth/internal/api"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/metadata"
)

// What a reload changes, and how. Everything a request reads that may
// change lives behind one atomic pointer, built here and swapped whole:
// the api handler's live settings (readOnly, request limits, the
// authorizer with its htpasswd users, groups, role bindings, anonymous
// role, token secret and lifetime, and the realm), the TLS certificates,
// and the log level. A request loads them once as it starts, so one in
// flight — a blob streaming, a chunk of an upload — finishes under the
// rules it began with; upload sessions live in the stores, which a reload
// never touches, so a session opened before it continues after it.
//
// Everything else needs a restart (restartFields): it is reported in the
// log at each reload that finds it changed, and the running value is kept.

// Reload applies next, a config that Load (or the caller) produced, to the
// running server. A config that fails validation, names an htpasswd file
// that does not load, or certificates that do not, is refused whole: the
// running settings stay, and the reason is logged and returned.
func (s *Server) Reload(next *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.reload(next)
	if err != nil {
		s.log.Error("config reload refused; the running config is kept", "error", err)
	}
	return err
}

func (s *Server) reload(next *config.Config) error {
	if err := next.Validate(); err != nil {
		return err
	}
	var errs []error
	authz, realm, err := s.newAuthorizer(next)
	if err != nil {
		errs = append(errs, err)
	}
	var certs *certSet
	if s.cfg.TLS.Enabled() && next.TLS.Enabled() {
		if certs, err = loadCerts(next.TLS); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.api.SetLive(api.Live{
		ReadOnly:   next.ReadOnly,
		ReadLimit:  api.Limit{MaxRunning: next.Requests.Read.MaxRunning, MaxInQueue: next.Requests.Read.MaxInQueue, MaxWait: next.Requests.Read.MaxWaitInQueue.D()},
		WriteLimit: api.Limit{MaxRunning: next.Requests.Write.MaxRunning, MaxInQueue: next.Requests.Write.MaxInQueue, MaxWait: next.Requests.Write.MaxWaitInQueue.D()},
		Auth:       authz,
		AuthRealm:  realm,
	})
	if certs != nil {
		s.certs.Store(certs)
		s.certStamp = tlsStamp(next.TLS)
	}
	level := "unchanged (no level variable)"
	if s.opts.Level != nil {
		s.opts.Level.Set(logLevel(next))
		level = s.opts.Level.Level().String()
	}
	s.applied = next
	users := 0
	if authz != nil {
		users = authz.Users()
	}
	s.log.Info("config reloaded", "readOnly", next.ReadOnly, "auth", authz != nil, "users", users, "tls", certs != nil, "logLevel", level)
	if restart := needsRestart(s.cfg, next); len(restart) > 0 {
		s.log.Warn("config reloaded, but these settings change only at a restart; their running values are kept", "needsRestart", restart)
	}
	return nil
}

// logLevel is the slog level cfg asks for.
func logLevel(cfg *config.Config) slog.Level {
	if cfg.Debug() {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// restartFields are the settings a reload does not apply, each with how to
// read it from a config.
var restartFields = []struct {
	name string
	get  func(*config.Config) any
}{
	{"addr", func(c *config.Config) any { return c.Addr }},
	{"storage", func(c *config.Config) any { return c.Storage }},
	{"metadataDirectory", func(c *config.Config) any { return c.MetadataDirectory }},
	{"metadataDatabase", func(c *config.Config) any { return c.MetadataDSN() }},
	{"httpSecret", func(c *config.Config) any { return c.HTTPSecret }},
	{"disableDelete", func(c *config.Config) any { return c.DisableDelete }},
	{"shutdownTimeout", func(c *config.Config) any { return c.ShutdownTimeout }},
	{"gc", func(c *config.Config) any { return c.GC }},
	{"prune", func(c *config.Config) any { return c.Prune }},
	{"pullThrough", func(c *config.Config) any { return c.PullThrough }},
	{"imports", func(c *config.Config) any { return c.Imports }},
	{"notifications", func(c *config.Config) any { return c.Notifications }},
	{"metrics", func(c *config.Config) any { return c.Metrics }},
	{"tls (turning it on or off)", func(c *config.Config) any { return c.TLS.Enabled() }},
	{"object store credentials (environment)", func(c *config.Config) any { return c.Env }},
}

// needsRestart names the restart-only settings that differ between the
// config the server started with and next.
func needsRestart(running, next *config.Config) []string {
	var out []string
	for _, f := range restartFields {
		if !reflect.DeepEqual(f.get(running), f.get(next)) {
			out = append(out, f.name)
		}
	}
	return out
}

// hangupLoop reloads the config from Options.Load at each signal.
func (s *Server) hangupLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.opts.Hangup:
		}
		s.log.Info("SIGHUP: reloading the config")
		next, err := s.opts.Load()
		if err != nil {
			s.log.Error("config reload refused; the running config is kept", "error", err)
			continue
		}
		_ = s.Reload(next)
	}
}

// certLoop re-reads the certificates when their files change on disk (a
// renewal by cert-manager, a secret volume's swap), without a SIGHUP. A
// pair that does not load — a certificate written before its key — keeps
// the running certificates and is tried again at the next change.
func (s *Server) certLoop(ctx context.Context) {
	every := s.opts.CertPoll
	if every <= 0 {
		every = DefaultCertPoll
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failed := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		tc := s.applied.TLS
		if !tc.Enabled() {
			s.mu.Unlock()
			continue
		}
		stamp := tlsStamp(tc)
		if stamp != s.certStamp && stamp != failed {
			if cs, err := loadCerts(tc); err != nil {
				failed = stamp
				s.log.Warn("tls: the certificate files changed but do not load; the running certificates are kept", "error", err)
			} else {
				s.certs.Store(cs)
				s.certStamp, failed = stamp, ""
				s.log.Info("tls: certificates re-read after a change on disk", "files", tlsFiles(tc))
			}
		}
		s.mu.Unlock()
	}
}

// refreshRevocations re-reads the revoked robot tokens.
func (s *Server) refreshRevocations(ctx context.Context, meta *metadata.Store) error {
	ids, err := meta.RevokedTokens(ctx, time.Now())
	if err != nil {
		return err
	}
	s.revoked.Set(ids)
	return nil
}

// revocationLoop keeps the revoked robot tokens current: a revocation made
// on any replica (berth admin token revoke writes the shared metadata
// store) applies here within one RevocationRefresh. A failed read keeps the
// last set.
func (s *Server) revocationLoop(ctx context.Context) {
	every := s.opts.RevocationRefresh
	if every <= 0 {
		every = DefaultRevocationRefresh
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.refreshRevocations(ctx, s.meta); err != nil && ctx.Err() == nil {
			s.log.Warn("reading revoked robot tokens failed; the last set is kept", "error", fmt.Errorf("metadata: %w", err))
		}
	}
}
