package storage_test

import (
	"context"
	"fmt"

	"github.com/berth-registry/berth/internal/testpeer"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/berth-registry/berth/internal/storage"
	"github.com/berth-registry/berth/internal/storage/storagetest"
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
