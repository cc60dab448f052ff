package conformance

import (
	"net/http"
	"strings"
	"testing"
)

func (s *suite) names(t *testing.T) {
	valid := []string{
		"ocp4/openshift4/release",
		"a.b_c__d---e/f0/g-h/i.j/k_l/m",
		"x",
	}
	for _, name := range valid {
		t.Run("Valid/"+name, func(t *testing.T) {
			repo := s.repo(name)
			im := newImage(t, false, 20)
			s.pushImage(t, repo, "latest", im)
			s.wantManifest(t, repo, "latest", im.Manifest)
			s.wantBlob(t, repo, im.Layers[0])
			tl, _ := s.getTags(t, s.u("/v2/"+repo+"/tags/list"))
			if tl.Name != repo {
				t.Errorf("tags/list name %q, want %q", tl.Name, repo)
			}
		})
	}

	validTags := []string{strings.Repeat("t", 128), "_lead", "A.b-C_d", "9"}
	t.Run("ValidTags", func(t *testing.T) {
		repo := s.repo("tagnames")
		im := newImage(t, false, 10)
		for _, b := range im.blobs() {
			s.pushBlob(t, repo, b)
		}
		for _, tag := range validTags {
			s.pushManifest(t, repo, tag, im.Manifest)
			s.wantManifest(t, repo, tag, im.Manifest)
		}
	})

	invalid := []struct{ name, repo string }{
		{"Uppercase", s.ns + "/Upper"},
		{"LeadingSeparator", s.ns + "/-lead"},
		{"TrailingSeparator", s.ns + "/trail_"},
		{"EmptyComponent", s.ns + "//empty"},
		{"DoubleDot", s.ns + "/a..b"},
		{"TripleUnderscore", s.ns + "/a___b"},
		{"BadCharacter", s.ns + "/a+b"},
		{"TooLong", s.ns + "/" + strings.Repeat("a", 256)},
	}
	for _, tc := range invalid {
		t.Run("Invalid/"+tc.name, func(t *testing.T) {
			im := newImage(t, false, 10)
			b := im.Layers[0]
			s.refusedName(t, s.do(t, http.MethodPost, s.uploadsURL(tc.repo, "digest", b.Digest), b.Data,
				"Content-Type", "application/octet-stream"), "NAME_INVALID")
			s.refusedName(t, s.do(t, http.MethodPost, s.uploadsURL(tc.repo), nil), "NAME_INVALID")
			s.refusedName(t, s.putManifest(t, tc.repo, "latest", im.Manifest), "NAME_INVALID")
			s.refusedName(t, s.do(t, http.MethodGet, s.manifestURL(tc.repo, "latest"), nil), "NAME_INVALID")
			s.refusedName(t, s.do(t, http.MethodGet, s.blobURL(tc.repo, b.Digest), nil), "NAME_INVALID")
			s.refusedName(t, s.do(t, http.MethodGet, s.u("/v2/"+tc.repo+"/tags/list"), nil), "NAME_INVALID")
		})
	}

	invalidTags := []struct{ name, tag string }{
		{"TooLong", strings.Repeat("t", 129)},
		{"LeadingDot", ".tag"},
		{"LeadingDash", "-tag"},
		{"BadCharacter", "tag+1"},
	}
	for _, tc := range invalidTags {
		t.Run("InvalidTag/"+tc.name, func(t *testing.T) {
			repo := s.repo("tagnames")
			im := newImage(t, false, 10)
			for _, b := range im.blobs() {
				s.pushBlob(t, repo, b)
			}
			s.refusedName(t, s.putManifest(t, repo, tc.tag, im.Manifest), "TAG_INVALID")
			s.wantNoManifest(t, repo, im.Manifest.Digest)
		})
	}

	// A name must never reach outside its place in the store, whatever the
	// encoding of "..": the request is refused or redirected, and nothing
	// appears under the name it would resolve to.
	escapes := []string{s.ns + "/../escape", s.ns + "/%2e%2e/escape", s.ns + "/..%2fescape"}
	for i, path := range escapes {
		t.Run("PathEscape/"+[]string{"Dots", "Encoded", "EncodedSlash"}[i], func(t *testing.T) {
			noFollow := *s.hc
			noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			im := newImage(t, false, 10)
			b := im.Layers[0]
			for _, req := range []struct{ method, url string }{
				{http.MethodPost, s.base.String() + "/v2/" + path + "/blobs/uploads/?digest=" + b.Digest},
				{http.MethodPut, s.base.String() + "/v2/" + path + "/manifests/latest"},
			} {
				hr, err := http.NewRequest(req.method, req.url, strings.NewReader(string(b.Data)))
				if err != nil {
					t.Fatal(err)
				}
				hr.Header.Set("Content-Type", "application/octet-stream")
				if req.method == http.MethodPut {
					hr, _ = http.NewRequest(req.method, req.url, strings.NewReader(string(im.Manifest.Data)))
					hr.Header.Set("Content-Type", mtOCIManifest)
				}
				resp, err := noFollow.Do(hr)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode < 300 {
					t.Errorf("%s %s → %d, want it refused", req.method, req.url, resp.StatusCode)
				}
			}
			parent := s.ns[:strings.LastIndex(s.ns, "/")]
			for _, repo := range []string{parent + "/escape", "escape", s.ns + "/escape"} {
				wantStatus(t, s.do(t, http.MethodHead, s.blobURL(repo, b.Digest), nil), http.StatusNotFound)
			}
		})
	}
}

// refusedName checks the answer to a request with a malformed repository
// name or tag: 400 with code, or, for a target whose router cannot tell,
// any 4xx.
func (s *suite) refusedName(t *testing.T, r response, code string) {
	t.Helper()
	if s.cfg.Features.NoNameErrors {
		if r.Status < 400 {
			t.Errorf("%v: want a refusal", r)
		}
		return
	}
	wantError(t, r, http.StatusBadRequest, code)
}
