package units

import (
	"fmt"
	"math/big"
	"strings"
)

var multipliers = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

// ParseBytes reads a byte count in the package's grammar. The error quotes
// the input and says what would be valid.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	dots := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		if t[i] == '.' {
			dots++
		}
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := multipliers[unit]
	if !ok || num == "" || num == "." || dots > 1 || len(num) > 40 {
		return 0, syntaxError(s)
	}
	// Exact arithmetic: 4.7GB is 4700000000, not what a float makes of it.
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, syntaxError(s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("size %q is too large", truncate(s))
	}
	return n.Int64(), nil
}

func syntaxError(s string) error {
	return fmt.Errorf("size %q: want a number of bytes with an optional unit: 512, 4k or 4KiB (binary), 4KB (decimal), 700MiB, 4.7GB", truncate(s))
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

var binary = []struct {
	name string
	size int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// FormatBytes prints n for a person, in the largest binary unit it
// reaches: exactly when the unit divides it ("16 MiB", which ParseBytes
// reads back), else rounded ("1.5 KiB", "3.14 GiB").
func FormatBytes(n int64) string {
	for _, u := range binary {
		if n < u.size && n > -u.size {
			continue
		}
		if n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
		prec := 1
		if u.size >= 1<<30 {
			prec = 2
		}
		return fmt.Sprintf("%.*f %s", prec, float64(n)/float64(u.size), u.name)
	}
	return fmt.Sprintf("%d B", n)
}
