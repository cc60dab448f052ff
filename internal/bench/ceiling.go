package bench

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// ceilingBuf returns a random buffer the ceilings reuse, so the generator's
// cost is not part of what they measure.
func ceilingBuf(seed uint64) []byte {
	b := make([]byte, 4<<20)
	_, _ = NewContent(seed, "ceiling", int64(len(b))).Read(b)
	return b
}

// measureSHA256 hashes total bytes on one goroutine (one core).
func measureSHA256(total int64, buf []byte) float64 {
	h := sha256.New()
	start := time.Now()
	for n := int64(0); n < total; {
		k := min(int64(len(buf)), total-n)
		h.Write(buf[:k])
		n += k
	}
	h.Sum(nil)
	return mibPerSec(total, time.Since(start))
}

// measureDurableWrite writes total bytes to a new file in dir and fsyncs it:
// the best a registry that makes a pushed blob durable before acknowledging
// it can do on this disk.
func measureDurableWrite(dir string, total int64, buf []byte) (float64, error) {
	f, err := os.CreateTemp(dir, "berth-bench-ceiling-*")
	if err != nil {
		return 0, fmt.Errorf("durable-write ceiling: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	start := time.Now()
	for n := int64(0); n < total; {
		k := min(int64(len(buf)), total-n)
		if _, err := f.Write(buf[:k]); err != nil {
			return 0, fmt.Errorf("durable-write ceiling: %w", err)
		}
		n += k
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("durable-write ceiling: %w", err)
	}
	return mibPerSec(total, time.Since(start)), nil
}

// measureLoopback sends total bytes over one TCP connection on 127.0.0.1 to
// a goroutine that discards them, timing until the receiver has them all.
func measureLoopback(ctx context.Context, total int64, buf []byte) (float64, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("loopback ceiling: %w", err)
	}
	defer l.Close()
	got := make(chan error, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			got <- err
			return
		}
		defer conn.Close()
		rb := make([]byte, 256<<10)
		n, err := io.CopyBuffer(io.Discard, conn, rb)
		if err == nil && n != total {
			err = fmt.Errorf("received %d of %d bytes", n, total)
		}
		got <- err
	}()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		return 0, fmt.Errorf("loopback ceiling: %w", err)
	}
	start := time.Now()
	for n := int64(0); n < total; {
		k := min(int64(len(buf)), total-n)
		if _, err := conn.Write(buf[:k]); err != nil {
			conn.Close()
			return 0, fmt.Errorf("loopback ceiling: %w", err)
		}
		n += k
	}
	conn.(*net.TCPConn).CloseWrite()
	err = <-got
	elapsed := time.Since(start)
	conn.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("loopback ceiling: %w", err)
	}
	return mibPerSec(total, elapsed), nil
}

// DurableWriteCeiling is the durable-write ceiling (MiB/s) of the disk
// holding dir, for benchmarks elsewhere that compare against it.
func DurableWriteCeiling(dir string, total int64) (float64, error) {
	return measureDurableWrite(dir, total, ceilingBuf(1))
}
