// Package mirror copies images, their referrers and whole release payloads
// between registries and OCI image layout directories: it is the one package
// in Berth that speaks to other registries as a client.
//
// It owns the copy engine (digest-preserving, deduplicated, bounded
// parallelism, retries), the on-disk transfer format (a standard OCI image
// layout plus a small JSON index, see layout.go; size-limited tar archives
// of it, see archive.go), release payload reading and
// the ImageContentSourcePolicy / ImageDigestMirrorSet output. It is the only
// package that imports github.com/google/go-containerregistry; it must not
// import cobra, the registry server or the policy renderer.
//
// Invariants kept here:
//   - a manifest is pushed only after every blob and child manifest it
//     references is present at the destination, so an interrupted run
//     leaves nothing dangling and a rerun resumes by digest;
//   - all platforms are copied by default and an index keeps its digest;
//     only an explicit platform filter writes a new index (with a new digest,
//     reported in the result);
//   - a blob is transferred at most once per destination registry per run:
//     later users wait for it and mount or reuse it;
//   - a file in a layout's blobs/ directory is given its digest name only
//     after its bytes were hashed and matched that digest;
//   - a layout unpacked from archives is used only when every archive was
//     present and every file and archive matched the archive manifest.
package mirror
