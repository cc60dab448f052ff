// Package noderoot reads and writes a node root: the directory tree of
// runtime configuration (etc/containers/registries.conf, policy.json,
// certs.d, …) that berth policy render produces and explain and verify read.
//
// It owns the file I/O internal/policy must not do: reading a previous root
// for the change summary, refusing to replace a directory render did not
// write, replacing a root as a whole, and loading a root into a
// policy.Node. It imports internal/policy for the paths and types, and
// nothing that speaks to a network.
//
// # Crash safety
//
// Write puts every file into a new directory beside the root (each file
// fsynced) and only then swaps it into place, so a crash at any instant
// leaves the old root or the new one at the root's path, never a mix. On
// Linux the swap is one renameat2(RENAME_EXCHANGE). Where that is missing
// (other systems, or a file system without it) the old root is first moved
// to ".NAME.old" beside it and the new one renamed in; a crash between the
// two renames leaves no root for an instant, and the next Write, Previous or
// Load puts ".NAME.old" back first (and removes it once a new root is in
// place), so the old root is never lost. Temporary directories a crash left
// behind (".NAME.tmp-*") are removed by the next Write. Two renders of one
// root at the same time are not supported.
package noderoot
