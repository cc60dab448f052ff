// Package registry holds the push, pull and delete rules of the distribution
// protocol over a blob store (bytes) and a metadata store (names). It speaks
// no HTTP: the api package turns requests into calls here and the *oci.Error
// values returned here into responses.
//
// Crash safety follows from the order of every write: bytes are streamed to
// an upload session, verified against their digest, made durable and renamed
// into place by storage.Commit, and only then named by a metadata commit. A
// crash between the two leaves unreferenced bytes, never a dangling name.
//
// Notifications: each change asks Options.Notifier for the events that
// describe it and hands them to the metadata call that makes the change, so
// an acknowledged push always has its events queued and a refused one
// never does.
package registry
