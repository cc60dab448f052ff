package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// parseStatCPU returns utime+stime from the contents of /proc/PID/stat. The
// command name (field 2) may contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat: no ')' in %q", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after the command name, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("proc stat: utime %q, stime %q: not numbers", f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// parseStatusMem returns VmRSS and VmHWM in bytes from the contents of
// /proc/PID/status (a missing line reads as 0: kernel threads have none).
func parseStatusMem(status []byte) (rss, hwm int64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("proc status: %s: unexpected value %q", key, val)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("proc status: %s: %w", key, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, sc.Err()
}

// procUsage is one reading of a process's CPU time and memory.
type procUsage struct {
	cpu      time.Duration
	rss, hwm int64
}

func readProc(pid int) (procUsage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procUsage{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procUsage{}, err
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return procUsage{}, err
	}
	rss, hwm, err := parseStatusMem(status)
	return procUsage{cpu: cpu, rss: rss, hwm: hwm}, err
}

// sampler watches the server process: CPU time at phase boundaries, and the
// peak resident set sampled every interval. VmHWM alone is not trusted as the
// peak because it can be reset (echo 5 > /proc/PID/clear_refs), so the peak is
// the largest of every VmRSS sample and every VmHWM reading.
type sampler struct {
	pid      int
	mu       sync.Mutex
	peak     int64 // whole run
	phase    int64 // since the current phase began
	cpuStart time.Duration
	err      error
}

func newSampler(pid int) (*sampler, error) {
	u, err := readProc(pid)
	if err != nil {
		return nil, fmt.Errorf("--pid %d: %w", pid, err)
	}
	s := &sampler{pid: pid, cpuStart: u.cpu}
	s.observe(u)
	return s, nil
}

func (s *sampler) observe(u procUsage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := max(u.rss, u.hwm)
	s.peak = max(s.peak, m)
	s.phase = max(s.phase, u.rss)
}

// run samples until ctx ends.
func (s *sampler) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			u, err := readProc(s.pid)
			if err != nil {
				s.mu.Lock()
				if s.err == nil {
					s.err = fmt.Errorf("server process %d: %w", s.pid, err)
				}
				s.mu.Unlock()
				return
			}
			s.observe(u)
		}
	}
}

// phaseStart marks the beginning of a phase and returns the CPU time so far.
func (s *sampler) phaseStart() (time.Duration, error) {
	u, err := readProc(s.pid)
	if err != nil {
		return 0, fmt.Errorf("server process %d: %w", s.pid, err)
	}
	s.mu.Lock()
	s.phase = u.rss
	s.mu.Unlock()
	s.observe(u)
	return u.cpu, nil
}

// phaseEnd returns the server's usage since phaseStart returned cpu0.
func (s *sampler) phaseEnd(cpu0 time.Duration) (*ServerUsage, error) {
	u, err := readProc(s.pid)
	if err != nil {
		return nil, fmt.Errorf("server process %d: %w", s.pid, err)
	}
	s.observe(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	return &ServerUsage{CPUSeconds: (u.cpu - cpu0).Seconds(), PeakRSSBytes: s.phase}, s.err
}

// total returns the server's usage over the whole run.
func (s *sampler) total() (*ServerUsage, error) {
	u, err := readProc(s.pid)
	if err != nil {
		return nil, fmt.Errorf("server process %d: %w", s.pid, err)
	}
	s.observe(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	return &ServerUsage{CPUSeconds: (u.cpu - s.cpuStart).Seconds(), PeakRSSBytes: s.peak}, s.err
}
