package mirror

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// RetryPolicy bounds the retries of one registry operation.
type RetryPolicy struct {
	// Attempts is the total number of tries, at least 1.
	Attempts int
	// Base is the first backoff delay; it doubles each attempt, with jitter.
	Base time.Duration
	// Max caps one delay, including a server's Retry-After.
	Max time.Duration
}

var defaultRetry = RetryPolicy{Attempts: 5, Base: 250 * time.Millisecond, Max: 30 * time.Second}

// retry runs op until it succeeds, fails with a permanent error, or the
// attempts run out. Retry-After from a 429/503 replaces the backoff delay.
func retry(ctx context.Context, p RetryPolicy, op func() error) error {
	if p.Attempts < 1 {
		p.Attempts = 1
	}
	delay := p.Base
	var err error
	for attempt := 1; ; attempt++ {
		err = op()
		if err == nil || attempt >= p.Attempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		wait := delay + time.Duration(rand.Int64N(int64(delay)/2+1))
		var he *HTTPError
		if errors.As(err, &he) && he.RetryAfter > 0 {
			wait = he.RetryAfter
		}
		if p.Max > 0 && wait > p.Max {
			wait = p.Max
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay *= 2
	}
}

// retryable: throttling, server errors and broken connections are
// transient; client errors (401, 404, digest mismatch) are not.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.StatusCode == http.StatusRequestTimeout || he.StatusCode == http.StatusTooManyRequests ||
			(he.StatusCode >= 500 && he.StatusCode != http.StatusNotImplemented)
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusRequestTimeout || te.StatusCode == http.StatusTooManyRequests ||
			te.StatusCode >= 500 || te.Temporary()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}
