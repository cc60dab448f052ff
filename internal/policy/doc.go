// Package policy turns a cluster's registry configuration into the files a
// node's container runtime reads, and explains what those files mean.
//
// It owns: parsing the inputs (config.openshift.io/v1 Image,
// operator.openshift.io/v1alpha1 ImageContentSourcePolicy,
// config.openshift.io/v1 ImageDigestMirrorSet and ImageTagMirrorSet, v1
// ConfigMap with registry CAs, the release payload reference); validating
// them with the cluster's rules and error wording; rendering
// registries.conf (v2), the registries.conf.d search-registries drop-in,
// policy.json and certs.d/HOST:PORT/ca.crt; classifying a change as reload,
// drain or reboot; and explaining, for one image reference, the ordered pull
// sources and the policy.json verdict, or whether an image stream import is
// admitted.
//
// It is pure: bytes and typed values in, bytes and values out. It does no
// file or network I/O, imports no cobra and no registry client; the
// container runtime's library (go.podman.io/image/v5) is a test dependency
// only, used as the judge of what the rendered files mean.
//
// # Rules kept (the cluster's, in order)
//
// Mirror sets: IDMS entries, then ICSP entries, are digest sets; ITMS entries
// are tag sets. An entry whose mirrors only repeat its source is ignored,
// with its mirrorSourcePolicy. Sets for one source are merged by a
// topological sort (m1 before m2 … before the source, unless the source is
// listed), ties broken by name; a trailing source is dropped. Sources are
// written in sorted order, digest mirrors ("digest-only") before tag mirrors
// ("tag-only"); NeverContactSource blocks the source entry. Then blocked
// entries are created, insecure flags propagate to nested entries and to
// mirror endpoints, blocked flags to nested entries but never to mirrors, and
// entries nested in a mirrored source that have no mirrors inherit the
// parent's mirrors with the path suffix appended. registries.conf is
// rewritten only when insecure or blocked scopes or mirror sets exist;
// policy.json only when allowed or blocked scopes exist; otherwise the base
// file is kept byte for byte.
//
// policy.json: allowed scopes get insecureAcceptAnything with default
// reject; blocked scopes get reject with default insecureAcceptAnything
// (applied last); "atomic" copies "docker" without scopes of three or more
// "/". A blocked scope covering the release payload is dropped with a
// warning unless a pull source of the payload outside every blocked scope
// exists (digest mirrors only, since the payload is pulled by digest); if
// one exists the scope stays blocked in registries.conf, is left out of
// policy.json when it is exactly the payload repository, and the payload
// repository is allowed.
//
// # Where Berth deliberately differs from the cluster
//
//   - Only the payload repository blocked (reference V10): the cluster ends
//     with policy.json default "reject", rejecting every other image on the
//     node. Berth keeps the default insecureAcceptAnything unless the user's
//     own allowedRegistries is set, and warns.
//   - Two blocked scopes covering the payload (V11): the cluster appends the
//     payload repository to "allowed" once per scope and then fails the whole
//     render as "only one of AllowedRegistries or BlockedRegistries". Berth
//     lists it once and renders.
//   - A wildcard mirrored source with a nested insecure or blocked entry
//     (V26): the cluster fails with "internal error:
//     mirrorsAdjustedForNestedScope for a wildcard scope". Berth propagates:
//     the nested entry gets the wildcard's mirrors plus the nested scope's
//     path, which is exactly where the wildcard entry would have sent it.
//   - allowedRegistries that leaves out the release payload, the internal
//     registry or a mirror host is rendered as the cluster does, with a
//     warning for each.
//   - Registry CA values must be PEM certificates that parse, and keys must
//     be "host" or "host..port"; the cluster writes whatever it is given.
//     A key present in both the user and the managed ConfigMap gets both
//     bundles. Stale certs.d directories disappear because the whole node
//     root is replaced at once (the cluster deletes and rewrites host:port
//     directories on every sync).
//   - IDMS/ITMS mirror lists with duplicates are refused (the API's
//     listType=set); an Image not named "cluster" and documents of other
//     kinds are skipped with a warning; a second Image "cluster" is an error.
//   - A base registries.conf with keys Berth does not model, or in the v1
//     format, is refused rather than rewritten without them.
//   - Without --release-image nothing is protected from blocking; render warns.
//   - A mirror cycle is broken by taking the remaining mirror with the fewest
//     unplaced predecessors, then by name. This gives the documented results
//     (V15); the cluster's exact tie rule is not documented.
//   - Mirrors propagated to nested entries are re-checked against the
//     insecure scopes, so a propagated location inside an insecure scope is
//     marked insecure.
//   - Import explain (V30) answers as the cluster does (a namespace or
//     wildcard block does not stop an import) and adds a note when a blocked
//     scope covers the reference; node explain notes the registries.conf and
//     policy.json port asymmetry (V31).
//
// Kept although odd, because nodes behave so: registries.conf prefix
// "example.com" also matches "example.com:5000" while policy.json scope
// "example.com" does not; a registries.conf.d change is reported as a reboot
// (the cluster's default node-disruption policy has no entry for it);
// blocking docker.io leaves it in the search list; mirror-by-digest-only is
// never written (per-mirror pull-from-mirror replaces it).
package policy
