package storage

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob/s3blob"
)

// S3Config locates an S3 (or S3-compatible) bucket, with the fields of the
// image registry operator's spec.storage.s3 that apply.
type S3Config struct {
	// Bucket holds the registry's objects; it is created when missing.
	Bucket string
	// Region is the bucket's region (default us-east-1).
	Region string
	// RegionEndpoint is the S3 endpoint URL for S3-compatible servers
	// (MinIO, Ceph RGW…); empty means AWS.
	RegionEndpoint string
	// VirtualHostedStyle addresses the bucket as a host name rather than a
	// path (path style is what most S3-compatible servers want).
	VirtualHostedStyle bool
	// AccessKey and SecretKey are static credentials; empty means the AWS
	// default chain (environment, shared files, instance role).
	AccessKey, SecretKey string
}

// OpenS3 opens (creating if needed) the bucket and returns a Backend over it
// and the Closer that releases it.
func OpenS3(ctx context.Context, c S3Config) (Backend, io.Closer, error) {
	if c.Bucket == "" {
		return nil, nil, errors.New("storage: s3: bucket is required")
	}
	region := c.Region
	if region == "" {
		region = "us-east-1"
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if c.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: s3: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.RegionEndpoint != "" {
			o.BaseEndpoint = aws.String(c.RegionEndpoint)
		}
		o.UsePathStyle = !c.VirtualHostedStyle
	})
	if err := ensureBucket(ctx, client, c.Bucket, region); err != nil {
		return nil, nil, err
	}
	b, err := s3blob.OpenBucket(ctx, client, c.Bucket, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: s3: %w", err)
	}
	return NewBucket(b), b, nil
}

func ensureBucket(ctx context.Context, client *s3.Client, bucket, region string) error {
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		return nil
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
	}
	_, err := client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("storage: s3: bucket %q is not reachable and could not be created: %w", bucket, err)
	}
	return nil
}
