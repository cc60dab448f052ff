// Package selfimage builds Berth's own container image from a statically
// linked berth binary: one reproducible layer (the binary at /usr/bin/berth,
// a non-root user 65532, /var/lib/berth owned by it), an OCI config that runs
// `berth serve` on :5000 with /var/lib/berth as its volume, and OCI labels
// naming the version, source and revision. It also builds that binary with
// the Go toolchain and writes the image to an OCI layout, from which the
// mirror engine pushes it.
//
// Reproducibility is the invariant kept here: the same binary, options and
// creation time give byte-identical blobs and so the same digest. Every tar
// entry has a fixed owner, mode and modification time (the creation time),
// entries are sorted with parents first, the gzip header carries no name or
// time, and nothing reads the clock or the build machine's users.
//
// It may import go-containerregistry (it lives under internal/mirror) and
// must not import the server, API or stores.
package selfimage
