package bench

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/internal/testpeer"
)

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		var d []time.Duration
		for _, x := range xs {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // 100..1, unsorted
	}
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"p50 odd", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"p50 even takes the lower middle", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of two is the max", ms(1, 2), 99, 2 * time.Millisecond},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 1..100", slicesClone(hundred), 99, 99 * time.Millisecond},
		{"p100 is the max", slicesClone(hundred), 100, 100 * time.Millisecond},
		{"tiny q is the min", slicesClone(hundred), 0.001, 1 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.samples, tc.q); got != tc.want {
				t.Errorf("Percentile(%v, %g) = %v, want %v", tc.samples, tc.q, got, tc.want)
			}
		})
	}
}

func slicesClone(d []time.Duration) []time.Duration { return append([]time.Duration(nil), d...) }

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 2}, 2.5}} {
		in := append([]float64(nil), tc.xs...)
		if got := Median(tc.xs); got != tc.want {
			t.Errorf("Median(%v) = %g, want %g", tc.xs, got, tc.want)
		}
		if !equalFloats(in, tc.xs) {
			t.Errorf("Median modified its input: %v → %v", in, tc.xs)
		}
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// readIn reads all of r in reads of the given sizes, cycling.
func readIn(t *testing.T, r io.Reader, sizes ...int) []byte {
	t.Helper()
	var out []byte
	for i := 0; ; i++ {
		buf := make([]byte, sizes[i%len(sizes)])
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestContentIsDeterministic(t *testing.T) {
	const size = 3<<20 + 12345
	want := readIn(t, NewContent(7, "x", size), size+1)
	if len(want) != size {
		t.Fatalf("read %d bytes, want %d", len(want), size)
	}
	for _, tc := range []struct {
		name string
		read func() []byte
	}{
		{"odd read sizes", func() []byte { return readIn(t, NewContent(7, "x", size), 1, 17, 4096, 1<<20+3) }},
		{"larger than the generator block", func() []byte { return readIn(t, NewContent(7, "x", size), 2<<20+1) }},
		{"WriteTo", func() []byte {
			var b bytes.Buffer
			n, err := NewContent(7, "x", size).WriteTo(&b)
			if err != nil || n != size {
				t.Fatalf("WriteTo = %d, %v", n, err)
			}
			return b.Bytes()
		}},
		{"io.LimitReader slices, as chunked pushes read it", func() []byte {
			c := NewContent(7, "x", size)
			var b bytes.Buffer
			for b.Len() < size {
				if _, err := io.Copy(&b, io.LimitReader(c, 1<<20)); err != nil {
					t.Fatal(err)
				}
			}
			return b.Bytes()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.read(); !bytes.Equal(got, want) {
				t.Errorf("bytes differ from a single read (len %d vs %d)", len(got), len(want))
			}
		})
	}
	if got := ContentDigest(7, "x", size); got != digest.FromBytes(want) {
		t.Errorf("ContentDigest = %s, want %s", got, digest.FromBytes(want))
	}
	prefix := readIn(t, NewContent(7, "x", 1000), 1000)
	if !bytes.Equal(prefix, want[:1000]) {
		t.Error("a shorter stream is not a prefix of the longer one")
	}
	for _, other := range []*Content{NewContent(8, "x", 4096), NewContent(7, "y", 4096)} {
		if bytes.Equal(readIn(t, other, 4096), want[:4096]) {
			t.Error("a different seed or label gave the same bytes")
		}
	}
}

func TestContentIsIncompressible(t *testing.T) {
	data := readIn(t, NewContent(1, "z", 1<<20), 1<<20)
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	w.Write(data)
	w.Close()
	if b.Len() < len(data) {
		t.Errorf("1 MiB of content deflates to %d bytes: it must be incompressible", b.Len())
	}
}

func TestParseStatCPU(t *testing.T) {
	// Fields after the command: state ppid pgrp session tty tpgid flags
	// minflt cminflt majflt cmajflt utime stime cutime ...
	tail := " S 1 2 3 0 -1 4194560 100 0 0 0 250 130 7 9 20 0 12 0 4242 123456 789"
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{"plain", "4242 (registry)" + tail, 3800 * time.Millisecond, false},
		{"command with spaces and parens", "4242 (my (odd) server)" + tail, 3800 * time.Millisecond, false},
		{"no parens", "4242 registry S 1 2", 0, true},
		{"truncated", "4242 (registry) S 1 2 3", 0, true},
		{"not numbers", "4242 (r) S 1 2 3 0 -1 4194560 100 0 0 0 x y 7", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseStatCPU = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseStatusMem(t *testing.T) {
	status := "Name:\tregistry\nVmPeak:\t 1300000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t12\n"
	rss, hwm, err := parseStatusMem([]byte(status))
	if err != nil || rss != 40<<20 || hwm != 50<<20 {
		t.Errorf("parseStatusMem = %d, %d, %v; want %d, %d", rss, hwm, err, 40<<20, 50<<20)
	}
	if rss, hwm, err := parseStatusMem([]byte("Name:\tkthreadd\nThreads:\t1\n")); err != nil || rss != 0 || hwm != 0 {
		t.Errorf("kernel thread: %d, %d, %v; want zeros", rss, hwm, err)
	}
	if _, _, err := parseStatusMem([]byte("VmRSS:\t12 MB\n")); err == nil {
		t.Error("unexpected unit: want an error")
	}
}

func TestSamplerOnThisProcess(t *testing.T) {
	s, err := newSampler(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	cpu0, err := s.phaseStart()
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(150 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ { // burn some CPU
		_ = digest.FromBytes([]byte{byte(x)})
	}
	u, err := s.phaseEnd(cpu0)
	if err != nil || u.CPUSeconds <= 0 || u.PeakRSSBytes <= 0 {
		t.Errorf("phaseEnd = %+v, %v; want CPU and RSS above zero", u, err)
	}
	if _, err := newSampler(1 << 30); err == nil {
		t.Error("a process that does not exist: want an error")
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:5000", "http://127.0.0.1:5000"},
		{"http://localhost:5000/", "http://localhost:5000"},
		{"https://registry.example", "https://registry.example"},
		{"ftp://x", ""}, {"http://x/v2/", ""}, {"http://", ""},
	} {
		u, err := ParseTarget(tc.in)
		got := ""
		if err == nil {
			got = u.String()
		}
		if got != tc.want {
			t.Errorf("ParseTarget(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestConfigValidateReportsEverything(t *testing.T) {
	cfg := Config{Target: "ftp://x", BlobSize: -1, ChunkSize: -1, Images: -1, Workers: -1, ManifestDuration: -1, CeilingDir: "/nonexistent/dir"}.Defaults()
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"scheme", "blob size", "chunk size", "images", "workers", "duration", "ceiling dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestWriteComparisonMedians(t *testing.T) {
	rep := func(push float64) *Report {
		return &Report{Ceilings: Ceilings{SHA256MiBs: 1000}, BlobPushMonolithic: BlobPhase{MiBs: push}, Server: &ServerUsage{PeakRSSBytes: 64 << 20}}
	}
	var b bytes.Buffer
	err := WriteComparison(&b, []Group{
		{Label: "berth", Reports: []*Report{rep(300), rep(100), rep(200)}},
		{Label: "distribution", Reports: []*Report{rep(50), rep(100)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var line, sha string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "blob push monolithic") {
			line = l
		}
		if strings.HasPrefix(l, "ceiling sha256") {
			sha = l
		}
	}
	if f := strings.Fields(sha); len(f) != 7 || f[5] != "1000.0" || f[6] != "1000.0" {
		t.Errorf("ceiling row = %q; want both medians and no ratio (a machine limit, not a registry's)", sha)
	}
	if f := strings.Fields(line); len(f) != 7 || f[4] != "200.0" || f[5] != "75.0" || f[6] != "2.67×" {
		t.Errorf("blob push row = %q; want medians 200.0 and 75.0, ratio 2.67×\n%s", line, b.String())
	}
	if !strings.Contains(b.String(), "server peak rss") {
		t.Errorf("no server rows:\n%s", b.String())
	}
}

// TestBenchAgainstDistribution runs a tiny workload against the CNCF
// Distribution reference registry.
func TestBenchAgainstDistribution(t *testing.T) {
	addr := testpeer.StartDistribution(t)
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{
		Target:           addr,
		BlobSize:         4 << 20,
		ChunkSize:        1<<20 + 7, // a short last chunk
		Images:           3,
		Workers:          2,
		ManifestWorkers:  4,
		ManifestDuration: time.Second,
		CeilingDir:       t.TempDir(),
		PID:              os.Getpid(), // exercises the sampler; Distribution's PID is not exposed
		Progress:         &progress,
	})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, progress.String())
	}
	checkReport(t, rep)
	var table bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
}

// checkReport asserts every figure of a successful run is there.
func checkReport(t *testing.T, rep *Report) {
	t.Helper()
	for _, m := range rep.Metrics() {
		if m.Value <= 0 {
			t.Errorf("%s = %g %s, want more than 0", m.Name, m.Value, m.Unit)
		}
	}
	for name, p := range map[string]BlobPhase{"monolithic": rep.BlobPushMonolithic, "chunked": rep.BlobPushChunked, "pull": rep.BlobPull} {
		if !p.DigestOK || p.Bytes != rep.Workload.BlobSizeBytes || p.Digest == "" {
			t.Errorf("blob %s: %+v", name, p)
		}
	}
	if rep.BlobPushMonolithic.Digest == rep.BlobPushChunked.Digest {
		t.Error("monolithic and chunked pushes used the same blob")
	}
	for name, p := range map[string]RatePhase{"images push": rep.ImagesPush, "images pull": rep.ImagesPull, "manifest get": rep.ManifestGet} {
		if !p.DigestOK || p.Count == 0 {
			t.Errorf("%s: %+v", name, p)
		}
	}
	if rep.ImagesPush.Count != int64(rep.Workload.Images) || rep.ImagesPull.Count != int64(rep.Workload.Images) {
		t.Errorf("images pushed %d, pulled %d; want %d", rep.ImagesPush.Count, rep.ImagesPull.Count, rep.Workload.Images)
	}
}

func TestBenchRefusesAnErrorStatus(t *testing.T) {
	addr := testpeer.StartDistribution(t)
	_, err := Run(context.Background(), Config{Target: addr, Repo: "Not/Valid", BlobSize: 1 << 20, Images: 1, ManifestDuration: time.Second, CeilingDir: t.TempDir()})
	// Distribution answers an upper-case name with a bare 404; the error must
	// name the phase, the request and the registry's answer.
	if err == nil || errors.Is(err, ErrDigestMismatch) ||
		!strings.Contains(err.Error(), "blob push monolithic: start upload: POST /v2/Not/Valid/blob/blobs/uploads/: 404") {
		t.Errorf("Run with an invalid repository name = %v; want the phase, request and status", err)
	}
}
