package units

import (
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"512", 512}, {"0", 0}, {"0B", 0}, {"512B", 512}, {"512 b", 512},
		{"4k", 4 << 10}, {"4K", 4 << 10}, {"4KiB", 4 << 10}, {"4kib", 4 << 10}, {"4KB", 4000}, {"4kB", 4000},
		{"16MiB", 16 << 20}, {"4M", 4 << 20}, {"700MiB", 700 << 20}, {"1MB", 1e6},
		{"1GiB", 1 << 30}, {"4g", 4 << 30}, {"1GB", 1e9}, {"4.7GB", 4_700_000_000},
		{"1.5GiB", 3 << 29}, {"1TiB", 1 << 40}, {"2T", 2 << 40}, {"1TB", 1e12},
		{" 2 KiB ", 2048}, {"0.5k", 512}, {"1.0009k", 1024}, {".5KiB", 512}, {"3.", 3},
	} {
		got, err := ParseBytes(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", " ", "MiB", "-1", "+1", "1e3", "4 parsecs", "1.2.3", ".", "1/2", "0x10", "1 KiB B", "9223372036854775808", "8EiB", "8388608TiB"} {
		if got, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, accepted", in, got)
		}
	}
	if _, err := ParseBytes("lots"); err == nil || !strings.Contains(err.Error(), `"lots"`) || !strings.Contains(err.Error(), "700MiB") {
		t.Errorf("error for lots: %v", err)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 16 << 20: "16 MiB",
		(1 << 20) + 1: "1.0 MiB", 3 << 29: "1.50 GiB", 1 << 40: "1 TiB", 5 << 40: "5 TiB", -2048: "-2 KiB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// FuzzParseBytes: no input panics; whatever is accepted is a non-negative
// count, and an exact FormatBytes of it reads back the same.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"512", "4k", "4KiB", "4KB", "4.7GB", "1.5GiB", " 2 kib ", "1TiB", "", "MiB", "-1", "1e3", "9223372036854775807", "8388607.999999TiB", "0.0000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseBytes(%q) = %d", s, n)
		}
		out := FormatBytes(n)
		if strings.Contains(out, ".") {
			return // rounded for a person
		}
		back, err := ParseBytes(out)
		if err != nil || back != n {
			t.Fatalf("ParseBytes(%q) = %d, formatted %q, read back %d, %v", s, n, out, back, err)
		}
	})
}
