package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/units"
)

// Report is the result of one run. Its JSON field names are a stable
// interface (scripts/bench-compare.sh and CI read them); doc.go lists them.
type Report struct {
	Target   string   `json:"target"`
	Seed     uint64   `json:"seed"`
	Started  string   `json:"started"` // RFC 3339
	Workload Workload `json:"workload"`
	Ceilings Ceilings `json:"ceilings"`

	BlobPushMonolithic BlobPhase `json:"blob_push_monolithic"`
	BlobPushChunked    BlobPhase `json:"blob_push_chunked"`
	BlobPull           BlobPhase `json:"blob_pull"`
	ImagesPush         RatePhase `json:"images_push"`
	ImagesPull         RatePhase `json:"images_pull"`
	ManifestGet        RatePhase `json:"manifest_get"`

	// Server is the server's usage over the whole run; absent without --pid.
	Server *ServerUsage `json:"server,omitempty"`
}

// Workload records the parameters the run used.
type Workload struct {
	BlobSizeBytes    int64   `json:"blob_size_bytes"`
	ChunkSizeBytes   int64   `json:"chunk_size_bytes"`
	Images           int     `json:"images"`
	LayersPerImage   int     `json:"layers_per_image"`
	LayerSizeBytes   int64   `json:"layer_size_bytes"`
	Workers          int     `json:"workers"`
	ManifestWorkers  int     `json:"manifest_workers"`
	ManifestDuration float64 `json:"manifest_duration_s"`
}

// Ceilings are this machine's limits measured in the same run.
type Ceilings struct {
	SHA256MiBs       float64 `json:"sha256_mib_s"`
	DurableWriteMiBs float64 `json:"durable_write_mib_s"`
	LoopbackTCPMiBs  float64 `json:"loopback_tcp_mib_s"`
}

// BlobPhase is a large-blob transfer.
type BlobPhase struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MiBs    float64 `json:"mib_s"`
	// Digest is the blob's digest; DigestOK says the registry accepted it
	// (push) or the bytes pulled hashed to it (pull).
	Digest   string       `json:"digest"`
	DigestOK bool         `json:"digest_ok"`
	Server   *ServerUsage `json:"server,omitempty"`
}

// RatePhase is many small operations: images pushed or pulled, or manifest
// requests. Latencies are per operation (a whole image, or one request).
type RatePhase struct {
	Count    int64        `json:"count"`
	Seconds  float64      `json:"seconds"`
	PerSec   float64      `json:"per_s"`
	P50Ms    float64      `json:"p50_ms"`
	P99Ms    float64      `json:"p99_ms"`
	DigestOK bool         `json:"digest_ok"`
	Server   *ServerUsage `json:"server,omitempty"`
}

