// Package auth owns access control for berth serve: who a client is
// (htpasswd users, groups, robot tokens), what it may do (role bindings per
// namespace, an optional anonymous role), and the bearer tokens of the
// Docker/OCI token flow that carry those grants. It speaks no HTTP (the api
// package reads headers and writes challenges) and it is the only package
// that imports golang.org/x/crypto/bcrypt and github.com/golang-jwt/jwt/v5.
//
// # Off by default
//
// Without an auth block berth serve is an anonymous, open registry and the
// request path never calls this package.
//
// # Roles and namespaces
//
// Three roles, as OpenShift names them:
//
//	registry-viewer  pull
//	registry-editor  pull, push
//	registry-admin   pull, push, delete, catalog
//
// A role binding grants one role to users and groups on a namespace. A
// namespace is a repository prefix matched on path components: "team-a"
// covers team-a and team-a/app/web but not team-ab; "team-a/apps" covers
// only that subtree; "*" covers every repository. A trailing "/*" is the
// same as none. Grants only add up: there is no deny.
//
// Groups are named in the config (name → users). Every authenticated
// identity is also in the built-in group system:authenticated, so one
// binding can, say, let every user pull everything.
//
// The anonymous role applies to clients that present no credentials (and
// to anonymous tokens), and to every authenticated identity too, so logging
// in never takes access away. A request the anonymous role does not allow is
// answered 401 with the challenge, so clients log in; an authenticated
// identity whose roles lack the action gets 403 DENIED.
//
// # Catalog
//
// Listing repositories is the catalog action, which only registry-admin
// grants. /v2/_catalog lists the repositories under the namespaces where
// the identity holds it (all of them for an admin on "*"); an identity
// that holds it nowhere is refused (403, or 401 when anonymous). Viewers
// and editors pull and push by name, as in OpenShift, where listing image
// streams is a separate, cluster-wide permission.
//
// # Credentials
//
// The htpasswd file holds bcrypt entries only ($2y$, $2a$, $2b$; `htpasswd
// -B` or `berth admin htpasswd` writes them); any other scheme is refused
// with the file and line. It is read at start and at each reload (berth
// serve's SIGHUP builds a new Authorizer; a file that does not load keeps
// the running one). A successful bcrypt verification is cached in memory (keyed
// by a SHA-256 of user, password and hash) for CredentialCacheTTL, so Basic
// auth on every request does not pay bcrypt's ~50 ms each time; failures
// are never cached.
//
// # Tokens
//
// Tokens are HS256 JWTs, issuer and audience "berth". The signing key is
// auth.tokenSecret when set; otherwise it is derived from httpSecret
// (HMAC-SHA256 of a fixed label keyed by httpSecret), so replicas that
// share httpSecret agree on tokens. With neither, serve signs with a random
// per-process key and logs a warning: tokens then die with the process and
// robot tokens cannot be made.
//
// An access token (from GET /v2/token) names its subject and lists the
// granted access in Distribution's claim shape
// ({"access":[{"type":"repository","name":"team-a/app","actions":["pull"]}]}).
// Requested scopes the identity's roles do not allow are dropped, never
// refused, as Distribution's token servers do; a request is then checked
// against the claims alone. Lifetime: auth.tokenLifetime (default 5m).
//
// A robot token (berth admin token create) is a long-lived JWT with the
// audience "berth:robot" that names a user and carries no grants: it is a
// password, usable in Basic auth or docker login with that user name, and
// the roles bound to the user (and its groups) apply at each request. The
// user need not be in the htpasswd file. Its id (the jti) is recorded in
// the metadata store by berth admin token create, and a revoked id is in
// the RevocationSet serve refreshes from there: a revoked robot token no
// longer authenticates, and an access token issued for one (it carries the
// robot id in its "robot" claim) stops working too. Rotating the signing
// secret still revokes every token at once, recorded or not.
package auth
