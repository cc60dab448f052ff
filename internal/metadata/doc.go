// Package metadata owns the names: repositories, which blobs each repository
// may serve, manifests and what they reference, tags and their history,
// referrers by subject, and upload sessions. It is the only package with SQL
// and the only one importing SQL drivers.
//
// Invariant: a row here is written only after the bytes it names are durable
// in the blob store, so the metadata never points at missing or half-written
// content. The reverse (bytes no row points at) is allowed and is garbage for
// gc to collect.
package metadata
