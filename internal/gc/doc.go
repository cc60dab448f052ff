// Package gc reclaims space while the registry keeps serving: Prune deletes
// old image revisions from the metadata store, and Collect removes blob
// links and blob-store bytes that nothing references any more. It works only
// through storage.Backend and the metadata store's methods; it must not
// import SQL drivers, net/http or the registry package.
//
// There is no read-only window. Safety against concurrent pushes comes from
// the order in which the registry writes (bytes are committed first, then
// linked, then a manifest that references the link is recorded in one
// transaction that checks the link exists) and from these rules:
//
//  1. Grace period. Collect never deletes bytes committed, or removes a link
//     made, less than Grace ago (default 1h). Committing bytes that already
//     exist refreshes their commit time, and linking a blob again refreshes
//     the link time, so a re-push or a mount is a fresh start. A push whose
//     blob upload and manifest upload are further apart than Grace is not
//     protected: its manifest push is refused with MANIFEST_BLOB_UNKNOWN,
//     never accepted with a reference to missing bytes.
//  2. Links before bytes. A link is removed only if no manifest of its
//     repository references it, re-checked in the same write transaction as
//     the removal (metadata.RemoveStaleLinks). Hence a manifest row never
//     references a removed link, and a blob that some manifest needs keeps
//     its link and therefore its bytes.
//  3. Mark, then re-check right before each delete. Bytes are a candidate
//     when their commit time is older than the cutoff (start - Grace) and
//     no repository links them, no manifest is them and no manifest
//     references them. Just before deleting a candidate, Collect asks the
//     metadata store again and then reads its commit time again from the
//     blob store (a commit between the mark and the delete refreshes it);
//     only if both still say "garbage" are the bytes deleted. The order
//     matters: a pusher commits bytes before it links them, so a link that
//     the metadata check misses belongs to bytes whose fresh commit time the
//     time check sees.
//  4. Crash leftovers. Bytes committed by a push that crashed before its
//     metadata commit are indistinguishable from garbage and go once they
//     are older than Grace. Upload sessions are not bytes of the blob store;
//     the server's upload purge removes abandoned ones.
//  5. Prune changes metadata only. It deletes a manifest (each one in its
//     own transaction that re-checks that no tag points at it and no other
//     manifest references it), so a tag moved onto an old revision or an
//     index pushed over an old child during a prune keeps it. The blobs of
//     pruned manifests become stale links and then garbage for a later
//     Collect. Prune never deletes a tagged manifest, one of the newest
//     KeepTagRevisions of a tag's history, one younger than KeepYoungerThan,
//     a manifest never tagged that is no index's child and no referrer of a
//     present subject (digest-only pushes, as mirroring makes), or anything
//     those reach as index children or as referrers of their subject.
//
// The last windows are closed in the blob store: on backends that are a
// storage.ConditionalDeleter (the filesystem) the delete itself moves the
// blob aside and keeps it if its commit time turns out fresh, so a re-push
// between the re-check and the delete is never lost; and a cross-repository
// mount links first, then refreshes the blob's commit time
// (storage.Toucher), undoing the link and falling back to an upload if the
// bytes are already gone. Object stores have no atomic conditional delete:
// there a re-push of the very same bytes in the instant between the re-check
// and the delete can still lose them, which is one more reason to keep the
// grace period well above the slowest push.
package gc
