package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server"
	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	var addr, root, cfgPath string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the container image registry (OCI Distribution v1.1 / Docker Registry v2)",
		Long: `Run the registry.

With no flags and no config, berth serve listens on :5000 and stores blobs and
metadata under ./berth-data. A config file (--config) is strict YAML (an
unknown key is an error naming its line) whose fields follow the spec of
imageregistry.operator.openshift.io/v1 Config; a whole Config object is
accepted too. Flags override the file.

  storage:           filesystem {rootDirectory} (default), emptyDir {} (in
                     memory, lost on exit), or an object store, with metadata
                     then in metadataDirectory (default ./berth-data):
                     s3 {bucket, region, regionEndpoint, virtualHostedStyle}
                       keys: REGISTRY_STORAGE_S3_ACCESSKEY/SECRETKEY or the
                       AWS default chain;
                     gcs {bucket, region, projectID, keyID}
                       key file: REGISTRY_STORAGE_GCS_KEYFILE or Google
                       default credentials; STORAGE_EMULATOR_HOST for an
                       emulator;
                     azure {accountName, container, cloudName, endpoint}
                       key: REGISTRY_STORAGE_AZURE_ACCOUNTKEY or the Azure
                       default credential; endpoint overrides the service
                       URL (Azurite: http://127.0.0.1:10000/devstoreaccount1)
  metadataDatabase:  postgres://USER@HOST/DB for metadata shared by replicas
                     (default: embedded SQLite); BERTH_METADATA_DSN wins
  readOnly:          refuse pushes and deletes; pulls work
  requests:          read/write {maxRunning, maxInQueue, maxWaitInQueue};
                     beyond them clients get 429 TOOMANYREQUESTS
  logLevel:          Normal, Debug, Trace or TraceAll
  httpSecret:        signs upload sessions; share it between replicas
  gc:                {disabled, interval, gracePeriod}: unreferenced blobs are
                     collected online (daily, 1h grace, by default)
  prune:             {enabled, interval, keepTagRevisions, keepYoungerThan}
  auth:              off unless set: {htpasswd (bcrypt), groups, roleBindings
                     [{role: registry-viewer|registry-editor|registry-admin,
                     namespace, users, groups}], anonymous {role, namespaces},
                     tokenSecret, tokenLifetime}; clients log in with the
                     Docker/OCI token flow or Basic credentials; robot tokens
                     from "berth admin token create" (list, revoke)
  tls:               {certFile, keyFile, certificates: [{hostnames, certFile,
                     keyFile}]}: a default certificate and one per host name
  pullThrough:       a caching mirror of upstream registries:
                     {upstreams: [{prefix, url, authFile, caFile, insecure,
                     tagTTL (5m), timeout (3s)}], maxSize, maxUnusedAge};
                     /v2/<prefix>/<repo>/... (or /v2/<repo>/...?ns=<prefix>,
                     containerd's hosts.toml mirrors) is served from
                     <url>/v2/<repo>/...: one upstream fetch per blob
                     however many clients, streamed while it is stored; a
                     tag revalidated at most once per tagTTL; what is cached
                     served (with a Warning) when the upstream fails;
                     pushes refused; eviction by maxSize (least recently
                     pulled first) and maxUnusedAge. "berth policy
                     cache-mirrors" writes the IDMS/ITMS pointing nodes at it
  imports:           scheduled tag imports, as image streams do: [{from
                     (HOST/REPO[:TAG]), to, schedule (15m), tags (regexp),
                     importMode (Legacy|PreserveOriginal), authFile, caFile,
                     insecure}]; each move kept in the tag history (one-shot:
                     berth import FROM TO)
  notifications:     webhooks, in CNCF Distribution's envelope (Content-Type
                     application/vnd.docker.distribution.events.v1+json) so
                     its receivers work: {pulls (false), endpoints: [{name,
                     url, headers {Name: [value]}, headersFromEnv {Name:
                     VARIABLE} (a credential from the environment; serve
                     refuses to start if it is unset), timeout (5s), threshold
                     (3), backoff (1s), ignoredMediaTypes, ignore {mediaTypes,
                     actions: push|pull|delete|mount}, disabled}]}. Events for
                     pushes, deletes and mounts of manifests and blobs (blobs
                     have media type application/octet-stream: ignore it for
                     manifest events only), pulls only with pulls: true.
                     Each event is queued in the metadata store in the same
                     transaction as its change, so a crash or restart loses
                     none; delivered at least once (an "id" to deduplicate
                     by), in order per endpoint, a backlog in envelopes of up
                     to 50; a POST answered 2xx/3xx is delivered, anything
                     else retried — at once up to threshold, then after
                     backoff doubling up to 32x — blocking the events behind
                     it. Metrics: registry_notifications_pending_total
                     (queue depth), _events_total{type=Events|Successes|
                     Failures|Errors}, _status_total{code}
  metrics            {secret (scrapers give it as the Basic password or a
                     Bearer token; or from BERTH_METRICS_SECRET), open};
                     with auth on, an admin of every
                     namespace may read them; with neither, they are open
  addr, disableDelete, shutdownTimeout

Prometheus metrics are served at /extensions/v2/metrics, under the cluster
registry's names (imageregistry_http_requests_total, _request_duration_seconds,
_in_flight_requests, _response_size_bytes, imageregistry_digest_cache_*,
imageregistry_build_info, imageregistry_storage_duration_seconds and
_storage_errors_total) so its dashboards and alerts work, plus berth_*
ones by action; a health check is at /healthz. A web console is served at /
(repositories, tags, images, referrers, pull commands, status), embedded and
needing no Internet access, under the same access control as the API (with
auth on, sign in with an htpasswd user or a robot token). Each request is logged as one JSON line (method, repository,
action, status, bytes, duration). SIGTERM or Ctrl-C stops accepting
connections and drains in-flight requests.

Reload: SIGHUP (kill -HUP PID) re-reads --config, with the flags applied
again, and changes the running registry without a restart: readOnly,
requests limits, logLevel, and the whole auth block (htpasswd file — re-read
—, groups, roleBindings, anonymous, tokenSecret, tokenLifetime, realm) and
the tls certificates (certFile/keyFile and certificates[]). Requests in
flight and upload sessions are untouched: a blob already streaming finishes,
and an upload begun before continues after. A file that fails validation, or
whose htpasswd file or certificates do not load, is refused whole: the
running config stays and the reason (file, line, field) is logged. Settings
that take effect only at a restart — addr, storage, metadataDirectory,
metadataDatabase and BERTH_METADATA_DSN, the storage credentials in the
environment, httpSecret, disableDelete, shutdownTimeout, gc, prune,
pullThrough, imports, notifications, metrics, turning tls on or off — are logged as
"needsRestart" when they differ, and keep their running values. TLS
certificate and key files are also checked every ` + server.DefaultCertPoll.String() + ` and re-read
when they change on disk (a renewal, a secret volume's update), no SIGHUP
needed; a pair that does not load keeps the running certificates.

Robot tokens revoked with "berth admin token revoke" are refused (401) within
` + server.DefaultRevocationRefresh.String() + `: serve re-reads the revoked ids from the metadata store on that
timer, so a request costs no query.`,
		Example: `  berth serve
  berth serve --addr 127.0.0.1:5000 --root /var/lib/berth
  berth serve --config registry.yaml
  kill -HUP "$(pidof berth)"   # after editing registry.yaml: reload it

  # a pull-through cache of quay.io and Docker Hub (registry.yaml):
  pullThrough:
    upstreams:
    - prefix: quay.io
      url: https://quay.io
      authFile: /etc/berth/pull-secret.json
    - prefix: docker.io
      url: https://registry-1.docker.io
    maxSize: 200GiB
    maxUnusedAge: 720h
  # nodes then pull quay.io/org/app through cache.corp:5000/quay.io/org/app:
  berth policy cache-mirrors --serve-config registry.yaml --cache cache.corp:5000

  # manifest push and delete events to a CI webhook (registry.yaml):
  notifications:
    endpoints:
    - name: ci
      url: https://ci.corp/hooks/registry
      headersFromEnv:
        Authorization: BERTH_CI_HOOK_AUTH   # its value: "Bearer TOKEN"
      ignoredMediaTypes: [application/octet-stream]`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// load reads the file and applies the flags, at start and at
			// each SIGHUP, so a reload sees what a restart would.
			load := func() (*config.Config, error) {
				cfg := &config.Config{}
				if cfgPath != "" {
					c, err := config.Load(cfgPath)
					if err != nil {
						return nil, err
					}
					cfg = c
				}
				if addr != "" {
					cfg.Addr = addr
				}
				if root != "" {
					if cfg.Storage.EmptyDir != nil {
						return nil, fmt.Errorf("--root conflicts with emptyDir storage in %s", cfgPath)
					}
					cfg.Storage.Filesystem = &config.Filesystem{RootDirectory: root}
				}
				cfg.Defaults()
				cfg.ReadEnv(os.Getenv)
				if err := cfg.Validate(); err != nil {
					return nil, err
				}
				cfg.Version, cfg.Revision = version, revision
				return cfg, nil
			}
			cfg, err := load()
			if err != nil {
				return err
			}
			level := new(slog.LevelVar)
			if cfg.Debug() {
				level.Set(slog.LevelDebug)
			}
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			// Caught even without --config (where a reload changes
			// nothing), so a stray SIGHUP never ends the registry.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			opts := server.Options{Level: level, Load: load, Hangup: hup}
			return server.Run(cmd.Context(), cfg, log, opts)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", `listen address (default ":5000")`)
	cmd.Flags().StringVar(&root, "root", "", `storage directory for blobs and metadata (default "./berth-data")`)
	cmd.Flags().StringVar(&cfgPath, "config", "", "config file (strict YAML; see above)")
	return cmd
}
