package imageset

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSignatureClient(t *testing.T) {
	store := map[string]string{
		"/release/sha256=" + strings.Repeat("a", 64) + "/signature-1": "first",
		"/release/sha256=" + strings.Repeat("a", 64) + "/signature-2": "second",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, strings.Repeat("c", 64)) {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		if strings.Contains(r.URL.Path, strings.Repeat("d", 64)) {
			return // 200 with nothing in it
		}
		s, ok := store[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(s))
	}))
	defer srv.Close()
	c := &SignatureClient{URL: srv.URL + "/release/", HTTP: srv.Client()}
	cases := []struct {
		name, digest string
		want         [][]byte
		err          string
	}{
		{"every signature until 404", digestOf('a'), [][]byte{[]byte("first"), []byte("second")}, ""},
		{"none is not an error", digestOf('b'), nil, ""},
		{"store error", digestOf('c'), nil, "500 Internal Server Error"},
		{"empty answer", digestOf('d'), nil, "a signature of 0 bytes"},
		{"bad digest", "sha256:abc", nil, "release signature digest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.ReleaseSignatures(context.Background(), tc.digest)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != tc.digest {
				t.Errorf("digest %s", got.Digest)
			}
			if diff := cmp.Diff(tc.want, got.Signatures); diff != "" {
				t.Errorf("signatures (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("at most Max", func(t *testing.T) {
		got, err := (&SignatureClient{URL: srv.URL + "/release", HTTP: srv.Client(), Max: 1}).ReleaseSignatures(context.Background(), digestOf('a'))
		if err != nil || len(got.Signatures) != 1 {
			t.Errorf("got %d signatures, %v; want 1", len(got.Signatures), err)
		}
	})
	t.Run("into the ConfigMap", func(t *testing.T) {
		sig, err := c.ReleaseSignatures(context.Background(), digestOf('a'))
		if err != nil {
			t.Fatal(err)
		}
		y, _, err := SignatureConfigMap([]ReleaseSignature{sig})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"sha256-" + strings.Repeat("a", 64) + "-1: Zmlyc3Q=", "sha256-" + strings.Repeat("a", 64) + "-2: c2Vjb25k"} {
			if !strings.Contains(string(y), k) {
				t.Errorf("ConfigMap lacks %q:\n%s", k, y)
			}
		}
	})
}
