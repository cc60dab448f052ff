package events

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/metadata"
)

// Delivery tuning. BatchSize bounds the events of one envelope: live
// traffic sends one at a time, a backlog drains in envelopes of up to this
// many (Distribution's envelope allows several; receivers iterate events).
const (
	BatchSize    = 50
	pollInterval = time.Second
	leaseTTL     = 15 * time.Second
	maxBackoffX  = 32
	coalesce     = 25 * time.Millisecond
)

// Run delivers every endpoint's queue until ctx ends. client, when nil,
// is a plain http.Client (each endpoint's timeout applies per POST).
func (n *Notifier) Run(ctx context.Context, meta *metadata.Store, client *http.Client, log *slog.Logger) {
	if n == nil {
		return
	}
	if client == nil {
		client = &http.Client{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n.reportOrphans(ctx, meta, log)
	// The lease holder is the process's host and port, not its instance:
	// a process restarted in place takes its queue back at once, and
	// replicas (other hosts or ports) wait for a dead one's lease to end.
	holder := n.source.Addr
	var wg sync.WaitGroup
	for _, e := range n.endpoints {
		w := make(chan struct{}, 1)
		n.mu.Lock()
		n.wake = append(n.wake, w)
		n.mu.Unlock()
		d := &deliverer{e: e, meta: meta, client: client, log: log.With("endpoint", e.Name), metrics: n.metrics, holder: holder, wake: w}
		wg.Go(func() { d.run(ctx) })
	}
	wg.Wait()
}

// reportOrphans logs queues left by endpoints no longer configured, which
// nothing drains (renamed or removed endpoints).
func (n *Notifier) reportOrphans(ctx context.Context, meta *metadata.Store, log *slog.Logger) {
	queued, err := meta.QueuedEndpoints(ctx)
	if err != nil {
		return
	}
	for name, count := range queued {
		known := false
		for _, e := range n.endpoints {
			known = known || e.Name == name
		}
		if !known {
			log.Warn("notifications: events are queued for an endpoint that is not configured; they stay until an endpoint of that name is configured again or berth admin events drop removes them", "endpoint", name, "events", count)
		}
	}
}

type deliverer struct {
	e       *endpoint
	meta    *metadata.Store
	client  *http.Client
	log     *slog.Logger
	metrics *metrics
	holder  string
	wake    chan struct{}

	leased  time.Time // when the lease was last taken or renewed; zero: not held
	fails   int       // failed POSTs in a row
	counted time.Time // when the queue depth was last read
}

func (d *deliverer) run(ctx context.Context) {
	defer func() {
		if !d.leased.IsZero() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = d.meta.ReleaseEvents(rctx, d.e.Name, d.holder)
			cancel()
		}
	}()
	for ctx.Err() == nil {
		wait := d.step(ctx)
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-d.wake:
			if d.fails > 0 {
				// Backing off: new events wait behind the failed ones.
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				break
			}
			// Let a burst of changes (an image's layers, config and
			// manifest; concurrent pushes) gather, so they travel in one
			// envelope and leave the queue in one write instead of each
			// taking the store's writer away from the pushes.
			select {
			case <-ctx.Done():
			case <-time.After(coalesce):
			}
		}
		t.Stop()
	}
}

// step delivers one envelope if it can and says how long to wait before
// the next step (0: at once).
func (d *deliverer) step(ctx context.Context) time.Duration {
	ttl := max(leaseTTL, 3*d.e.Timeout.D())
	if d.leased.IsZero() || time.Since(d.leased) > ttl/3 {
		ok, err := d.meta.LeaseEvents(ctx, d.e.Name, d.holder, ttl)
		if err != nil || !ok {
			if err != nil && ctx.Err() == nil {
				d.log.Warn("notifications: cannot take the endpoint's delivery lease", "error", err)
			}
			d.leased = time.Time{}
			return ttl / 3
		}
		d.leased = time.Now()
	}
	batch, err := d.meta.PendingEvents(ctx, d.e.Name, BatchSize)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("notifications: cannot read the queue", "error", err)
		}
		return pollInterval
	}
	if len(batch) == 0 || time.Since(d.counted) > 5*time.Second {
		d.count(ctx, len(batch))
	}
	if len(batch) == 0 {
		return pollInterval
	}
	code, err := d.post(ctx, batch)
	actions := actionsOf(batch)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		d.fails++
		d.metrics.failed(d.e.Name, actions, code)
		wait := d.backoff()
		d.log.Warn("notifications: delivery failed; retrying", "error", err, "events", len(batch), "failures", d.fails, "retry_in", wait)
		return wait
	}
	if d.fails > 0 {
		d.log.Info("notifications: endpoint accepts events again", "after_failures", d.fails)
	}
	d.fails = 0
	d.metrics.delivered(d.e.Name, actions, code)
	seqs := make([]int64, len(batch))
	for i, e := range batch {
		seqs[i] = e.Seq
	}
	if err := d.meta.AckEvents(ctx, d.e.Name, seqs); err != nil && ctx.Err() == nil {
		// Delivered but still queued: they go again (at least once).
		d.log.Warn("notifications: cannot remove delivered events from the queue; they will be sent again", "error", err)
		return pollInterval
	}
	if len(batch) < BatchSize {
		d.count(ctx, 0)
	}
	return 0
}

func (d *deliverer) count(ctx context.Context, atLeast int) {
	n, err := d.meta.PendingCount(ctx, d.e.Name)
	if err != nil {
		return
	}
	d.counted = time.Now()
	d.metrics.setPending(d.e.Name, max(n, int64(atLeast)))
}

// backoff is the wait after d.fails failures in a row: short below the
// threshold, then the endpoint's backoff doubling up to 32 times itself.
func (d *deliverer) backoff() time.Duration {
	base := d.e.Backoff.D()
	if d.fails < d.e.Threshold {
		return min(base, 100*time.Millisecond)
	}
	return base * time.Duration(min(1<<(d.fails-d.e.Threshold), maxBackoffX))
}

// post sends batch as one envelope. It returns the status (0 when there
// was no answer) and an error unless the endpoint accepted it (2xx, 3xx,
// as Distribution counts success).
func (d *deliverer) post(ctx context.Context, batch []metadata.QueuedEvent) (int, error) {
	var body bytes.Buffer
	body.WriteString(`{"events":[`)
	for i, e := range batch {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(e.Body)
	}
	body.WriteString("]}")
	ctx, cancel := context.WithTimeout(ctx, d.e.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.e.URL, &body)
	if err != nil {
		return 0, err
	}
	for k, vs := range d.e.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", EnvelopeMediaType)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return resp.StatusCode, fmt.Errorf("%s answered %s", d.e.URL, resp.Status)
	}
	return resp.StatusCode, nil
}

func actionsOf(batch []metadata.QueuedEvent) []string {
	out := make([]string, len(batch))
	for i, e := range batch {
		var ev struct {
			Action string `json:"action"`
		}
		_ = json.Unmarshal(e.Body, &ev)
		out[i] = ev.Action
	}
	return out
}

func httpStatusText(code int) string { return http.StatusText(code) }
