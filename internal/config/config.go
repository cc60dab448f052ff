package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is berth serve's configuration. The zero value plus Defaults() is
// the embedded default: filesystem storage under ./berth-data on :5000.
type Config struct {
	// Addr is the listen address (berth-specific; default ":5000").
	Addr string `yaml:"addr"`
	// Storage selects exactly one blob store.
	Storage Storage `yaml:"storage"`
	// ReadOnly refuses pushes and deletes with a clear error; pulls work.
	ReadOnly bool `yaml:"readOnly"`
	// LogLevel is the operator's level: Normal (default), Debug, Trace or
	// TraceAll.
	LogLevel string `yaml:"logLevel"`
	// Logging is the operator's deprecated numeric level (0-1 Normal,
	// 2 Debug, 3+ Trace); LogLevel wins when both are set.
	Logging int `yaml:"logging"`
	// HTTPSecret signs upload session ids. Replicas behind one load balancer
	// must share it so any replica can continue an upload.
	HTTPSecret string `yaml:"httpSecret"`
	// TLS serves HTTPS with a certificate and key from files.
	TLS TLS `yaml:"tls"`
	// DisableDelete refuses manifest, tag and blob deletes.
	DisableDelete bool `yaml:"disableDelete"`
	// Requests bounds concurrent reads (pulls) and writes (pushes,
	// deletes), as the operator's spec.requests does; beyond the queue a
	// client gets 429 TOOMANYREQUESTS.
	Requests Requests `yaml:"requests"`
	// MetadataDirectory holds the metadata database when blobs live in an
	// object store (default "berth-data"); with filesystem storage the
	// database lives in the storage root.
	MetadataDirectory string `yaml:"metadataDirectory"`
	// MetadataDatabase puts the metadata in PostgreSQL instead of the
	// embedded SQLite database, so several serve replicas behind one load
	// balancer share it: a URL postgres://USER@HOST:5432/DB?sslmode=require.
	// Keep passwords out of the file: the environment variable
	// BERTH_METADATA_DSN (MetadataDSNEnv), when set, wins over this field.
	// Empty (the default): SQLite, in MetadataDirectory or the storage root.
	MetadataDatabase string `yaml:"metadataDatabase"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight requests
	// (a Go duration; default "30s").
	ShutdownTimeout PositiveDuration `yaml:"shutdownTimeout"`
	// GC schedules garbage collection of unreferenced blobs inside serve
	// (on by default, daily).
	GC GC `yaml:"gc"`
	// Prune schedules pruning of old image revisions inside serve (off by
	// default).
	Prune Prune `yaml:"prune"`
	// Auth turns on access control: htpasswd users, role bindings per
	// namespace, bearer and robot tokens (off when absent).
	Auth *Auth `yaml:"auth"`
	// PullThrough makes serve a caching mirror of upstream registries
	// (off when absent).
	PullThrough *PullThrough `yaml:"pullThrough"`
	// Imports are scheduled tag imports from upstream repositories.
	Imports []Import `yaml:"imports"`
	// Notifications sends push, delete, mount (and, if asked, pull) events
	// to webhooks, durably queued (none when absent).
	Notifications Notifications `yaml:"notifications"`

	// Fields of the operator's spec that have no meaning for berth serve
	// are accepted so an existing object loads unchanged.
	ManagementState string `yaml:"managementState"`
	Replicas        int    `yaml:"replicas"`
	OperatorLog     string `yaml:"operatorLogLevel"`

	// Metrics protects /extensions/v2/metrics as the cluster registry's
	// metrics.secret does.
	Metrics Metrics `yaml:"metrics"`

	// Version and Revision name the running binary (in metrics); set by
	// the command that starts the server, never read from the file.
	Version  string `yaml:"-"`
	Revision string `yaml:"-"`

	// Env holds the credentials that come from the environment, never
	// from the file (ReadEnv fills it; Load calls it).
	Env Env `yaml:"-"`
}

// Env is what berth reads from environment variables: credentials kept out
// of the config file, under the names the cluster's operator hands its
// registry. Each is empty when its variable is unset.
type Env struct {
	// MetadataDSN is BERTH_METADATA_DSN (MetadataDSNEnv): a PostgreSQL DSN
	// that wins over metadataDatabase, so its password stays out of the file.
	MetadataDSN string
	// S3AccessKey and S3SecretKey are REGISTRY_STORAGE_S3_ACCESSKEY and
	// REGISTRY_STORAGE_S3_SECRETKEY; without them the AWS default chain.
	S3AccessKey, S3SecretKey string
	// GCSKeyFile is REGISTRY_STORAGE_GCS_KEYFILE, a service-account key
	// file; without it Application Default Credentials.
	GCSKeyFile string
	// AzureAccountKey is REGISTRY_STORAGE_AZURE_ACCOUNTKEY; without it the
	// Azure default credential chain.
	AzureAccountKey string
	// MetricsSecret is BERTH_METRICS_SECRET (MetricsSecretEnv): the metrics
	// secret kept out of the file (in a cluster, from the Secret the
	// ServiceMonitor also reads); metrics.secret in the file wins.
	MetricsSecret string
	// Vars are the variables the file names (notifications' headersFromEnv),
	// by name; an unset one is absent.
	Vars map[string]string
}

// The environment variables Env is read from.
const (
	MetricsSecretEnv   = "BERTH_METRICS_SECRET"
	S3AccessKeyEnv     = "REGISTRY_STORAGE_S3_ACCESSKEY"
	S3SecretKeyEnv     = "REGISTRY_STORAGE_S3_SECRETKEY"
	GCSKeyFileEnv      = "REGISTRY_STORAGE_GCS_KEYFILE"
	AzureAccountKeyEnv = "REGISTRY_STORAGE_AZURE_ACCOUNTKEY"
)

// ReadEnv fills c.Env through getenv (os.Getenv in production). Commands
// call it once, after loading, so the rest of the program sees the
// credentials only as fields.
func (c *Config) ReadEnv(getenv func(string) string) {
	c.Env = Env{
		MetadataDSN:     getenv(MetadataDSNEnv),
		S3AccessKey:     getenv(S3AccessKeyEnv),
		S3SecretKey:     getenv(S3SecretKeyEnv),
		GCSKeyFile:      getenv(GCSKeyFileEnv),
		AzureAccountKey: getenv(AzureAccountKeyEnv),
		MetricsSecret:   getenv(MetricsSecretEnv),
	}
	for _, e := range c.Notifications.Endpoints {
		for _, name := range e.HeadersFromEnv {
			if v := getenv(name); v != "" {
				if c.Env.Vars == nil {
					c.Env.Vars = map[string]string{}
				}
				c.Env.Vars[name] = v
			}
		}
	}
}

// MetricsSecret is the secret metrics scrapers present: metrics.secret,
// else the environment's; empty means none.
func (c *Config) MetricsSecret() string {
	if c.Metrics.Secret != "" {
		return c.Metrics.Secret
	}
	return c.Env.MetricsSecret
}

// MetadataDSN is the PostgreSQL DSN the metadata store opens: the
// environment's, else metadataDatabase; empty means SQLite.
func (c *Config) MetadataDSN() string {
	if c.Env.MetadataDSN != "" {
		return c.Env.MetadataDSN
	}
	return c.MetadataDatabase
}

// Storage is the operator's storage block; exactly one member is set.
type Storage struct {
	// Filesystem stores blobs and metadata under a directory (default).
	Filesystem *Filesystem `yaml:"filesystem"`
	// EmptyDir keeps everything in memory and loses it on exit.
	EmptyDir *struct{} `yaml:"emptyDir"`
	// S3 stores blobs in an S3 or S3-compatible bucket (metadata stays in
	// MetadataDirectory).
	S3 *S3 `yaml:"s3"`
	// GCS stores blobs in a Google Cloud Storage bucket (metadata stays in
	// MetadataDirectory).
	GCS *GCS `yaml:"gcs"`
	// Azure stores blobs in an Azure Blob Storage container (metadata stays
	// in MetadataDirectory).
	Azure *Azure `yaml:"azure"`
	// ManagementState is the operator's Managed/Unmanaged flag (ignored).
	ManagementState string `yaml:"managementState"`
}

// S3 is the operator's spec.storage.s3, the fields that apply. Credentials
// come from the environment: REGISTRY_STORAGE_S3_ACCESSKEY and
// REGISTRY_STORAGE_S3_SECRETKEY (as the operator hands them to its
// registry), else the AWS default chain (AWS_ACCESS_KEY_ID…, shared files,
// instance role).
type S3 struct {
	// Bucket holds the blobs; it is created when missing.
	Bucket string `yaml:"bucket"`
	// Region of the bucket (default us-east-1).
	Region string `yaml:"region"`
	// RegionEndpoint is the endpoint URL of an S3-compatible server.
	RegionEndpoint string `yaml:"regionEndpoint"`
	// VirtualHostedStyle addresses the bucket by host name, not path.
	VirtualHostedStyle bool `yaml:"virtualHostedStyle"`
	// Encrypt and KeyID are the operator's server-side encryption settings;
	// Berth leaves encryption to the bucket's default policy.
	Encrypt bool   `yaml:"encrypt"`
	KeyID   string `yaml:"keyID"`
}

// GCS is the operator's spec.storage.gcs. Credentials come from the
// environment: a service-account key file named by
// REGISTRY_STORAGE_GCS_KEYFILE (as the operator hands it to its registry),
// else Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS,
// the metadata server). STORAGE_EMULATOR_HOST (host:port) points the client
// at an emulator such as fake-gcs-server, without credentials.
type GCS struct {
	// Bucket holds the blobs; it is created when missing (which needs
	// ProjectID).
	Bucket string `yaml:"bucket"`
	// Region is the location of a bucket Berth creates.
	Region string `yaml:"region"`
	// ProjectID owns a bucket Berth creates.
	ProjectID string `yaml:"projectID"`
	// KeyID is a Cloud KMS key that becomes the default encryption key of
	// a bucket Berth creates; an existing bucket keeps its own policy.
	KeyID string `yaml:"keyID"`
}

// Azure is the operator's spec.storage.azure, plus Endpoint. The account key
// comes from REGISTRY_STORAGE_AZURE_ACCOUNTKEY (as the operator hands it to
// its registry); without it, the Azure default credential chain is used
// (AZURE_CLIENT_ID…, workload identity, managed identity).
type Azure struct {
	// AccountName is the storage account.
	AccountName string `yaml:"accountName"`
	// Container holds the blobs; it is created when missing.
	Container string `yaml:"container"`
	// CloudName is AzurePublicCloud (default), AzureUSGovernmentCloud,
	// AzureChinaCloud or AzureGermanCloud.
	CloudName string `yaml:"cloudName"`
	// Endpoint is the blob service URL, account included, overriding the
	// one CloudName implies (Berth-specific): for Azure Stack, a private
	// endpoint, or Azurite at http://127.0.0.1:10000/devstoreaccount1.
	Endpoint string `yaml:"endpoint"`
}

// azureClouds are the cloudName values Berth knows the blob domain of.
var azureClouds = []string{"AzurePublicCloud", "AzureUSGovernmentCloud", "AzureChinaCloud", "AzureGermanCloud"}

// Filesystem stores under RootDirectory.
type Filesystem struct {
	RootDirectory string `yaml:"rootDirectory"`
}

// Requests holds the read and write limits.
type Requests struct {
	Read  RequestLimit `yaml:"read"`
	Write RequestLimit `yaml:"write"`
}

// RequestLimit is one class's limit: at most MaxRunning at once (0: no
// limit), at most MaxInQueue waiting, none waiting longer than
// MaxWaitInQueue (a Go duration; unset or "0s": no bound).
type RequestLimit struct {
	MaxRunning     int      `yaml:"maxRunning"`
	MaxInQueue     int      `yaml:"maxInQueue"`
	MaxWaitInQueue Duration `yaml:"maxWaitInQueue"`
}

// GC is the background garbage collection: stale blob links and
// unreferenced bytes older than GracePeriod are removed every Interval,
// while the registry keeps serving.
type GC struct {
	// Disabled turns the background run off (berth gc still works).
	Disabled bool `yaml:"disabled"`
	// Interval between runs, a Go duration; default "24h". The first run
	// comes one interval after start.
	Interval PositiveDuration `yaml:"interval"`
	// GracePeriod spares bytes and links younger than this, a Go duration;
	// default "1h". It must outlast the slowest push you want to survive a
	// run (first blob upload to manifest upload).
	GracePeriod PositiveDuration `yaml:"gracePeriod"`
}

// Prune is the background pruning of old image revisions, as
// oc adm prune images does. Prune and gc runs never overlap.
type Prune struct {
	// Enabled turns the background run on (default off).
	Enabled bool `yaml:"enabled"`
	// Interval between runs, a Go duration; default "24h".
	Interval PositiveDuration `yaml:"interval"`
	// KeepTagRevisions is how many of the newest manifests of each tag's
	// history are kept; default 3.
	KeepTagRevisions int `yaml:"keepTagRevisions"`
	// KeepYoungerThan spares manifests pushed more recently, a Go
	// duration; default "60m".
	KeepYoungerThan PositiveDuration `yaml:"keepYoungerThan"`
}

// TLS names a certificate and key in PEM files.
type TLS struct {
	// CertFile and KeyFile are the default certificate and key.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// Certificates are served instead of the default to clients asking
	// (by SNI) for one of their host names; a name may be a wildcard
	// like "*.apps.example.com".
	Certificates []NamedCertificate `yaml:"certificates"`
}

// NamedCertificate is a certificate for some host names.
type NamedCertificate struct {
	Hostnames []string `yaml:"hostnames"`
	CertFile  string   `yaml:"certFile"`
	KeyFile   string   `yaml:"keyFile"`
}

// Enabled tells whether the server speaks TLS.
func (t TLS) Enabled() bool { return t.CertFile != "" || len(t.Certificates) > 0 }

// MetadataDSNEnv names the environment variable that holds the PostgreSQL
// DSN (it wins over MetadataDatabase), so the password stays out of the
// config file.
const MetadataDSNEnv = "BERTH_METADATA_DSN"

// DefaultRoot is where the embedded default stores data.
const DefaultRoot = "berth-data"

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.Addr == "" {
		c.Addr = ":5000"
	}
	if c.Storage.Filesystem == nil && c.Storage.EmptyDir == nil && c.Storage.S3 == nil && c.Storage.GCS == nil && c.Storage.Azure == nil {
		c.Storage.Filesystem = &Filesystem{}
	}
	if c.MetadataDirectory == "" {
		c.MetadataDirectory = DefaultRoot
	}
	if c.Storage.Filesystem != nil && c.Storage.Filesystem.RootDirectory == "" {
		c.Storage.Filesystem.RootDirectory = DefaultRoot
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = PositiveDuration(30 * time.Second)
	}
	if c.GC.Interval == 0 {
		c.GC.Interval = PositiveDuration(24 * time.Hour)
	}
	if c.GC.GracePeriod == 0 {
		c.GC.GracePeriod = PositiveDuration(time.Hour)
	}
	if c.Prune.Interval == 0 {
		c.Prune.Interval = PositiveDuration(24 * time.Hour)
	}
	if c.Prune.KeepTagRevisions == 0 {
		c.Prune.KeepTagRevisions = 3
	}
	if c.Prune.KeepYoungerThan == 0 {
		c.Prune.KeepYoungerThan = PositiveDuration(time.Hour)
	}
	c.Auth.defaults()
	c.PullThrough.defaults()
	c.Notifications.defaults()
	for i := range c.Imports {
		c.Imports[i].defaults()
	}
}

// Validate returns every problem at once.
func (c *Config) Validate() error {
	var errs []error
	n := 0
	for _, set := range []bool{c.Storage.Filesystem != nil, c.Storage.EmptyDir != nil, c.Storage.S3 != nil, c.Storage.GCS != nil, c.Storage.Azure != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		errs = append(errs, errors.New("storage: set exactly one of filesystem, emptyDir, s3, gcs, azure"))
	}
	if c.Storage.S3 != nil && c.Storage.S3.Bucket == "" {
		errs = append(errs, errors.New("storage.s3.bucket: required"))
	}
	if c.Storage.GCS != nil && c.Storage.GCS.Bucket == "" {
		errs = append(errs, errors.New("storage.gcs.bucket: required"))
	}
	if az := c.Storage.Azure; az != nil {
		errs = append(errs, az.validate()...)
	}
	switch strings.ToLower(c.LogLevel) {
	case "", "normal", "debug", "trace", "traceall":
	default:
		errs = append(errs, fmt.Errorf("logLevel: %q is not one of Normal, Debug, Trace, TraceAll", c.LogLevel))
	}
	for _, rl := range []struct {
		name string
		l    RequestLimit
	}{{"requests.read", c.Requests.Read}, {"requests.write", c.Requests.Write}} {
		name, l := rl.name, rl.l
		if l.MaxRunning < 0 || l.MaxInQueue < 0 {
			errs = append(errs, fmt.Errorf("%s: maxRunning and maxInQueue must not be negative", name))
		}
		if l.MaxWaitInQueue < 0 {
			errs = append(errs, fmt.Errorf("%s.maxWaitInQueue: %s is negative; use a duration like 30s or 2m, or 0s for no bound", name, l.MaxWaitInQueue))
		}
	}
	// Zero is "unset" (Defaults fills it), so only a negative value is
	// left to refuse; the field order keeps the messages stable.
	for _, f := range []struct {
		field string
		v     Duration
	}{{"shutdownTimeout", Duration(c.ShutdownTimeout)}, {"gc.interval", Duration(c.GC.Interval)}, {"gc.gracePeriod", Duration(c.GC.GracePeriod)}, {"prune.interval", Duration(c.Prune.Interval)}, {"prune.keepYoungerThan", Duration(c.Prune.KeepYoungerThan)}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %s is negative; use a positive duration like 24h or 30m", f.field, f.v))
		}
	}
	if c.Prune.KeepTagRevisions < 0 {
		errs = append(errs, fmt.Errorf("prune.keepTagRevisions: %d must be 1 or more (the tagged revision is always kept)", c.Prune.KeepTagRevisions))
	}
	for i, nc := range c.TLS.Certificates {
		if len(nc.Hostnames) == 0 || nc.CertFile == "" || nc.KeyFile == "" {
			errs = append(errs, fmt.Errorf("tls.certificates[%d]: hostnames, certFile and keyFile are all required", i))
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: certFile and keyFile must be set together"))
	}
	if db := c.MetadataDatabase; db != "" {
		if u, err := url.Parse(db); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			// Not quoted: it may hold a password.
			errs = append(errs, errors.New("metadataDatabase: not a PostgreSQL URL like postgres://USER@HOST:5432/DB?sslmode=require"))
		}
	}
	errs = append(errs, c.Auth.validate()...)
	errs = append(errs, c.PullThrough.validate()...)
	errs = append(errs, validateImports(c.Imports)...)
	errs = append(errs, c.Notifications.validate()...)
	if c.Notifications.Pulls && !c.Notifications.Enabled() {
		errs = append(errs, errNoEndpoints)
	}
	return errors.Join(errs...)
}

func (az *Azure) validate() []error {
	var errs []error
	if az.AccountName == "" {
		errs = append(errs, errors.New("storage.azure.accountName: required"))
	}
	if az.Container == "" {
		errs = append(errs, errors.New("storage.azure.container: required"))
	}
	if az.Endpoint == "" {
		if az.CloudName != "" && !slices.Contains(azureClouds, az.CloudName) {
			errs = append(errs, fmt.Errorf("storage.azure.cloudName: %q is not one of %s (set endpoint for another cloud)", az.CloudName, strings.Join(azureClouds, ", ")))
		}
	} else if u, err := url.Parse(az.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("storage.azure.endpoint: %q is not an http(s) URL like https://ACCOUNT.blob.core.windows.net", az.Endpoint))
	}
	return errs
}

// Debug tells whether debug logging is on.
func (c *Config) Debug() bool {
	switch strings.ToLower(c.LogLevel) {
	case "debug", "trace", "traceall":
		return true
	case "":
		return c.Logging >= 2
	}
	return false
}

// Load reads a config file strictly: an unknown key is an error naming its
// line. The file may be a whole imageregistry.operator.openshift.io/v1
// Config object (its spec is used) or the spec alone.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.ReadEnv(os.Getenv)
	return c, nil
}

type object struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   yaml.Node `yaml:"metadata"`
	Spec       Config    `yaml:"spec"`
	Status     yaml.Node `yaml:"status"`
}

// Parse decodes and validates a config document. Every problem is reported
// at once: the decoder's (unknown keys, values of the wrong type, durations
// that do not parse, each with its line) and then Validate's, on what did
// decode.
func Parse(r io.Reader) (*Config, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Kind string `yaml:"kind"`
	}
	_ = yaml.Unmarshal(raw, &probe)
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	// A *yaml.TypeError leaves the rest of the document decoded, so
	// Validate still runs and its problems join the decoder's; any other
	// decode error (bad syntax) stops here.
	var decodeErr error
	keep := func(err error) error {
		var te *yaml.TypeError
		switch {
		case err == nil, errors.Is(err, io.EOF):
			return nil
		case errors.As(err, &te):
			decodeErr = errors.New(nameFields(raw, cleanYAMLError(err).Error()))
			return nil
		}
		return cleanYAMLError(err)
	}
	if probe.Kind != "" {
		var o object
		if err := keep(dec.Decode(&o)); err != nil {
			return nil, err
		}
		if o.Kind != "Config" || !strings.HasPrefix(o.APIVersion, "imageregistry.operator.openshift.io/") {
			return nil, fmt.Errorf("kind %s (%s) is not an imageregistry.operator.openshift.io/v1 Config", o.Kind, o.APIVersion)
		}
		c = o.Spec
	} else if err := keep(dec.Decode(&c)); err != nil {
		return nil, err
	}
	c.Defaults()
	if err := errors.Join(decodeErr, c.Validate()); err != nil {
		return nil, err
	}
	return &c, nil
}

// cleanYAMLError drops the Go type names from the decoder's messages.
func cleanYAMLError(err error) error {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, " in type config.Config", "")
	msg = strings.ReplaceAll(msg, " in type config.object", "")
	msg = strings.ReplaceAll(msg, " in type config.Storage", " in storage")
	msg = strings.ReplaceAll(msg, " in type config.TLS", " in tls")
	// config.GCS before config.GC, which is its prefix.
	msg = strings.ReplaceAll(msg, " in type config.GCS", " in storage.gcs")
	msg = strings.ReplaceAll(msg, " in type config.GC", " in gc")
	msg = strings.ReplaceAll(msg, " in type config.Prune", " in prune")
	msg = strings.ReplaceAll(msg, " in type config.Filesystem", " in storage.filesystem")
	msg = strings.ReplaceAll(msg, " in type config.S3", " in storage.s3")
	msg = strings.ReplaceAll(msg, " in type config.Azure", " in storage.azure")
	msg = strings.ReplaceAll(msg, " in type config.Auth", " in auth")
	msg = strings.ReplaceAll(msg, " in type config.PullThrough", " in pullThrough")
	msg = strings.ReplaceAll(msg, " in type config.Upstream", " in pullThrough.upstreams")
	msg = strings.ReplaceAll(msg, " in type config.Import", " in imports")
	msg = strings.ReplaceAll(msg, " in type config.RoleBinding", " in auth.roleBindings")
	msg = strings.ReplaceAll(msg, " in type config.AnonymousAccess", " in auth.anonymous")
	msg = strings.ReplaceAll(msg, " in type config.Notifications", " in notifications")
	msg = strings.ReplaceAll(msg, " in type config.Endpoint", " in notifications.endpoints")
	msg = strings.ReplaceAll(msg, " in type config.Ignore", " in notifications.endpoints[].ignore")
	// Distribution's config spells these in lowercase.
	msg = strings.ReplaceAll(msg, "field ignoredmediatypes not found in notifications.endpoints", "field ignoredmediatypes not found in notifications.endpoints (Berth spells it ignoredMediaTypes)")
	msg = strings.ReplaceAll(msg, "field mediatypes not found in notifications.endpoints[].ignore", "field mediatypes not found in notifications.endpoints[].ignore (Berth spells it mediaTypes)")
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
	return errors.New("invalid config: " + msg)
}

// Metrics says who may read the Prometheus metrics. With neither a secret
// nor access control they are open, as before; with a secret, it must be
// given (as the Basic password with any user name, or as a Bearer token);
// with access control on, an admin of every namespace may read them too.
type Metrics struct {
	// Secret is the shared secret scrapers present.
	Secret string `yaml:"secret"`
	// Open serves the metrics to anyone, whatever else is configured.
	Open bool `yaml:"open"`
}
