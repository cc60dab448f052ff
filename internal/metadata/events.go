package metadata

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"
)

// Event is one notification to queue for one endpoint. Body is the event's
// JSON, opaque to the store; Repo keeps the queue's rows attributable.
type Event struct {
	Endpoint string
	Repo     string
	Body     []byte
}

// QueuedEvent is an event waiting in an endpoint's queue. Seq orders the
// queue: an endpoint's events are handed out by ascending Seq, which is
// the order of the changes that wrote them on one process (on PostgreSQL,
// changes committed at once by several replicas get sequence numbers in
// the order they began, and a lower one may become visible after a higher
// one was handed out; it is then handed out next, never lost).
type QueuedEvent struct {
	Seq     int64
	Repo    string
	Body    []byte
	Created time.Time
}

// enqueue writes events inside tx, so they commit or roll back with the
// change they describe.
func enqueue(ctx context.Context, tx *txn, events []Event) error {
	now := time.Now().UnixNano()
	for _, e := range events {
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_queue(endpoint, repo, body, created) VALUES(?, ?, ?, ?)`, e.Endpoint, e.Repo, string(e.Body), now); err != nil {
			return err
		}
	}
	return nil
}

// Enqueue queues events that describe no change of the store (pulls).
func (s *Store) Enqueue(ctx context.Context, events ...Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *txn) error { return enqueue(ctx, tx, events) })
}

// PendingEvents returns up to n of endpoint's queued events, oldest first.
func (s *Store) PendingEvents(ctx context.Context, endpoint string, n int) ([]QueuedEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, repo, body, created FROM event_queue WHERE endpoint = ? ORDER BY seq LIMIT ?`, endpoint, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []QueuedEvent
	for rows.Next() {
		var e QueuedEvent
		var body string
		var created int64
		if err := rows.Scan(&e.Seq, &e.Repo, &body, &created); err != nil {
			return nil, err
		}
		e.Body, e.Created = []byte(body), time.Unix(0, created)
		out = append(out, e)
	}
	return out, rows.Err()
}

// PendingCount is how many events endpoint's queue holds.
func (s *Store) PendingCount(ctx context.Context, endpoint string) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_queue WHERE endpoint = ?`, endpoint).Scan(&n)
	return n, err
}

// QueuedEndpoints lists the endpoints that have queued events, with how
// many each has (so a server can say which queues no endpoint drains).
func (s *Store) QueuedEndpoints(ctx context.Context) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT endpoint, COUNT(*) FROM event_queue GROUP BY endpoint`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			return nil, err
		}
		out[name] = n
	}
	return out, rows.Err()
}

// QueueStatus is one endpoint's queue, as operators see it.
type QueueStatus struct {
	Endpoint   string
	Configured bool      // false: left by an endpoint no longer configured
	Pending    int64     // events waiting
	Oldest     time.Time // the oldest waiting event's queue time; zero when none
}

// EventQueues are the queues of the configured endpoints, in their order,
// then those other endpoints left behind, by name.
func (s *Store) EventQueues(ctx context.Context, configured []string) ([]QueueStatus, error) {
	queued, err := s.QueuedEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	var left []string
	for name := range queued {
		if !slices.Contains(configured, name) {
			left = append(left, name)
		}
	}
	slices.Sort(left)
	var out []QueueStatus
	for i, name := range append(slices.Clone(configured), left...) {
		q := QueueStatus{Endpoint: name, Configured: i < len(configured), Pending: queued[name]}
		if q.Pending > 0 {
			head, err := s.PendingEvents(ctx, name, 1)
			if err != nil {
				return nil, err
			}
			if len(head) > 0 {
				q.Oldest = head[0].Created
			}
		}
		out = append(out, q)
	}
	return out, nil
}

// AckEvents removes delivered events from endpoint's queue.
func (s *Store) AckEvents(ctx context.Context, endpoint string, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	q := `DELETE FROM event_queue WHERE endpoint = ? AND seq IN (?` + strings.Repeat(", ?", len(seqs)-1) + `)`
	args := make([]any, 0, len(seqs)+1)
	args = append(args, endpoint)
	for _, s := range seqs {
		args = append(args, s)
	}
	return s.tx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
}

// DropEvents removes every event queued for endpoint and says how many
// there were: the queue of an endpoint removed or renamed for good.
func (s *Store) DropEvents(ctx context.Context, endpoint string) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM event_queue WHERE endpoint = ?`, endpoint)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// LeaseEvents makes holder the one process delivering endpoint's queue
// until ttl from now, if no other holder's lease is running; it reports
// whether holder has the lease. Holding it already renews it.
func (s *Store) LeaseEvents(ctx context.Context, endpoint, holder string, ttl time.Duration) (bool, error) {
	got := false
	err := s.tx(ctx, func(tx *txn) error {
		got = false
		now := time.Now()
		var cur string
		var expires int64
		err := tx.QueryRowContext(ctx, `SELECT holder, expires FROM event_leases WHERE endpoint = ?`, endpoint).Scan(&cur, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case cur != holder && expires > now.UnixNano():
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_leases(endpoint, holder, expires) VALUES(?, ?, ?)
			ON CONFLICT(endpoint) DO UPDATE SET holder = excluded.holder, expires = excluded.expires`, endpoint, holder, now.Add(ttl).UnixNano()); err != nil {
			return err
		}
		got = true
		return nil
	})
	return got, err
}

// ReleaseEvents gives up holder's lease on endpoint's queue, so another
// replica takes it over at once.
func (s *Store) ReleaseEvents(ctx context.Context, endpoint, holder string) error {
	return s.tx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM event_leases WHERE endpoint = ? AND holder = ?`, endpoint, holder)
		return err
	})
}
