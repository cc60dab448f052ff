package console

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNaturalLess(t *testing.T) {
	got := []string{"v1.10", "v1.9", "v1.2", "latest", "v2.0", "v1.10.1", "v01.9", "10", "9", "v1.9-rc1", "a"}
	slices.SortFunc(got, func(a, b string) int {
		if naturalLess(a, b) {
			return -1
		}
		if naturalLess(b, a) {
			return 1
		}
		return 0
	})
	want := []string{"9", "10", "a", "latest", "v1.2", "v01.9", "v1.9", "v1.9-rc1", "v1.10", "v1.10.1", "v2.0"}
	if !slices.Equal(got, want) {
		t.Fatalf("natural order:\n got %v\nwant %v", got, want)
	}
}

func TestSignatureTag(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for _, c := range []struct {
		tag, kind string
		ok        bool
	}{
		{"sha256-" + hex + ".sig", "sig", true},
		{"sha256-" + hex + ".att", "att", true},
		{"sha256-" + hex + ".sbom", "sbom", true},
		{"sha256-" + hex + ".txt", "", false},
		{"sha256-" + hex[:10] + ".sig", "", false},
		{"v1.0", "", false},
	} {
		d, kind, ok := signatureTag(c.tag)
		if ok != c.ok || kind != c.kind || (ok && string(d) != "sha256:"+hex) {
			t.Errorf("signatureTag(%q) = %q, %q, %v; want kind %q, %v", c.tag, d, kind, ok, c.kind, c.ok)
		}
	}
}

func TestSessionCookie(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	h := &Handler{key: []byte("k1")}
	s := session{ID: "abc", User: "alice", Exp: now.Add(time.Hour).Unix()}
	v := h.encodeSession(s)
	if got, ok := h.decodeSession(v, now); !ok || got != s {
		t.Fatalf("round trip: %+v %v", got, ok)
	}
	if _, ok := h.decodeSession(v, now.Add(2*time.Hour)); ok {
		t.Error("an expired session was accepted")
	}
	other := &Handler{key: []byte("k2")}
	if _, ok := other.decodeSession(v, now); ok {
		t.Error("a session signed with another key was accepted")
	}
	// Forge: another user under the same signature.
	forged := other.encodeSession(session{ID: "abc", User: "admin", Exp: s.Exp})
	payload, _, _ := strings.Cut(forged, ".")
	_, sig, _ := strings.Cut(v, ".")
	if _, ok := h.decodeSession(payload+"."+sig, now); ok {
		t.Error("a payload with another's signature was accepted")
	}
	if h.csrfToken(s) == h.csrfToken(session{ID: "abd"}) {
		t.Error("CSRF tokens of two sessions are equal")
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{"/r/a": "/r/a", "//evil.example": "/", "https://evil.example/": "/", "/\\evil": "/", "": "/"} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}
