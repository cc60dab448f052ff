package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/internal/api"
	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/console"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/pullthrough"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Server is a wired registry ready to serve.
type Server struct {
	cfg     *config.Config // as it started; what needs a restart stays so
	opts    Options
	log     *slog.Logger
	stores  *Stores
	meta    *metadata.Store
	blobs   storage.Backend
	reg     *registry.Registry
	cache   *pullthrough.Cache
	imports []scheduledImport
	stop    context.CancelFunc // ends the cache's fills and background work
	api     *api.Handler
	web     *console.Handler // the console, in front of api
	events  *events.Notifier // nil without notifications

	// What a reload swaps (see reload.go). mu serialises reloads and the
	// TLS file poll; requests only ever do atomic loads.
	mu        sync.Mutex
	applied   *config.Config // the last config applied
	certs     atomic.Pointer[certSet]
	certStamp string
	randomKey []byte // signs tokens when no secret is configured, kept across reloads
	revoked   *auth.RevocationSet
}

// Options are how the command that starts the server lets it change while
// it runs. The zero value serves cfg as it is until the end.
type Options struct {
	// Level is the level the logger was built with; a reload sets it from
	// logLevel. Nil: the log level needs a restart.
	Level *slog.LevelVar
	// Load reads the config anew (the file, with the command's flags
	// applied); Hangup delivers the signals (SIGHUP) that ask for it.
	Load   func() (*config.Config, error)
	Hangup <-chan os.Signal
	// CertPoll is how often the TLS certificate and key files are checked
	// for a change on disk; zero means DefaultCertPoll.
	CertPoll time.Duration
	// RevocationRefresh is how often the revoked robot tokens are re-read
	// from the metadata store; zero means DefaultRevocationRefresh.
	RevocationRefresh time.Duration
}

// Defaults of Options.
const (
	DefaultCertPoll          = 10 * time.Second
	DefaultRevocationRefresh = 10 * time.Second
)

// Upload sessions idle this long are discarded; purgeEvery is how often
// the purge runs (and it runs once at start, to clear a crash's leftovers).
const (
	uploadIdleLimit = 24 * time.Hour
	purgeEvery      = 30 * time.Minute
)

