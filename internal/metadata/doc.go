// Package metadata owns the names: repositories, which blobs each repository
// may serve, manifests and what they reference, tags and their history,
// referrers by subject, upload sessions, the record of robot tokens
// (their ids and revocations, never the tokens), the record of gc and prune
// runs, and the notification queue. It is the only package with SQL and the
// only one importing SQL drivers.
//
// Notifications: the write methods take the events describing their change
// (metadata.Event, opaque JSON per endpoint) and insert them into
// event_queue inside the change's own transaction, so a change and its
// events commit or roll back together. Delivery reads an endpoint's rows by
// ascending seq and deletes them once acknowledged (AckEvents by seq, not
// "up to seq", so a row committed late with a lower seq is delivered next,
// never skipped); event_leases names the one process delivering each
// endpoint.
//
// Invariant: a row here is written only after the bytes it names are durable
// in the blob store, so the metadata never points at missing or half-written
// content. The reverse (bytes no row points at) is allowed and is garbage for
// gc to collect.
//
// Two backends, one Store: embedded SQLite (OpenSQLite, the default) and
// PostgreSQL (OpenPostgres, for several serve replicas sharing state). They
// are one type with a dialect switch rather than an interface with two
// implementations because their SQL is nearly all the same: each query is
// written once with ? placeholders and rebound to $N on PostgreSQL
// (dialect.go); what differs is the schema's DDL (schema.sql plus
// migrate.go versus schema_postgres.sql), how the schema version is kept
// (PRAGMA user_version versus a schema_version table), rowid versus ctid, and
// how writers are serialised. Two implementations would have duplicated
// every query, and every fix to one.
//
// Serialisation: SQLite has one writer, so each write transaction sees every
// earlier one and re-checking a condition inside it (PutManifest's "the
// repository holds every reference", gc's "nothing references this link")
// is enough. PostgreSQL has many writers in many processes; there every
// write transaction runs SERIALIZABLE and is retried on a serialization
// failure (Store.tx), which gives the same guarantee: a push and a gc
// sweep never both commit on a stale view of each other. The conformance
// suite (metadatatest) races them on both backends.
package metadata
