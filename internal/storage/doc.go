// Package storage owns the bytes: a content-addressed blob store keyed by
// digest, plus upload sessions that become blobs only when committed. It
// knows nothing of repositories, tags or manifests (the metadata store does),
// and it is the only package that may import object-store SDKs.
//
// Invariants every Backend keeps (storagetest checks them):
//   - a blob is visible under its digest only after Commit, and Commit makes
//     it durable first (fsync, then an atomic rename on a filesystem);
//   - a committed blob is never rewritten: committing the same digest again
//     is a no-op that discards the duplicate upload;
//   - an Append that fails leaves the upload exactly as it was before it;
//   - nothing in this package verifies digests: callers hash while they
//     stream and commit only what they verified;
//   - Stat and Walk agree on a blob's commit time, read afresh from the
//     store: gc marks by one and re-checks by the other.
//
// Instrument wraps any Backend with the cluster registry's storage metrics;
// the wrapper has exactly the optional interfaces of what it wraps, so
// callers' type assertions (ConditionalDeleter) answer as before.
package storage
