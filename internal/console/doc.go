// Package console is berth serve's web console: server-side rendered pages
// over the same registry, metadata store and authorizer as the API —
// repositories (searchable, keyset-paginated); a repository's tags (sorted
// in natural version order, by push time, size or platforms, in keyset
// pages of TagPageSize whose cursor is the last row's sort key and tag, so
// a push between pages shifts nothing; signature tags folded into badges
// on their subjects; pull commands to copy); an image (manifest or index,
// layers and config per platform, referrers, tag history with "restore
// this revision" and "tag this manifest as" for those who may push, and
// for a repository under a pull-through prefix of Options.Upstreams the
// upstream it was cached from and when: the manifest record's creation,
// since pushes under a prefix are refused); a status page (storage, usage,
// mode, version, and gc's and prune's last runs as metadata.Store.LastRun
// has them: berth serve's scheduled runs and the berth gc and berth prune
// commands record themselves); and a login form when access control is on.
//
// Everything it serves is embedded (templates, one stylesheet, one small
// script for copying and nothing else), so it works with no network beyond
// the registry itself. The browser tests assert from Chromium's network
// log that no request goes to any host but the server's loopback address,
// and TestConsoleLoopbackOnly runs server, crane and Chromium in a fresh
// network namespace whose only interface is loopback (where unshare --net
// is allowed: as root). They also check each page through Chromium's
// accessibility tree: every control named, every form field named by a
// <label> or aria-labelledby, every focusable element reached by Tab.
//
// It never answers /v2/: Handler sends those requests, the metrics and
// /healthz to the API handler it wraps.
//
// # Access control
//
// The console asks the API's live authorizer (api.Handler.Settings) every
// request, so a reload applies to both at once. A repository is listed or
// shown only to an identity that may pull it. Nothing that changes the
// registry is done here: a delete, and a restore or retag (a PUT of the
// manifest's stored bytes under the tag, as crane tag does), are sent
// through the API handler in-process with an access token the authorizer
// issues for the signed-in identity, so read-only mode, disabled deletes,
// pull-through prefixes and roles refuse them exactly as they refuse a
// client, and notifications see them as a client's.
//
// Sessions are a cookie holding who signed in and until when, signed with
// a key derived from httpSecret (random when none is set: sessions then
// end with the process and do not cross replicas). The cookie is HttpOnly,
// SameSite=Strict, and Secure when the request came over TLS. Every POST
// carries a CSRF token bound to the session, and a cross-site Origin or
// Sec-Fetch-Site is refused.
//
// It imports the api, registry, metadata and auth packages; none of them
// imports it.
package console
