// Package pullthrough makes the registry a caching mirror of upstream
// registries: it maps a request under an upstream's prefix (or containerd's
// ?ns=) to that upstream, answers from the local store when it can, fills
// misses from the upstream through the registry's ordinary commit path, and
// serves what is cached when the upstream fails.
//
// It speaks to upstreams only through internal/mirror (the one registry
// client) and stores only through internal/registry; it imports no HTTP
// server code: internal/api turns its results into responses.
//
// Invariants kept here:
//   - one upstream fetch per blob digest at a time, however many clients
//     ask: the first starts a fill, the others read the same growing
//     upload or wait on it; the fill runs on the cache's own context, so a
//     client that goes away does not abort it;
//   - nothing becomes visible before its digest is verified: a fill
//     streams into an upload session, is hashed as it is written, and only
//     a matching digest is committed and linked (registry.Fill); readers
//     of a fill in progress are never given its last byte before that
//     check passed, so a client never completes a body that fails it; a
//     crash mid-fill leaves an upload session that the purge removes;
//   - a manifest by digest is stored only if its bytes hash to it; a tag
//     is asked about upstream at most once per tagTTL, and any upstream
//     failure (refused, DNS, timeout, TLS, 5xx, 429, 401/403) serves what
//     is cached with a Warning, while a 404 is the upstream's answer;
//   - an index brings only itself: a child manifest comes when asked; an
//     image manifest's blobs are filled in the background after it is
//     served, so an image once pulled stays pullable while the upstream is
//     down;
//   - eviction (maxSize by least recent pull, maxUnusedAge) removes whole
//     manifests with the links only they needed, never because something
//     is untagged, never bytes another manifest references, never bytes a
//     pull is reading or filling now.
package pullthrough