// ServerUsage is the server process's CPU time and peak resident set.
type ServerUsage struct {
	CPUSeconds   float64 `json:"cpu_s"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
}

// Metric is one named figure of a report, for tables and comparisons.
type Metric struct {
	Name  string
	Unit  string
	Value float64
	// Server marks server-usage figures (lower is better).
	Server bool
	// Ceiling marks this machine's limits: not the registry's figures, so a
	// comparison shows no ratio for them.
	Ceiling bool
}

// Metrics flattens r into the figures WriteTable and Compare print, in a
// fixed order.
func (r *Report) Metrics() []Metric {
	m := []Metric{
		{Name: "ceiling sha256 (1 core)", Unit: "MiB/s", Value: r.Ceilings.SHA256MiBs, Ceiling: true},
		{Name: "ceiling durable write", Unit: "MiB/s", Value: r.Ceilings.DurableWriteMiBs, Ceiling: true},
		{Name: "ceiling loopback tcp", Unit: "MiB/s", Value: r.Ceilings.LoopbackTCPMiBs, Ceiling: true},
		{Name: "blob push monolithic", Unit: "MiB/s", Value: r.BlobPushMonolithic.MiBs},
		{Name: "blob push chunked", Unit: "MiB/s", Value: r.BlobPushChunked.MiBs},
		{Name: "blob pull", Unit: "MiB/s", Value: r.BlobPull.MiBs},
		{Name: "images push", Unit: "img/s", Value: r.ImagesPush.PerSec},
		{Name: "images push p50", Unit: "ms", Value: r.ImagesPush.P50Ms},
		{Name: "images push p99", Unit: "ms", Value: r.ImagesPush.P99Ms},
		{Name: "images pull", Unit: "img/s", Value: r.ImagesPull.PerSec},
		{Name: "images pull p50", Unit: "ms", Value: r.ImagesPull.P50Ms},
		{Name: "images pull p99", Unit: "ms", Value: r.ImagesPull.P99Ms},
		{Name: "manifest get", Unit: "req/s", Value: r.ManifestGet.PerSec},
		{Name: "manifest get p50", Unit: "ms", Value: r.ManifestGet.P50Ms},
		{Name: "manifest get p99", Unit: "ms", Value: r.ManifestGet.P99Ms},
	}
	if r.Server != nil {
		m = append(m,
			Metric{Name: "server cpu", Unit: "s", Value: r.Server.CPUSeconds, Server: true},
			Metric{Name: "server peak rss", Unit: "MiB", Value: float64(r.Server.PeakRSSBytes) / (1 << 20), Server: true},
		)
	}
	return m
}

// WriteTable prints r as an aligned table.
func WriteTable(w io.Writer, r *Report) error {
	var b strings.Builder
	wl := r.Workload
	fmt.Fprintf(&b, "berth bench %s (seed %d, %s)\n", r.Target, r.Seed, r.Started)
	fmt.Fprintf(&b, "workload: blob %s (chunks %s); %d images × %d × %s layers, %d workers; manifest GET %d workers × %gs\n\n",
		units.FormatBytes(wl.BlobSizeBytes), units.FormatBytes(wl.ChunkSizeBytes), wl.Images, wl.LayersPerImage,
		units.FormatBytes(wl.LayerSizeBytes), wl.Workers, wl.ManifestWorkers, wl.ManifestDuration)

	type row struct {
		name, rate     string
		p50, p99       string
		srv            *ServerUsage
		digestOK, hasD bool
	}
	rate := func(v float64, unit string) string { return fmt.Sprintf("%.1f %s", v, unit) }
	lat := func(v float64) string { return fmt.Sprintf("%.1f ms", v) }
	rows := []row{
		{name: "ceiling sha256 (1 core)", rate: rate(r.Ceilings.SHA256MiBs, "MiB/s")},
		{name: "ceiling durable write", rate: rate(r.Ceilings.DurableWriteMiBs, "MiB/s")},
		{name: "ceiling loopback tcp", rate: rate(r.Ceilings.LoopbackTCPMiBs, "MiB/s")},
	}
	for _, p := range []struct {
		name string
		b    *BlobPhase
	}{{"blob push monolithic", &r.BlobPushMonolithic}, {"blob push chunked", &r.BlobPushChunked}, {"blob pull", &r.BlobPull}} {
		rows = append(rows, row{name: p.name, rate: rate(p.b.MiBs, "MiB/s"), srv: p.b.Server, digestOK: p.b.DigestOK, hasD: true})
	}
	for _, p := range []struct {
		name, unit string
		r          *RatePhase
	}{{"images push", "img/s", &r.ImagesPush}, {"images pull", "img/s", &r.ImagesPull}, {"manifest get", "req/s", &r.ManifestGet}} {
		rows = append(rows, row{name: p.name, rate: rate(p.r.PerSec, p.unit), p50: lat(p.r.P50Ms), p99: lat(p.r.P99Ms), srv: p.r.Server, digestOK: p.r.DigestOK, hasD: true})
	}
	if r.Server != nil {
		rows = append(rows, row{name: "server, whole run", srv: r.Server})
	}
	fmt.Fprintf(&b, "%-24s %16s %11s %11s %7s %12s %17s\n", "phase", "throughput", "p50", "p99", "digest", "server cpu", "server peak rss")
	for _, x := range rows {
		d, cpu, rss := "", "", ""
		if x.hasD {
			d = "ok"
			if !x.digestOK {
				d = "BAD"
			}
		}
		if x.srv != nil {
			cpu = fmt.Sprintf("%.2f s", x.srv.CPUSeconds)
			rss = fmt.Sprintf("%.1f MiB", float64(x.srv.PeakRSSBytes)/(1<<20))
		}
		line := fmt.Sprintf("%-24s %16s %11s %11s %7s %12s %17s", x.name, x.rate, x.p50, x.p99, d, cpu, rss)
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Group is the reports of one registry across rounds.
type Group struct {
	Label   string
	Reports []*Report
}

// WriteComparison prints, side by side, the median of every metric over each
// group's reports; with exactly two groups it adds the ratio first/second.
func WriteComparison(w io.Writer, groups []Group) error {
	if len(groups) == 0 {
		return fmt.Errorf("compare: no reports")
	}
	var names []string
	units := map[string]string{}
	ceiling := map[string]bool{}
	values := map[string]map[string][]float64{} // metric → label → values
	for _, g := range groups {
		for _, r := range g.Reports {
			for _, m := range r.Metrics() {
				if _, ok := values[m.Name]; !ok {
					names = append(names, m.Name)
					units[m.Name] = m.Unit
					ceiling[m.Name] = m.Ceiling
					values[m.Name] = map[string][]float64{}
				}
				values[m.Name][g.Label] = append(values[m.Name][g.Label], m.Value)
			}
		}
	}
	var b strings.Builder
	rounds := make([]string, len(groups))
	for i, g := range groups {
		rounds[i] = fmt.Sprintf("%s ×%d", g.Label, len(g.Reports))
	}
	fmt.Fprintf(&b, "median of rounds: %s\n", strings.Join(rounds, ", "))
	fmt.Fprintf(&b, "%-24s %-6s", "metric", "unit")
	for _, g := range groups {
		fmt.Fprintf(&b, " %14s", g.Label)
	}
	if len(groups) == 2 {
		fmt.Fprintf(&b, " %8s", "ratio")
	}
	b.WriteString("\n")
	for _, n := range names {
		fmt.Fprintf(&b, "%-24s %-6s", n, units[n])
		meds := make([]float64, len(groups))
		for i, g := range groups {
			vs := values[n][g.Label]
			if len(vs) == 0 {
				fmt.Fprintf(&b, " %14s", "-")
				continue
			}
			meds[i] = Median(vs)
			fmt.Fprintf(&b, " %14.1f", meds[i])
		}
		if len(groups) == 2 && meds[1] != 0 && !ceiling[n] {
			fmt.Fprintf(&b, " %7.2f×", meds[0]/meds[1])
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func newStarted(t time.Time) string { return t.UTC().Format(time.RFC3339) }
