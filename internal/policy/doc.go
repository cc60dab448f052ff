// Package policy turns a cluster's registry configuration into the files a
// node's container runtime reads, and explains what those files mean.
//
// It owns: parsing the inputs (config.openshift.io/v1 Image,
// operator.openshift.io/v1alpha1 ImageContentSourcePolicy,
// config.openshift.io/v1 ImageDigestMirrorSet and ImageTagMirrorSet, v1
// ConfigMap with registry CAs, config.openshift.io/v1 and v1alpha1
// ClusterImagePolicy and ImagePolicy, the release payload reference);
// validating them with the cluster's rules and error wording; rendering
// registries.conf (v2), the registries.conf.d search-registries drop-in,
// policy.json, certs.d/HOST:PORT/ca.crt, registries.d/sigstore-registries.yaml
// and CRI-O's per-namespace crio/policies/NAMESPACE.json; classifying a
// change as reload, drain or reboot; and explaining, for one image
// reference, the ordered pull sources, the policy.json verdict and the
// signature requirement that applies (for the cluster and for one
// namespace), or whether an image stream import is admitted.
//
// It is pure: bytes and typed values in, bytes and values out. It does no
// file or network I/O, imports no cobra and no registry client; the
// container runtime's library (go.podman.io/image/v5) is a test dependency
// only, used as the judge of what the rendered files mean. Explain does not
// verify signatures (that needs the image); it names the requirement.
//
// Tests and build tags: `go test ./internal/policy` needs no tag and no
// cgo. The oracle tests that import the runtime's signature package
// (runtime_test.go, runtime_sig_test.go) are built only with the
// containers_image_openpgp tag, which the project's test command and CI
// pass; without it that package needs cgo and gpgme. Everything else —
// vectors, golden files, fuzz targets — runs either way.
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
// Signature policies (the cluster's container-runtime-config controller):
// each ClusterImagePolicy becomes one sigstoreSigned requirement (keyData;
// fulcio{caData, oidcIssuer, subjectEmail} with rekorPublicKeyData;
// pki{caRootsData, caIntermediatesData, subjectEmail, subjectHostname};
// signedIdentity matchRepoDigestOrExact by default, matchRepository,
// exactRepository{dockerRepository}, remapIdentity{prefix, signedPrefix})
// appended to each of its scopes under transports.docker, and under atomic
// for scopes of fewer than three "/"; several policies naming one scope all
// apply. An allowed scope that is also a ClusterImagePolicy scope gets the
// signature requirement instead of insecureAcceptAnything. A scope inside a
// blocked scope, or outside every allowed scope, fails the render with the
// cluster's message. ImagePolicy scopes equal to or nested in a
// ClusterImagePolicy scope are dropped with a warning (the cluster marks the
// ImagePolicy Pending); the rest go, appended, into a copy of the rendered
// policy.json written to crio/policies/NAMESPACE.json. A broader ImagePolicy
// scope is kept, and the ClusterImagePolicy's more specific scope still wins
// inside it. registries.d/sigstore-registries.yaml sets
// use-sigstore-attachments for every remaining scope and for every location
// the rendered registries.conf pulls those scopes from (tag and digest
// pulls, nested entries included), because the runtime looks the setting up
// by the physical reference it fetches; mirrors are found only when
// registries.conf was regenerated, as in the cluster. These files and
// policy.json need a CRI-O reload and no drain. The rendered JSON is the
// runtime library's own marshalling (a test compares them byte for byte).
//
// # Where Berth deliberately differs from the cluster
//
//   - Only the payload repository blocked (reference V10): the cluster ends
//     with policy.json default "reject", rejecting every other image on the
//     node. Berth keeps the default insecureAcceptAnything unless the user's
//     own allowedRegistries is set, and warns.
//
//   - Two blocked scopes covering the payload (V11): the cluster appends the
//     payload repository to "allowed" once per scope and then fails the whole
//     render as "only one of AllowedRegistries or BlockedRegistries". Berth
//     lists it once and renders.
//
//   - A wildcard mirrored source with a nested insecure or blocked entry
//     (V26): the cluster fails with "internal error:
//     mirrorsAdjustedForNestedScope for a wildcard scope". Berth propagates:
//     the nested entry gets the wildcard's mirrors plus the nested scope's
//     path, which is exactly where the wildcard entry would have sent it.
//
//   - allowedRegistries that leaves out the release payload, the internal
//     registry or a mirror host is rendered as the cluster does, with a
//     warning for each.
//
//   - Registry CA values must be PEM certificates that parse, and keys must
//     be "host" or "host..port"; the cluster writes whatever it is given.
//     A key present in both the user and the managed ConfigMap gets both
//     bundles. Stale certs.d directories disappear because the whole node
//     root is replaced at once (the cluster deletes and rewrites host:port
//     directories on every sync).
//
//   - IDMS/ITMS mirror lists with duplicates are refused (the API's
//     listType=set); an Image not named "cluster" and documents of other
//     kinds are skipped with a warning; a second Image "cluster" is an error.
//
//   - A base registries.conf with keys Berth does not model, or in the v1
//     format, is refused rather than rewritten without them.
//
//   - Without --release-image nothing is protected from blocking; render warns.
//
//   - A mirror cycle is broken by taking the remaining mirror with the fewest
//     unplaced predecessors, then by name. This gives the documented results
//     (V15); the cluster's exact tie rule is not documented.
//
//   - Mirrors propagated to nested entries are re-checked against the
//     insecure scopes, so a propagated location inside an insecure scope is
//     marked insecure.
//
//   - Import explain (V30) answers as the cluster does (a namespace or
//     wildcard block does not stop an import) and adds a note when a blocked
//     scope covers the reference; node explain notes the registries.conf and
//     policy.json port asymmetry (V31).
//
//   - Signature policy data must parse: keyData and rekorKeyData one PEM
//     public key (SubjectPublicKeyInfo or PKCS#1; an algorithm Go does not
//     know, such as ML-DSA, is accepted when the structure is sound),
//     fulcioCAData, caRootsData and caIntermediatesData PEM certificates
//     that parse, with nothing outside the PEM blocks. The API server only
//     checks the PEM markers and lengths; the cluster then renders keys a
//     node cannot use.
//
//   - An ImagePolicy without metadata.namespace is refused (kubectl would
//     put it in the current namespace); a namespace must be a DNS label, as
//     it names a file. Two objects of one kind with the same name (and
//     namespace) are refused; the cluster keeps one.
//
//   - PKI is accepted without regard to the SigstoreImageVerificationPKI
//     feature gate; scopes with a tag or digest are accepted, as the CRD's
//     pattern admits them.
//
//   - Signature scopes are checked against allowedRegistries only when the
//     user set allowedRegistries. With blocked scopes covering a mirrored
//     release payload the cluster's allowed list is just the payload
//     repository, and it then refuses every ClusterImagePolicy scope outside
//     it; Berth does not.
//
//   - The cluster reports only the first scope conflict (a map iteration);
//     Berth reports every conflicting scope with its document and line.
//
//   - A mirror location that cannot be rewritten for a scope is left out of
//     sigstore-registries.yaml; the cluster fails the render.
//
//   - A ClusterImagePolicy covering a mirrored release payload gets a
//     warning that the mirrors must hold the signatures (OCPBUGS-70261).
//
//   - policy.json and the namespace files end with a newline; the cluster
//     writes the same JSON without one.
//
// Kept although odd, because nodes behave so: registries.conf prefix
// "example.com" also matches "example.com:5000" while policy.json scope
// "example.com" does not; a registries.conf.d change is reported as a reboot
// (the cluster's default node-disruption policy has no entry for it);
// blocking docker.io leaves it in the search list; mirror-by-digest-only is
// never written (per-mirror pull-from-mirror replaces it).
package policy
