package server_test

import (
	"testing"

	"github.com/berth-registry/berth/conformance"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/berth-registry/berth/internal/testpeer"
)

// TestConformance runs the whole conformance suite, with every feature
// claimed, against berth serve on each storage backend (S3 on a real MinIO).
func TestConformance(t *testing.T) {
	minio := testpeer.StartMinIO(t)
	t.Setenv("REGISTRY_STORAGE_S3_ACCESSKEY", minio.AccessKey)
	t.Setenv("REGISTRY_STORAGE_S3_SECRETKEY", minio.SecretKey)
	for _, tc := range []struct {
		name string
		opts servertest.Options
	}{
		{"filesystem", servertest.Options{}},
		{"emptyDir", servertest.Options{Memory: true}},
		{"s3", servertest.Options{S3: &config.S3{Bucket: "berth-conformance", RegionEndpoint: minio.Endpoint}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := servertest.Start(t, tc.opts)
			conformance.Run(t, conformance.Config{BaseURL: "http://" + addr})
		})
	}
}
