package console

import (
	"testing"
	"time"
)

// FuzzSessionCookie: a cookie value is attacker input. Decoding never
// panics, and only what encodeSession signed with this key decodes.
func FuzzSessionCookie(f *testing.F) {
	h := &Handler{key: []byte("fuzz-key")}
	now := time.Unix(1_800_000_000, 0)
	good := h.encodeSession(session{ID: "0123456789abcdef", User: "alice", Exp: now.Add(time.Hour).Unix()})
	f.Add(h.encodeSession(session{ID: "x", Exp: now.Add(-time.Hour).Unix()})) // signed, expired
	for _, seed := range []string{good, "", ".", "e30.", "e30.AAAA", good + "x", "x" + good} {
		f.Add(seed)
	}
	want := session{ID: "0123456789abcdef", User: "alice", Exp: now.Add(time.Hour).Unix()}
	f.Fuzz(func(t *testing.T, v string) {
		s, ok := h.decodeSession(v, now)
		// The only session this key ever signed is want: whatever else
		// decodes was forged.
		if ok && s != want {
			t.Fatalf("%q decoded to %+v, which was never signed", v, s)
		}
	})
}

// FuzzNaturalOrder: tag names are user input and the order must be a
// strict weak order for sorting to be well defined.
func FuzzNaturalOrder(f *testing.F) {
	for _, s := range [][3]string{{"v1.9", "v1.10", "v1.10.1"}, {"a", "a0", "a00"}, {"01", "1", "001"}, {"", "0", "z"}, {"v9999999999999999999999", "v10000000000000000000000", "v1"}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		if naturalLess(a, a) {
			t.Fatalf("%q < itself", a)
		}
		if naturalLess(a, b) && naturalLess(b, a) {
			t.Fatalf("%q and %q are each less than the other", a, b)
		}
		if a != b && !naturalLess(a, b) && !naturalLess(b, a) {
			t.Fatalf("%q and %q are distinct but unordered", a, b)
		}
		if naturalLess(a, b) && naturalLess(b, c) && !naturalLess(a, c) {
			t.Fatalf("not transitive: %q < %q < %q", a, b, c)
		}
	})
}
