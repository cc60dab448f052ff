// Package api is the HTTP face of the registry: it parses /v2/ paths into
// routes, classifies every request as (repository, action) before any
// registry logic runs, calls the registry package, and renders every error
// through one place in the OCI error envelope. It holds no storage logic.
package api