func (s *Server) purgeLoop(ctx context.Context) {
	t := time.NewTicker(purgeEvery)
	defer t.Stop()
	for {
		n, err := s.reg.PurgeUploads(ctx, uploadIdleLimit)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("purging stale uploads failed", "error", err)
		} else if n > 0 {
			s.log.Info("purged stale upload sessions", "count", n, "idleFor", uploadIdleLimit)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maintenanceLoop runs the scheduled prune (when enabled) and gc (unless
// disabled), each every its own interval, the first one interval after
// start. Both are online-safe (see internal/gc), so serving never pauses;
// a failed run is logged and retried at the next tick.
func (s *Server) maintenanceLoop(ctx context.Context) {
	gcCfg, pruneCfg := s.cfg.GC, s.cfg.Prune
	if gcCfg.Disabled && !pruneCfg.Enabled {
		return
	}
	tick := func(on bool, every time.Duration) <-chan time.Time {
		if !on || every <= 0 {
			return nil
		}
		t := time.NewTicker(every)
		go func() { <-ctx.Done(); t.Stop() }()
		return t.C
	}
	gcTick := tick(!gcCfg.Disabled, gcCfg.Interval.D())
	pruneTick := tick(pruneCfg.Enabled, pruneCfg.Interval.D())
	// Each run's outcome is kept for the console's status page; a run cut
	// short by shutdown is not a failure worth recording.
	recordRun := func(run metadata.MaintenanceRun, err error) {
		if ctx.Err() != nil {
			return
		}
		run.Finished = time.Now()
		if err != nil {
			run.Error = err.Error()
		}
		if err := s.meta.RecordRun(ctx, run); err != nil {
			s.log.Warn("recording the "+run.Kind+" run failed", "error", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-pruneTick:
			run := metadata.MaintenanceRun{Kind: metadata.RunPrune, Started: time.Now()}
			res, err := gc.Prune(ctx, s.meta, gc.PruneOptions{KeepTagRevisions: pruneCfg.KeepTagRevisions, KeepYoungerThan: pruneCfg.KeepYoungerThan.D(), Log: s.log})
			if err != nil && ctx.Err() == nil {
				s.log.Warn("scheduled prune failed", "error", err)
			}
			if res != nil {
				run.Manifests = len(res.Deleted)
			}
			recordRun(run, err)
		case <-gcTick:
			run := metadata.MaintenanceRun{Kind: metadata.RunGC, Started: time.Now()}
			res, err := gc.Collect(ctx, s.blobs, s.meta, gc.Options{Grace: gcCfg.GracePeriod.D(), Log: s.log})
			if err != nil && ctx.Err() == nil {
				s.log.Warn("scheduled gc failed", "error", err)
			}
			if res != nil {
				run.Blobs, run.Bytes = len(res.Deleted), res.BytesFreed
			}
			recordRun(run, err)
		}
	}
}

// Stores are the blob store and metadata store a config names.
type Stores struct {
	Blobs   storage.Backend
	Meta    *metadata.Store
	closers []io.Closer
}

// Close releases both stores.
func (s *Stores) Close() error {
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// OpenStores opens the stores named by cfg exactly as berth serve does, so
// other commands (gc, prune) can work on the same data, even while serve runs.
// Metadata goes to PostgreSQL when a DSN is configured (cfg.MetadataDSN:
// the environment's wins over the file's), else to SQLite next to the blobs
// or in cfg.MetadataDirectory. Credentials come from cfg.Env.
func OpenStores(ctx context.Context, cfg *config.Config) (*Stores, error) {
	st := &Stores{}
	var err error
	switch {
	case cfg.Storage.EmptyDir != nil:
		st.Blobs = storage.NewMemory()
	case cfg.Storage.Filesystem != nil:
		if st.Blobs, err = storage.NewFilesystem(cfg.Storage.Filesystem.RootDirectory); err != nil {
			return nil, err
		}
	case cfg.Storage.S3 != nil, cfg.Storage.GCS != nil, cfg.Storage.Azure != nil:
		b, closer, err := openObjectStore(ctx, cfg.Storage, cfg.Env)
		if err != nil {
			return nil, err
		}
		st.Blobs = b
		st.closers = append(st.closers, closer)
	default:
		return nil, errors.New("server: no storage configured")
	}
	if st.Meta, err = openMetadata(ctx, cfg); err != nil {
		st.Close()
		return nil, err
	}
	st.closers = append([]io.Closer{st.Meta}, st.closers...)
	return st, nil
}

// ErrPrivateMetadata means the config's metadata lives inside the serve
// process (emptyDir storage), out of reach of any other command.
var ErrPrivateMetadata = errors.New("storage is emptyDir: its metadata lives in memory inside berth serve, out of reach of other commands")

// OpenMetadata opens only the metadata store cfg names, as OpenStores
// would, for commands that need no blobs (berth admin token).
func OpenMetadata(ctx context.Context, cfg *config.Config) (*metadata.Store, error) {
	if cfg.Storage.EmptyDir != nil && cfg.MetadataDSN() == "" {
		return nil, ErrPrivateMetadata
	}
	return openMetadata(ctx, cfg)
}

func openMetadata(ctx context.Context, cfg *config.Config) (*metadata.Store, error) {
	if dsn := cfg.MetadataDSN(); dsn != "" {
		return metadata.OpenPostgres(ctx, dsn)
	}
	dir := cfg.MetadataDirectory
	switch {
	case cfg.Storage.EmptyDir != nil:
		return metadata.OpenSQLite(ctx, ":memory:")
	case cfg.Storage.Filesystem != nil:
		dir = cfg.Storage.Filesystem.RootDirectory
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return metadata.OpenSQLite(ctx, filepath.Join(dir, "metadata.db"))
}

// openObjectStore opens the bucket or container s names, with the
// credentials config read from the environment.
func openObjectStore(ctx context.Context, s config.Storage, env config.Env) (storage.Backend, io.Closer, error) {
	switch {
	case s.S3 != nil:
		return storage.OpenS3(ctx, storage.S3Config{
			Bucket:             s.S3.Bucket,
			Region:             s.S3.Region,
			RegionEndpoint:     s.S3.RegionEndpoint,
			VirtualHostedStyle: s.S3.VirtualHostedStyle,
			AccessKey:          env.S3AccessKey,
			SecretKey:          env.S3SecretKey,
		})
	case s.GCS != nil:
		return storage.OpenGCS(ctx, storage.GCSConfig{
			Bucket:    s.GCS.Bucket,
			Region:    s.GCS.Region,
			ProjectID: s.GCS.ProjectID,
			KeyID:     s.GCS.KeyID,
			KeyFile:   env.GCSKeyFile,
		})
	case s.Azure != nil:
		return storage.OpenAzure(ctx, storage.AzureConfig{
			AccountName: s.Azure.AccountName,
			Container:   s.Azure.Container,
			CloudName:   s.Azure.CloudName,
			Endpoint:    s.Azure.Endpoint,
			AccountKey:  env.AzureAccountKey,
		})
	}
	return nil, nil, errors.New("server: no object store configured")
}

// New opens the stores named by cfg and wires the registry over them.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts Options) (*Server, error) {
	s := &Server{cfg: cfg, opts: opts, log: log, applied: cfg, revoked: &auth.RevocationSet{}}
	s.randomKey = make([]byte, 32)
	if _, err := rand.Read(s.randomKey); err != nil {
		return nil, err
	}
	authz, realm, err := s.newAuthorizer(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.TLS.Enabled() {
		cs, err := loadCerts(cfg.TLS)
		if err != nil {
			return nil, err
		}
		s.certs.Store(cs)
		s.certStamp = tlsStamp(cfg.TLS)
	}
	st, err := OpenStores(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Before the first request, so a restart never admits a revoked token.
	if err := s.refreshRevocations(ctx, st.Meta); err != nil {
		st.Close()
		return nil, fmt.Errorf("reading revoked robot tokens: %w", err)
	}
	blobs, meta := st.Blobs, st.Meta
	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var notifier *events.Notifier
	if cfg.Notifications.Enabled() {
		nc := cfg.Notifications
		nc.Endpoints = slices.Clone(nc.Endpoints)
		var errs []error
		for i := range nc.Endpoints {
			h, err := cfg.EndpointHeaders(i)
			errs = append(errs, err)
			nc.Endpoints[i].Headers = h
		}
		if err := errors.Join(errs...); err != nil {
			st.Close()
			return nil, err
		}
		notifier = events.New(nc, cfg.Addr, events.NewMetrics(promReg))
		for _, e := range cfg.Notifications.Endpoints {
			log.Info("notifications endpoint", "endpoint", e.Name, "url", redactURL(e.URL), "disabled", e.Disabled, "pulls", cfg.Notifications.Pulls)
		}
	}
	reg := registry.New(storage.Instrument(blobs, promReg), meta, registry.Options{Secret: []byte(cfg.HTTPSecret), Metrics: promReg, Notifier: notifier})
	cache, stop, err := newCache(ctx, cfg.PullThrough, reg, promReg, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	s.api = api.NewHandler(reg, log, api.Options{
		ReadOnly:      cfg.ReadOnly,
		DisableDelete: cfg.DisableDelete,
		ReadLimit:     api.Limit{MaxRunning: cfg.Requests.Read.MaxRunning, MaxInQueue: cfg.Requests.Read.MaxInQueue, MaxWait: cfg.Requests.Read.MaxWaitInQueue.D()},
		WriteLimit:    api.Limit{MaxRunning: cfg.Requests.Write.MaxRunning, MaxInQueue: cfg.Requests.Write.MaxInQueue, MaxWait: cfg.Requests.Write.MaxWaitInQueue.D()},
		Metrics:       promReg,
		Build:         api.BuildInfo{Version: cfg.Version, Revision: cfg.Revision},
		MetricsSecret: cfg.MetricsSecret(),
		MetricsOpen:   cfg.Metrics.Open,
		Auth:          authz,
		AuthRealm:     realm,
		PullThrough:   cache,
		Notifications: notifier != nil,
	})
	var endpoints []string
	for _, e := range cfg.Notifications.Endpoints {
		endpoints = append(endpoints, e.Name)
	}
	var upstreams []console.Upstream
	if cfg.PullThrough != nil {
		for _, u := range cfg.PullThrough.Upstreams {
			upstreams = append(upstreams, console.Upstream{Prefix: u.Prefix, URL: u.URL})
		}
	}
	s.web, err = console.New(console.Options{API: s.api, Registry: reg, Meta: meta, SessionSecret: cfg.HTTPSecret, DisableDelete: cfg.DisableDelete, Storage: storageDescription(cfg.Storage), Version: cfg.Version, Endpoints: endpoints, Upstreams: upstreams, Log: log})
	if err != nil {
		stop()
		st.Close()
		return nil, err
	}
	var imports []scheduledImport
	for i, im := range cfg.Imports {
		spec, err := pullthrough.NewImportSpec(im.From, im.To, im.Tags, im.ImportMode, im.AuthFile, im.CAFile, im.Insecure, 30*time.Second, log)
		if err != nil {
			stop()
			st.Close()
			return nil, fmt.Errorf("imports[%d]: %w", i, err)
		}
		imports = append(imports, scheduledImport{spec: spec, from: im.From, every: im.Schedule.D()})
	}
	s.stores, s.meta, s.blobs, s.reg, s.cache, s.stop, s.imports, s.events = st, meta, blobs, reg, cache, stop, imports, notifier
	return s, nil
}

// scheduledImport is one imports[] entry.
type scheduledImport struct {
	spec  pullthrough.ImportSpec
	from  string
	every time.Duration
}

// importLoop runs an import at start and then every its schedule; a
// failed run is logged and retried at the next tick.
func (s *Server) importLoop(ctx context.Context, im scheduledImport) {
	every := im.every
	if every <= 0 {
		every = config.DefaultImportSchedule
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := pullthrough.Import(ctx, s.reg, im.spec, s.log); err != nil && ctx.Err() == nil {
			s.log.Warn("scheduled import failed", "from", im.from, "to", im.spec.To, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// newCache builds the pull-through cache from pc (nil when it is off),
// with one upstream client per upstream. Its fills run until stop.
func newCache(ctx context.Context, pc *config.PullThrough, reg *registry.Registry, promReg *prometheus.Registry, log *slog.Logger) (*pullthrough.Cache, context.CancelFunc, error) {
	if pc == nil {
		return nil, func() {}, nil
	}
	opts := pullthrough.Options{MaxSize: int64(pc.MaxSize), MaxUnusedAge: pc.MaxUnusedAge.D(), Metrics: promReg, Log: log}
	for i, u := range pc.Upstreams {
		client, err := mirror.NewUpstream(mirror.UpstreamOptions{URL: u.URL, AuthFile: u.AuthFile, CAFile: u.CAFile, Insecure: u.Insecure, Timeout: u.Timeout.D(), Log: log})
		if err != nil {
			return nil, nil, fmt.Errorf("pullThrough.upstreams[%d]: %w", i, err)
		}
		host := client.Host()
		opts.Upstreams = append(opts.Upstreams, pullthrough.Upstream{
			Prefix: u.Prefix, Client: client, TagTTL: u.TagTTL.D(), Timeout: u.Timeout.D(),
			DockerHub: u.Prefix == "docker.io" || host == "registry-1.docker.io" || host == "index.docker.io" || host == "docker.io",
		})
		log.Info("pull-through upstream", "prefix", u.Prefix, "url", u.URL, "tagTTL", u.TagTTL.D().String(), "timeout", u.Timeout.D().String(), "auth", u.AuthFile != "", "ca", u.CAFile != "")
	}
	cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	c, err := pullthrough.New(cctx, reg, opts)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return c, stop, nil
}

// newAuthorizer builds access control from cfg.Auth; nil when it is off.
// The key derived from httpSecret is the running one's (httpSecret needs a
// restart); a tokenSecret change applies, revoking every token.
func (s *Server) newAuthorizer(cfg *config.Config) (*auth.Authorizer, string, error) {
	ac, log := cfg.Auth, s.log
	if ac == nil {
		return nil, "", nil
	}
	key := auth.SigningKey(ac.TokenSecret, s.cfg.HTTPSecret)
	if key == nil {
		log.Warn("auth: neither auth.tokenSecret nor httpSecret is set; tokens are signed with a random key and die with this process, and replicas will not accept each other's tokens")
		key = s.randomKey
	}
	c := auth.Config{HtpasswdFile: ac.Htpasswd, Groups: ac.Groups, SigningKey: key, TokenLifetime: ac.TokenLifetime.D(), Revoked: s.revoked}
	for _, b := range ac.RoleBindings {
		c.Bindings = append(c.Bindings, auth.Binding{Role: auth.Role(b.Role), Namespace: b.Namespace, Users: b.Users, Groups: b.Groups})
	}
	if an := ac.Anonymous; an != nil {
		c.Anonymous = &auth.Anonymous{Role: auth.Role(an.Role), Namespaces: an.Namespaces}
	}
	a, err := auth.New(c)
	if err != nil {
		return nil, "", err
	}
	log.Info("auth: access control on", "users", a.Users(), "roleBindings", len(c.Bindings), "anonymous", c.Anonymous != nil)
	return a, ac.Realm, nil
}

// Handler is the server's HTTP handler (for in-process tests).
func (s *Server) Handler() http.Handler { return s.web }

// Close ends the cache's fills and releases the stores.
func (s *Server) Close() error {
	s.stop()
	return s.stores.Close()
}

// Serve answers on ln until ctx ends, then stops accepting and waits up to
// the configured shutdown timeout for in-flight requests.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.web,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go s.purgeLoop(ctx)
	go s.maintenanceLoop(ctx)
	if s.cache != nil {
		go s.cache.Run(ctx)
	}
	for _, im := range s.imports {
		go s.importLoop(ctx, im)
	}
	go s.revocationLoop(ctx)
	if s.events != nil {
		go s.events.Run(ctx, s.meta, nil, s.log)
	}
	if s.opts.Hangup != nil && s.opts.Load != nil {
		go s.hangupLoop(ctx)
	}
	go func() {
		if s.cfg.TLS.Enabled() {
			go s.certLoop(ctx)
			hs.TLSConfig = &tls.Config{
				MinVersion: tls.VersionTLS12,
				GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
					return s.certs.Load().pick(hello), nil
				},
			}
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	grace := s.cfg.ShutdownTimeout.D()
	if grace <= 0 {
		grace = 30 * time.Second
	}
	s.log.Info("shutting down: draining in-flight requests", "timeout", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Run builds the server from cfg, listens on cfg.Addr and serves until ctx
// ends.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger, opts Options) error {
	s, err := New(ctx, cfg, log, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
	}
	log.Info("berth serve listening", "addr", ln.Addr().String(), "scheme", scheme, "storage", storageDescription(cfg.Storage), "readOnly", cfg.ReadOnly, "pid", os.Getpid())
	return s.Serve(ctx, ln)
}

// redactURL is u without its user information (a webhook URL may carry a
// password), for the log.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	p.User = url.User("xxxxx")
	return p.String()
}

// storageDescription names the blob store for the log and the console.
func storageDescription(st config.Storage) string {
	switch {
	case st.Filesystem != nil:
		return "filesystem at " + st.Filesystem.RootDirectory
	case st.S3 != nil:
		return "s3 bucket " + st.S3.Bucket
	case st.GCS != nil:
		return "gcs bucket " + st.GCS.Bucket
	case st.Azure != nil:
		return "azure container " + st.Azure.Container
	}
	return "emptyDir (in memory; lost on exit)"
}
