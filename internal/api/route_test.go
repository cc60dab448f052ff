package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/oci"
)

func TestParseRoute(t *testing.T) {
	tests := []struct {
		method, path string
		want         Route
		ok           bool
		errCode      oci.Code
	}{
		{"GET", "/v2/", Route{Kind: KindBase}, true, ""},
		{"GET", "/v2/_catalog", Route{Kind: KindCatalog, Action: ActionCatalog}, true, ""},
		{"GET", "/v2/ocp4/openshift4/release/manifests/4.16.0-x86_64", Route{KindManifest, "ocp4/openshift4/release", "4.16.0-x86_64", ActionPull}, true, ""},
		{"PUT", "/v2/a/manifests/latest", Route{KindManifest, "a", "latest", ActionPush}, true, ""},
		{"DELETE", "/v2/a/manifests/latest", Route{KindManifest, "a", "latest", ActionDelete}, true, ""},
		{"GET", "/v2/a/b/tags/list", Route{KindTags, "a/b", "", ActionPull}, true, ""},
		{"POST", "/v2/a/blobs/uploads/", Route{KindUploadStart, "a", "", ActionPush}, true, ""},
		{"PATCH", "/v2/a/blobs/uploads/xyz", Route{KindUpload, "a", "xyz", ActionPush}, true, ""},
		{"DELETE", "/v2/a/blobs/uploads/xyz", Route{KindUpload, "a", "xyz", ActionPush}, true, ""},
		{"GET", "/v2/a/blobs/sha256:abc", Route{KindBlob, "a", "sha256:abc", ActionPull}, true, ""},
		// A repository may have components named like route keywords.
		{"GET", "/v2/blobs/manifests/manifests/v1", Route{KindManifest, "blobs/manifests", "v1", ActionPull}, true, ""},
		{"GET", "/v2/tags/list/tags/list", Route{KindTags, "tags/list", "", ActionPull}, true, ""},
		{"GET", "/v2/a/referrers/sha256:abc", Route{KindReferrers, "a", "sha256:abc", ActionPull}, true, ""},
		{"GET", "/v2/A/manifests/x", Route{}, true, oci.ErrNameInvalid},
		{"GET", "/v2/../../etc/manifests/x", Route{}, true, oci.ErrNameInvalid},
		{"GET", "/v2/a//b/manifests/x", Route{}, true, oci.ErrNameInvalid},
		{"GET", "/v2/a/nothing", Route{}, false, ""},
		{"GET", "/etc/passwd", Route{}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			got, ok, err := ParseRoute(tc.method, tc.path)
			if tc.errCode != "" {
				e, isOCI := oci.AsError(err)
				if !isOCI || e.Code != tc.errCode {
					t.Fatalf("err = %v, want %s", err, tc.errCode)
				}
				return
			}
			if err != nil || ok != tc.ok || got != tc.want {
				t.Fatalf("ParseRoute = %+v, %v, %v; want %+v, %v", got, ok, err, tc.want, tc.ok)
			}
		})
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, p := range []string{"/v2/", "/v2/a/b/manifests/latest", "/v2/a/blobs/uploads/", "/v2/x/blobs/uploads/id", "/v2/_catalog", "/v2/../x/tags/list", "/v2/a/referrers/sha256:0"} {
		f.Add(http.MethodGet, p)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		rt, ok, err := ParseRoute(method, path)
		if err != nil || !ok || rt.Repo == "" {
			return
		}
		if oci.ValidateName(rt.Repo) != nil {
			t.Fatalf("route %+v carries an invalid name", rt)
		}
		if strings.Contains(rt.Ref, "/") {
			t.Fatalf("reference %q contains a slash", rt.Ref)
		}
	})
}
