// Package oci holds the pure types of the distribution protocol: repository
// names and tags, digests, media types, manifest parsing and validation, and
// the OCI error codes with their HTTP statuses. It does no I/O and imports
// nothing of Berth's.
package oci
