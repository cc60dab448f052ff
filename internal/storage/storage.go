package storage

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// ErrNotFound is returned for a blob or upload that does not exist.
var ErrNotFound = errors.New("not found")

// Blob is an open committed blob. On the filesystem backend it is an
// *os.File, which lets net/http send it with the kernel's zero-copy path.
type Blob interface {
	io.ReadSeekCloser
}

// BlobInfo is what Stat knows of a committed blob.
type BlobInfo struct {
	Size int64
	// Committed is the last time the blob was committed or touched, read
	// afresh from the store: gc's re-check before a delete relies on it.
	Committed time.Time
}

// Backend is a blob store with upload sessions. Listing uploads and touching
// blobs are part of it because the registry needs both on every backend (the
// upload purge, gc's grace period for mounts); capabilities only some
// backends have are the optional interfaces below.
type Backend interface {
	// Stat returns a committed blob's size and commit time, or ErrNotFound.
	Stat(ctx context.Context, d digest.Digest) (BlobInfo, error)
	// Open opens a committed blob for reading, or returns ErrNotFound.
	Open(ctx context.Context, d digest.Digest) (Blob, error)
	// Delete removes a committed blob; deleting a missing blob is not an error.
	Delete(ctx context.Context, d digest.Digest) error
	// Walk calls fn for every committed blob with its size and the last time
	// it was committed (a repeated commit of the same digest refreshes it,
	// which is what lets gc's grace period protect a blob being re-pushed).
	Walk(ctx context.Context, fn func(d digest.Digest, size int64, committed time.Time) error) error

	// StartUpload creates an empty upload session.
	StartUpload(ctx context.Context, id string) error
	// Append copies r to the end of the upload and returns the number of
	// bytes appended. On error the upload is left as it was.
	Append(ctx context.Context, id string, r io.Reader) (int64, error)
	// UploadSize returns the number of bytes in the upload, or ErrNotFound.
	UploadSize(ctx context.Context, id string) (int64, error)
	// OpenUpload reads back what an upload holds so far.
	OpenUpload(ctx context.Context, id string) (io.ReadCloser, error)
	// Commit makes the upload durable and visible as blob d, then removes the
	// session.
	Commit(ctx context.Context, id string, d digest.Digest) error
	// Abort discards an upload; aborting a missing upload is not an error.
	Abort(ctx context.Context, id string) error

	UploadLister
	Toucher
}

// UploadLister lists upload sessions, so abandoned ones (a client that went
// away, a crash mid-push) can be purged.
type UploadLister interface {
	// Uploads calls fn for every upload with the time it last changed.
	Uploads(ctx context.Context, fn func(id string, modified time.Time) error) error
}

// ConditionalDeleter is implemented by backends that can delete a blob only
// if it was last committed before a cutoff, atomically with respect to a
// concurrent Commit of the same digest: gc uses it so a re-push racing the
// sweep is never lost.
type ConditionalDeleter interface {
	// DeleteIfCommittedBefore deletes blob d when its commit time is before
	// cutoff and reports whether it did; a missing blob is not an error.
	DeleteIfCommittedBefore(ctx context.Context, d digest.Digest, cutoff time.Time) (bool, error)
}

// Toucher refreshes a committed blob's commit time without rewriting it: a
// cross-repository mount does so, so gc's grace period covers a blob that
// just gained a link.
type Toucher interface {
	// Touch refreshes blob d's commit time, or returns ErrNotFound.
	Touch(ctx context.Context, d digest.Digest) error
}
