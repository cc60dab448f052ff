-- The PostgreSQL schema, equal to SQLite's schema.sql plus its migrations up
-- to postgresBaseVersion (see postgres.go). Times are Unix nanoseconds, so
-- every time and size column is BIGINT. Never edit a statement here: later
-- changes are migrations in migrate.go, written for both dialects.
CREATE TABLE IF NOT EXISTS repositories (
	name    TEXT PRIMARY KEY,
	created BIGINT NOT NULL
);
-- Blobs a repository may serve (pushed or mounted into it).
CREATE TABLE IF NOT EXISTS repo_blobs (
	repo   TEXT NOT NULL,
	digest TEXT NOT NULL,
	size   BIGINT NOT NULL,
	linked BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (repo, digest)
);
CREATE INDEX IF NOT EXISTS repo_blobs_by_digest ON repo_blobs (digest);
CREATE INDEX IF NOT EXISTS repo_blobs_by_linked ON repo_blobs (linked);
CREATE TABLE IF NOT EXISTS manifests (
	repo          TEXT NOT NULL,
	digest        TEXT NOT NULL,
	media_type    TEXT NOT NULL,
	size          BIGINT NOT NULL,
	artifact_type TEXT NOT NULL DEFAULT '',
	subject       TEXT NOT NULL DEFAULT '',
	annotations   TEXT NOT NULL DEFAULT '',
	created       BIGINT NOT NULL,
	PRIMARY KEY (repo, digest)
);
CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests (repo, subject) WHERE subject != '';
CREATE INDEX IF NOT EXISTS manifests_by_digest ON manifests (digest);
-- What each manifest references (blobs and child manifests), for gc.
CREATE TABLE IF NOT EXISTS manifest_refs (
	repo   TEXT NOT NULL,
	parent TEXT NOT NULL,
	child  TEXT NOT NULL,
	PRIMARY KEY (repo, parent, child)
);
CREATE INDEX IF NOT EXISTS manifest_refs_by_child ON manifest_refs (child, repo);
CREATE TABLE IF NOT EXISTS tags (
	repo    TEXT NOT NULL,
	tag     TEXT NOT NULL,
	digest  TEXT NOT NULL,
	updated BIGINT NOT NULL,
	PRIMARY KEY (repo, tag)
);
-- Every tag move, kept for pruning by age or count.
CREATE TABLE IF NOT EXISTS tag_history (
	id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	repo   TEXT NOT NULL,
	tag    TEXT NOT NULL,
	digest TEXT NOT NULL,
	at     BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS tag_history_by_tag ON tag_history (repo, tag, at);
CREATE TABLE IF NOT EXISTS uploads (
	id      TEXT PRIMARY KEY,
	repo    TEXT NOT NULL,
	created BIGINT NOT NULL
);
