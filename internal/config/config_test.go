package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{name: "empty is the embedded default", in: "", check: func(t *testing.T, c *Config) {
			if c.Addr != ":5000" || c.Storage.Filesystem == nil || c.Storage.Filesystem.RootDirectory != DefaultRoot {
				t.Fatalf("defaults = %+v", c)
			}
		}},
		{name: "unknown key names its line", in: "readOnly: true\nstorge:\n  emptyDir: {}\n", wantErr: "line 2: field storge not found"},
		{name: "operator object", in: `apiVersion: imageregistry.operator.openshift.io/v1
kind: Config
metadata:
  name: cluster
spec:
  managementState: Managed
  replicas: 2
  readOnly: true
  logLevel: Debug
  storage:
    emptyDir: {}
`, check: func(t *testing.T, c *Config) {
			if !c.ReadOnly || c.Storage.EmptyDir == nil || c.Storage.Filesystem != nil || !c.Debug() {
				t.Fatalf("spec not applied: %+v", c)
			}
		}},
		{name: "two storages", in: "storage:\n  emptyDir: {}\n  filesystem: {rootDirectory: x}\n", wantErr: "exactly one"},
		{name: "gcs", in: "storage:\n  gcs: {bucket: reg, region: europe-west1, projectID: p1, keyID: k}\n", check: func(t *testing.T, c *Config) {
			if g := c.Storage.GCS; g == nil || *g != (GCS{Bucket: "reg", Region: "europe-west1", ProjectID: "p1", KeyID: "k"}) || c.Storage.Filesystem != nil || c.MetadataDirectory != DefaultRoot {
				t.Fatalf("gcs config = %+v", c)
			}
		}},
		{name: "gcs needs a bucket", in: "storage:\n  gcs: {projectID: p1}\n", wantErr: "storage.gcs.bucket: required"},
		{name: "gcs unknown key", in: "storage:\n  gcs:\n    bucket: b\n    keyfile: k.json\n", wantErr: "line 4: field keyfile not found in storage.gcs"},
		{name: "azure", in: "storage:\n  azure: {accountName: acct, container: reg, cloudName: AzureChinaCloud}\n", check: func(t *testing.T, c *Config) {
			if a := c.Storage.Azure; a == nil || *a != (Azure{AccountName: "acct", Container: "reg", CloudName: "AzureChinaCloud"}) || c.Storage.Filesystem != nil {
				t.Fatalf("azure config = %+v", c)
			}
		}},
		{name: "azure endpoint", in: "storage:\n  azure: {accountName: devstoreaccount1, container: reg, endpoint: 'http://127.0.0.1:10000/devstoreaccount1'}\n", check: func(t *testing.T, c *Config) {
			if a := c.Storage.Azure; a == nil || a.Endpoint != "http://127.0.0.1:10000/devstoreaccount1" {
				t.Fatalf("azure config = %+v", c)
			}
		}},
		{name: "azure needs account and container", in: "storage:\n  azure: {cloudName: AzurePublicCloud}\n", wantErr: "storage.azure.accountName: required\nstorage.azure.container: required"},
		{name: "azure unknown cloud", in: "storage:\n  azure: {accountName: a, container: c, cloudName: Mars}\n", wantErr: `storage.azure.cloudName: "Mars" is not one of AzurePublicCloud`},
		{name: "azure bad endpoint", in: "storage:\n  azure: {accountName: a, container: c, endpoint: '127.0.0.1:10000'}\n", wantErr: "storage.azure.endpoint"},
		{name: "azure unknown key", in: "storage:\n  azure:\n    container: c\n    accountKey: k\n", wantErr: "line 4: field accountKey not found in storage.azure"},
		{name: "gcs and azure", in: "storage:\n  gcs: {bucket: b}\n  azure: {accountName: a, container: c}\n", wantErr: "exactly one"},
		{name: "s3 needs a bucket", in: "storage:\n  s3: {region: eu-west-1}\n", wantErr: "storage.s3.bucket"},
		{name: "s3 unknown key", in: "storage:\n  s3:\n    bucket: b\n    bukket: c\n", wantErr: "line 4: field bukket not found in storage.s3"},
		{name: "s3", in: "storage:\n  s3: {bucket: reg, regionEndpoint: 'http://minio:9000'}\nmetadataDirectory: /var/lib/berth\n", check: func(t *testing.T, c *Config) {
			if c.Storage.S3 == nil || c.Storage.S3.Bucket != "reg" || c.Storage.Filesystem != nil || c.MetadataDirectory != "/var/lib/berth" {
				t.Fatalf("s3 config = %+v", c)
			}
		}},
		{name: "postgres metadata", in: "storage:\n  s3: {bucket: reg}\nmetadataDatabase: postgres://berth@db:5432/berth?sslmode=require\n", check: func(t *testing.T, c *Config) {
			if c.MetadataDatabase != "postgres://berth@db:5432/berth?sslmode=require" {
				t.Fatalf("metadataDatabase = %q", c.MetadataDatabase)
			}
		}},
		{name: "metadata database not postgres", in: "metadataDatabase: mysql://u:secret@db/berth\n", wantErr: "metadataDatabase: not a PostgreSQL URL"},
		{name: "bad log level and half TLS", in: "logLevel: Loud\ntls: {certFile: a}\n", wantErr: "certFile and keyFile"},
		{name: "request limits", in: "requests:\n  read: {maxRunning: 10, maxInQueue: 5, maxWaitInQueue: 2s}\n", check: func(t *testing.T, c *Config) {
			if c.Requests.Read.MaxRunning != 10 || c.Requests.Read.MaxWaitInQueue.D().Seconds() != 2 {
				t.Fatalf("requests = %+v", c.Requests)
			}
		}},
		{name: "bad wait", in: "requests:\n  write: {maxRunning: 1, maxWaitInQueue: soon}\n", wantErr: "line 2: requests.write.maxWaitInQueue: \"soon\""},
		{name: "gc and prune defaults", in: "", check: func(t *testing.T, c *Config) {
			if c.GC.Disabled || c.GC.Interval.D() != 24*time.Hour || c.GC.GracePeriod.D() != time.Hour {
				t.Fatalf("gc = %+v", c.GC)
			}
			if c.Prune.Enabled || c.Prune.Interval.D() != 24*time.Hour || c.Prune.KeepTagRevisions != 3 || c.Prune.KeepYoungerThan.D() != time.Hour {
				t.Fatalf("prune = %+v", c.Prune)
			}
		}},
		{name: "gc and prune set", in: "gc: {interval: 6h, gracePeriod: 2h}\nprune: {enabled: true, keepTagRevisions: 5, keepYoungerThan: 3h}\n", check: func(t *testing.T, c *Config) {
			if c.GC.Interval.D() != 6*time.Hour || c.GC.GracePeriod.D() != 2*time.Hour || !c.Prune.Enabled || c.Prune.KeepTagRevisions != 5 || c.Prune.KeepYoungerThan.D() != 3*time.Hour {
				t.Fatalf("gc = %+v, prune = %+v", c.GC, c.Prune)
			}
		}},
		{name: "gc bad durations", in: "gc: {interval: often, gracePeriod: -1s}\nprune: {keepTagRevisions: -1}\n", wantErr: "gc.gracePeriod: \"-1s\" is not a positive duration"},
		// Every problem at once: both unparsable durations with their
		// lines, the unknown key, and Validate's own findings.
		{name: "every problem at once", in: "shutdownTimeout: soon\ngc:\n  interval: 24\n  gracePeriod: -5m\nrequests:\n  read: {maxWaitInQueue: 3 minutes}\nauth: {tokenLifetime: forever}\nstorge: {}\nlogLevel: Loud\n",
			wantErr: "invalid config: line 1: shutdownTimeout: \"soon\" is not a duration like 30s, 5m or 720h\n  line 3: gc.interval: \"24\" is not a duration like 30s, 5m or 720h\n  line 4: gc.gracePeriod: \"-5m\" is not a positive duration like 30s, 5m or 24h (leave the field out for its default)\n  line 6: requests.read.maxWaitInQueue: \"3 minutes\" is not a duration like 30s, 5m or 720h\n  line 7: auth.tokenLifetime: \"forever\" is not a duration like 30s, 5m or 720h\n  line 8: field storge not found\nlogLevel: \"Loud\" is not one of Normal, Debug, Trace, TraceAll"},
		{name: "an explicit zero interval is refused, not replaced by the default", in: "gc:\n  interval: 0s\nprune:\n  keepYoungerThan: 0s\n",
			wantErr: "line 2: gc.interval: \"0s\" is not a positive duration like 30s, 5m or 24h (leave the field out for its default)\n  line 4: prune.keepYoungerThan: \"0s\" is not a positive duration"},
		{name: "operator object names spec fields", in: "apiVersion: imageregistry.operator.openshift.io/v1\nkind: Config\nspec:\n  imports:\n  - {from: quay.io/a/b, to: b, schedule: hourly}\n", wantErr: "line 5: imports[0].schedule: \"hourly\" is not a duration"},
		{name: "durations parsed once", in: "shutdownTimeout: 45s\nauth: {tokenLifetime: 90s}\nprune: {keepYoungerThan: 2h30m}\n", check: func(t *testing.T, c *Config) {
			if c.ShutdownTimeout.D() != 45*time.Second || c.Auth.TokenLifetime.D() != 90*time.Second || c.Prune.KeepYoungerThan.D() != 150*time.Minute {
				t.Fatalf("durations = %v %v %v", c.ShutdownTimeout, c.Auth.TokenLifetime, c.Prune.KeepYoungerThan)
			}
		}},
		{name: "gc unknown key", in: "gc:\n  grace: 1h\n", wantErr: "field grace not found in gc"},
		{name: "wrong kind", in: "apiVersion: v1\nkind: ConfigMap\n", wantErr: "is not an imageregistry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestReadEnv(t *testing.T) {
	env := map[string]string{
		MetadataDSNEnv:     "postgres://berth:pw@db/berth",
		S3AccessKeyEnv:     "AK",
		S3SecretKeyEnv:     "SK",
		GCSKeyFileEnv:      "/keys/gcs.json",
		AzureAccountKeyEnv: "AZ",
		MetricsSecretEnv:   "MS",
	}
	c, err := Parse(strings.NewReader("metadataDatabase: postgres://berth@file/berth\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MetadataDSN() != "postgres://berth@file/berth" || !reflect.DeepEqual(c.Env, Env{}) {
		t.Fatalf("before ReadEnv: dsn %q, env %+v", c.MetadataDSN(), c.Env)
	}
	c.ReadEnv(func(k string) string { return env[k] })
	want := Env{MetadataDSN: "postgres://berth:pw@db/berth", S3AccessKey: "AK", S3SecretKey: "SK", GCSKeyFile: "/keys/gcs.json", AzureAccountKey: "AZ", MetricsSecret: "MS"}
	if !reflect.DeepEqual(c.Env, want) || c.MetadataDSN() != want.MetadataDSN || c.MetricsSecret() != "MS" {
		t.Fatalf("env = %+v, dsn %q, metrics secret %q; want %+v", c.Env, c.MetadataDSN(), c.MetricsSecret(), want)
	}
	c.Metrics.Secret = "from-file"
	if c.MetricsSecret() != "from-file" {
		t.Errorf("metrics.secret in the file should win over %s, got %q", MetricsSecretEnv, c.MetricsSecret())
	}
}
