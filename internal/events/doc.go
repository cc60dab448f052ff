// Package events owns registry notifications: it turns a change of the
// registry (a push, delete or mount; a pull when asked) into one event per
// webhook endpoint, in CNCF Distribution's envelope so its receivers work
// unchanged, and delivers each endpoint's queue.
//
// Durability and order are the metadata store's: the registry hands the
// events from Notifier.Events to the same metadata transaction as the change
// they describe, so a change without its events (or events without their
// change) never commits, and a crash or restart loses none. Run delivers an
// endpoint's queue oldest first, one envelope at a time, and removes events
// only after the endpoint answered 2xx or 3xx: delivery is at least once
// (an event whose acknowledgement was lost is sent again; receivers
// deduplicate by the event's id) and in order per endpoint, hence per
// repository. A failed POST is retried — at once up to the endpoint's
// threshold, then with a backoff doubling up to 32 times its base — and
// blocks the events behind it, so a returning endpoint gets its backlog in
// order. With replicas sharing PostgreSQL, a lease in the store lets one
// replica at a time deliver each endpoint.
//
// It imports the metadata store and config, never the HTTP API: request
// details reach it through the request's context (WithRequest).
package events
