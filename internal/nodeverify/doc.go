// Package nodeverify answers, for an image reference and a rendered node
// root, whether a node's container runtime would accept the image: it
// resolves the reference through the root's registries.conf (mirrors first),
// fetches the manifest and its signatures where the runtime would (sigstore
// attachments as registries.d says), and evaluates the root's policy.json —
// or CRI-O's per-namespace etc/crio/policies/NAMESPACE.json when one exists
// for the pod's namespace.
//
// The verdict is the node's by construction: the decision is made by the
// container runtime's own library, go.podman.io/image/v5 (what CRI-O and
// podman link): docker.ParseReference, ImageReference.NewImageSource,
// image.UnparsedInstance and signature.PolicyContext.IsRunningImageAllowed,
// the calls copy.Image makes before it reads a layer, on a SystemContext
// pointing at the root's files. Nothing of Berth's own policy model takes
// part, so a refusal is worded as the runtime words it.
//
// It is the only non-test importer of go.podman.io/image (a fence test
// keeps it so). The library's signature package needs the build tag
// containers_image_openpgp when cgo and gpgme are absent (the usual case);
// Berth is always built with it, and a build without it stops at this
// package with an error that names the tag.
package nodeverify
