-- Schema version 0. Later changes are migrations in migrate.go, applied on
-- open; never edit a statement here (existing databases would not see it).
CREATE TABLE IF NOT EXISTS repositories (
	name    TEXT PRIMARY KEY,
	created INTEGER NOT NULL
);
-- Blobs a repository may serve (pushed or mounted into it).
CREATE TABLE IF NOT EXISTS repo_blobs (
	repo   TEXT NOT NULL,
	digest TEXT NOT NULL,
	size   INTEGER NOT NULL,
	PRIMARY KEY (repo, digest)
);
CREATE TABLE IF NOT EXISTS manifests (
	repo          TEXT NOT NULL,
	digest        TEXT NOT NULL,
	media_type    TEXT NOT NULL,
	size          INTEGER NOT NULL,
	artifact_type TEXT NOT NULL DEFAULT '',
	subject       TEXT NOT NULL DEFAULT '',
	annotations   TEXT NOT NULL DEFAULT '',
	created       INTEGER NOT NULL,
	PRIMARY KEY (repo, digest)
);
CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests (repo, subject) WHERE subject != '';
-- What each manifest references (blobs and child manifests), for gc.
CREATE TABLE IF NOT EXISTS manifest_refs (
	repo   TEXT NOT NULL,
	parent TEXT NOT NULL,
	child  TEXT NOT NULL,
	PRIMARY KEY (repo, parent, child)
);
CREATE TABLE IF NOT EXISTS tags (
	repo    TEXT NOT NULL,
	tag     TEXT NOT NULL,
	digest  TEXT NOT NULL,
	updated INTEGER NOT NULL,
	PRIMARY KEY (repo, tag)
);
-- Every tag move, kept for pruning by age or count.
CREATE TABLE IF NOT EXISTS tag_history (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	repo   TEXT NOT NULL,
	tag    TEXT NOT NULL,
	digest TEXT NOT NULL,
	at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tag_history_by_tag ON tag_history (repo, tag, at);
CREATE TABLE IF NOT EXISTS uploads (
	id      TEXT PRIMARY KEY,
	repo    TEXT NOT NULL,
	created INTEGER NOT NULL
);
