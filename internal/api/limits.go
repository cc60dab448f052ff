package api

import (
	"context"
	"time"

	"github.com/berth-registry/berth/internal/oci"
)

// Limit bounds one class of requests (reads or writes), with the fields of
// the cluster's image registry operator: at most MaxRunning run at once, at
// most MaxInQueue wait for a slot, and none waits longer than MaxWait.
// A request beyond that is refused with 429 TOOMANYREQUESTS. Zero
// MaxRunning means no limit.
type Limit struct {
	MaxRunning int
	MaxInQueue int
	MaxWait    time.Duration
}

// limiter admits requests under a Limit.
type limiter struct {
	running chan struct{}
	queue   chan struct{}
	wait    time.Duration
}

func newLimiter(l Limit) *limiter {
	if l.MaxRunning <= 0 {
		return nil
	}
	return &limiter{running: make(chan struct{}, l.MaxRunning), queue: make(chan struct{}, l.MaxInQueue), wait: l.MaxWait}
}

// acquire returns a release function, or a TOOMANYREQUESTS error.
func (l *limiter) acquire(ctx context.Context) (func(), error) {
	if l == nil {
		return func() {}, nil
	}
	release := func() { <-l.running }
	select {
	case l.running <- struct{}{}:
		return release, nil
	default:
	}
	select {
	case l.queue <- struct{}{}:
	default:
		return nil, tooMany("the request queue is full")
	}
	defer func() { <-l.queue }()
	var timeout <-chan time.Time
	if l.wait > 0 {
		t := time.NewTimer(l.wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case l.running <- struct{}{}:
		return release, nil
	case <-timeout:
		return nil, tooMany("waited too long in the request queue")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func tooMany(why string) error {
	return oci.Errorf(oci.ErrTooManyRequests, "too many requests: %s; retry later", why)
}
