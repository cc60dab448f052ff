// Package testpeer finds and starts the real peers integration tests drive
// (registry clients, the CNCF Distribution reference registry, skopeo,
// podman, the object stores MinIO, fake-gcs-server and Azurite, and
// PostgreSQL). A
// missing peer fails the test: a skipped peer proves nothing. scripts/peers.sh
// installs them; scripts/test puts them on PATH.
package testpeer
