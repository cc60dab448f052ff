package storage_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/berth-registry/berth/internal/storage"
	"github.com/berth-registry/berth/internal/storage/storagetest"
	"github.com/berth-registry/berth/internal/testpeer"
)

func TestFilesystem(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		b, err := storage.NewFilesystem(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestFilesystemConditionalDelete(t *testing.T) {
	b, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	storagetest.RunConditionalDelete(t, b)
}

func TestMemory(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return storage.NewMemory() })
}

// TestBucketMemblob runs the conformance suite over the object-store backend
// with gocloud's in-memory bucket; TestS3 runs it against a real S3 server.
func TestBucketMemblob(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		b := memblob.OpenBucket(nil)
		t.Cleanup(func() { b.Close() })
		return storage.NewBucket(b)
	})
}

// TestS3 runs the conformance suite against a real S3 server (MinIO), a
// fresh bucket per case, created by OpenS3.
func TestS3(t *testing.T) {
	m := testpeer.StartMinIO(t)
	n := 0
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		n++
		b, closer, err := storage.OpenS3(context.Background(), storage.S3Config{
			Bucket:         fmt.Sprintf("berth-test-%d", n),
			RegionEndpoint: m.Endpoint,
			AccessKey:      m.AccessKey,
			SecretKey:      m.SecretKey,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closer.Close() })
		return b
	})
}

// TestGCS runs the conformance suite against a Google Cloud Storage
// emulator (fake-gcs-server), a fresh bucket per case, created by OpenGCS.
func TestGCS(t *testing.T) {
	g := testpeer.StartFakeGCS(t)
	t.Setenv("STORAGE_EMULATOR_HOST", g.Host)
	n := 0
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		n++
		b, closer, err := storage.OpenGCS(context.Background(), storage.GCSConfig{
			Bucket:    fmt.Sprintf("berth-test-%d", n),
			ProjectID: "berth-test",
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closer.Close() })
		return b
	})
	t.Run("MissingBucketWithoutProject", func(t *testing.T) {
		_, _, err := storage.OpenGCS(context.Background(), storage.GCSConfig{Bucket: "berth-absent"})
		if err == nil || !strings.Contains(err.Error(), "projectID") {
			t.Fatalf("opening a missing bucket without projectID: %v", err)
		}
	})
}

// TestAzure runs the conformance suite against an Azure Blob emulator
// (Azurite), a fresh container per case, created by OpenAzure.
func TestAzure(t *testing.T) {
	a := testpeer.StartAzurite(t)
	n := 0
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		n++
		b, closer, err := storage.OpenAzure(context.Background(), storage.AzureConfig{
			AccountName: a.AccountName,
			AccountKey:  a.AccountKey,
			Container:   fmt.Sprintf("berth-test-%d", n),
			Endpoint:    a.Endpoint,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closer.Close() })
		return b
	})
	t.Run("WrongKey", func(t *testing.T) {
		_, _, err := storage.OpenAzure(context.Background(), storage.AzureConfig{
			AccountName: a.AccountName,
			AccountKey:  "d3Jvbmc=",
			Container:   "berth-wrong-key",
			Endpoint:    a.Endpoint,
		})
		if err == nil || !strings.Contains(err.Error(), "cannot be reached or read") {
			t.Fatalf("opening with a wrong key: %v", err)
		}
	})
}
