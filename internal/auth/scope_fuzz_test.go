package auth

import (
	"slices"
	"testing"
)

// FuzzParseScope feeds arbitrary scope strings (they come from token
// requests): parsing never panics, and what parses renders back to a scope
// that parses to the same thing.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"repository:team-a/app:pull,push", "registry:catalog:*", "repository(plugin):x:pull", "repository:localhost:5000/x:pull", "::", "a:b:c:d", "repository:x:,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseScope(s)
		if err != nil {
			return
		}
		b, err := ParseScope(a.String())
		if err != nil {
			t.Fatalf("%q parsed to %+v, whose rendering %q does not parse: %v", s, a, a.String(), err)
		}
		if a.Type != b.Type || a.Name != b.Name || !slices.Equal(a.Actions, b.Actions) {
			t.Fatalf("%q: %+v then %+v", s, a, b)
		}
	})
}
