// Package mirror copies images, their referrers and whole release payloads
// between registries and OCI image layout directories: it is the one package
// in Berth that speaks to other registries as a client.
//
// Planning — what to copy where, for each command's shapes (plan.go,
// release_run.go, state.go), which hosts are reached insecurely by their
// role in the plan (source or destination), mirror-set files — lives here,
// so `cmd/berth` is flags, help and progress. The engine sees Sources and
// Targets only through their interfaces; extra capabilities (mounting,
// zero-copy file pushes, being a registry a cluster can pull from) are
// optional interfaces in endpoint.go.
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
//     present and every file and archive matched the archive manifest;
//     archives read in place (OpenArchives) must all be present too, their
//     small files are verified before use, and their large blobs are hashed
//     as they are pushed, so damaged bytes never reach a destination.
//
// What is verified, and where: every blob byte is hashed once per leg.
//   - registry to registry, and registry to layout: the engine's verifying
//     reader hashes the stream and fails at EOF on a mismatch; a layout
//     target reading it to EOF (Layout.PutBlob) does not hash again and
//     renames the temporary file only after that check passed. Any other
//     reader given to Layout.PutBlob is hashed there.
//   - layout to registry: a blob is read back without hashing only when
//     this process hashed it while writing it into that very Layout value,
//     or while unpacking it from archives (OpenUnpacked). Everything else
//     is hashed on the way out: a layout written by skopeo, crane or an
//     earlier berth run, one carried on removable media, or unpacked by an
//     earlier `berth mirror unpack`, since its files may have changed since
//     anyone checked them. A file's digest name is never trusted by itself.
//   - a blob the destination already holds (HEAD, or present under its
//     name in a layout) is not read at all: a registry verified it when it
//     accepted it, and a layout's names are how a rerun resumes.
//   - manifests are small and always hashed when read.
package mirror
