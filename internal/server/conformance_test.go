package server_test

import (
	"testing"

	"github.com/berth-registry/berth/conformance"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/berth-registry/berth/internal/testpeer"
)

// TestConformance runs the whole conformance suite, with every feature
// claimed, against berth serve on each storage backend (S3 on a real MinIO,
// GCS on fake-gcs-server, Azure Blob on Azurite).
func TestConformance(t *testing.T) {
	minio := testpeer.StartMinIO(t)
	t.Setenv("REGISTRY_STORAGE_S3_ACCESSKEY", minio.AccessKey)
	t.Setenv("REGISTRY_STORAGE_S3_SECRETKEY", minio.SecretKey)
	fakeGCS := testpeer.StartFakeGCS(t)
	t.Setenv("STORAGE_EMULATOR_HOST", fakeGCS.Host)
	azurite := testpeer.StartAzurite(t)
	t.Setenv("REGISTRY_STORAGE_AZURE_ACCOUNTKEY", azurite.AccountKey)
	for _, tc := range []struct {
		name string
		opts servertest.Options
	}{
		{"filesystem", servertest.Options{}},
		{"emptyDir", servertest.Options{Memory: true}},
		{"s3", servertest.Options{S3: &config.S3{Bucket: "berth-conformance", RegionEndpoint: minio.Endpoint}}},
		{"gcs", servertest.Options{GCS: &config.GCS{Bucket: "berth-conformance", ProjectID: "berth-test"}}},
		{"azure", servertest.Options{Azure: &config.Azure{AccountName: azurite.AccountName, Container: "berth-conformance", Endpoint: azurite.Endpoint}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := servertest.Start(t, tc.opts)
			conformance.Run(t, conformance.Config{BaseURL: "http://" + addr})
		})
	}
}
