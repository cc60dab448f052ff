package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	gcs "cloud.google.com/go/storage"
	"gocloud.dev/blob/gcsblob"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
)

// GCSConfig locates a Google Cloud Storage bucket, with the fields of the
// image registry operator's spec.storage.gcs.
//
// When the environment sets STORAGE_EMULATOR_HOST (host:port or a URL, as
// the Cloud Storage client libraries read it), the client talks to that
// emulator (fake-gcs-server…) without credentials.
type GCSConfig struct {
	// Bucket holds the registry's objects; it is created when missing and
	// ProjectID is set.
	Bucket string
	// Region is the location a created bucket gets (default: the service's
	// default, US multi-region).
	Region string
	// ProjectID owns a created bucket; needed only to create one.
	ProjectID string
	// KeyID is a Cloud KMS key name that becomes a created bucket's
	// default encryption key; an existing bucket keeps its own policy.
	KeyID string
	// KeyFile is a service-account JSON key file; empty means Application
	// Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's user
	// credentials, the metadata server).
	KeyFile string
}

// OpenGCS opens (creating if needed) the bucket and returns a Backend over it
// and the Closer that releases it.
func OpenGCS(ctx context.Context, c GCSConfig) (Backend, io.Closer, error) {
	if c.Bucket == "" {
		return nil, nil, errors.New("storage: gcs: bucket is required")
	}
	var opts []option.ClientOption
	// The client reads STORAGE_EMULATOR_HOST itself and then goes
	// anonymous; a key file on top would conflict with that.
	if c.KeyFile != "" && os.Getenv("STORAGE_EMULATOR_HOST") == "" {
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, c.KeyFile))
	}
	client, err := gcs.NewClient(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: gcs: %w", err)
	}
	if err := ensureGCSBucket(ctx, client, c); err != nil {
		client.Close()
		return nil, nil, err
	}
	b, err := gcsblob.OpenBucket(ctx, nil, c.Bucket, &gcsblob.Options{Client: client})
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("storage: gcs: %w", err)
	}
	// A bucket opened over a caller's client leaves the client open.
	return NewBucket(b), closers{b, client}, nil
}

// ensureGCSBucket creates the bucket when the service says it does not
// exist. A key allowed only object operations (roles/storage.objectAdmin) is
// refused the bucket's metadata; that is no reason to stop here.
func ensureGCSBucket(ctx context.Context, client *gcs.Client, c GCSConfig) error {
	bkt := client.Bucket(c.Bucket)
	_, err := bkt.Attrs(ctx)
	var ge *googleapi.Error
	switch {
	case err == nil, errors.As(err, &ge) && ge.Code == 403: // Forbidden
		return nil
	case !errors.Is(err, gcs.ErrBucketNotExist):
		return fmt.Errorf("storage: gcs: bucket %q cannot be reached or read: %w", c.Bucket, err)
	case c.ProjectID == "":
		return fmt.Errorf("storage: gcs: bucket %q does not exist, and projectID is not set to create it in", c.Bucket)
	}
	attrs := &gcs.BucketAttrs{Location: c.Region}
	if c.KeyID != "" {
		attrs.Encryption = &gcs.BucketEncryption{DefaultKMSKeyName: c.KeyID}
	}
	if err := bkt.Create(ctx, c.ProjectID, attrs); err != nil {
		// Another replica may have created it meanwhile.
		if _, aerr := bkt.Attrs(ctx); aerr == nil {
			return nil
		}
		return fmt.Errorf("storage: gcs: bucket %q does not exist and could not be created: %w", c.Bucket, err)
	}
	return nil
}

// closers closes each in order and reports every failure.
type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
