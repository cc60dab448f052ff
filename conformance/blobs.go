package conformance

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
)

func (s *suite) apiBase(t *testing.T) {
	t.Run("APIVersion", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.u("/v2/"), nil)
		mustStatus(t, r, http.StatusOK)
		wantHeader(t, r, "Docker-Distribution-API-Version", "registry/2.0")
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		repo := s.repo("methods")
		for _, tc := range []struct{ method, path string }{
			{http.MethodPatch, "/v2/" + repo + "/manifests/latest"},
			{http.MethodPost, "/v2/" + repo + "/tags/list"},
			{http.MethodPut, "/v2/" + repo + "/blobs/" + randomBlob(1).Digest},
		} {
			r := s.do(t, tc.method, s.u(tc.path), nil)
			if s.cfg.Features.NoMethodNotAllowedError {
				wantStatus(t, r, http.StatusMethodNotAllowed)
				continue
			}
			wantError(t, r, http.StatusMethodNotAllowed, "UNSUPPORTED")
		}
	})
}

func (s *suite) blobPush(t *testing.T) {
	repo := s.repo("blobs")

	t.Run("PostThenPut", func(t *testing.T) {
		b := randomBlob(3000)
		loc := s.startUpload(t, repo)
		r := s.do(t, http.MethodPut, s.resolve(t, loc, "digest", b.Digest), b.Data,
			"Content-Type", "application/octet-stream")
		mustStatus(t, r, http.StatusCreated)
		if r.Header.Get("Location") == "" {
			t.Fatalf("%v: no Location", r)
		}
		got := s.do(t, http.MethodGet, s.resolve(t, r.Header.Get("Location")), nil)
		wantStatus(t, got, http.StatusOK)
		wantBody(t, got, b.Data)
		s.wantBlob(t, repo, b)
	})

	t.Run("SinglePost", func(t *testing.T) {
		b := randomBlob(2048)
		r := s.do(t, http.MethodPost, s.uploadsURL(repo, "digest", b.Digest), b.Data,
			"Content-Type", "application/octet-stream")
		if s.cfg.Features.NoSinglePost {
			// The spec's fallback: a session, the body ignored.
			mustStatus(t, r, http.StatusAccepted)
			s.wantNoBlob(t, repo, b.Digest)
			r = s.do(t, http.MethodPut, s.resolve(t, r.Header.Get("Location"), "digest", b.Digest), b.Data,
				"Content-Type", "application/octet-stream")
		}
		mustStatus(t, r, http.StatusCreated)
		if r.Header.Get("Location") == "" {
			t.Errorf("%v: no Location", r)
		}
		s.wantBlob(t, repo, b)
	})

	t.Run("EmptyBlob", func(t *testing.T) {
		b := newBlob([]byte{}, mtOCILayer)
		s.pushBlob(t, repo, b)
		s.wantBlob(t, repo, b)
	})

	t.Run("PushTwiceIsIdempotent", func(t *testing.T) {
		b := randomBlob(100)
		s.pushBlob(t, repo, b)
		r := s.monolithic(t, repo, b.Digest, b.Data)
		wantStatus(t, r, http.StatusCreated)
		s.wantBlob(t, repo, b)
	})

	t.Run("Chunked", func(t *testing.T) {
		b := randomBlob(3 * 1024)
		c1, c2, c3 := b.Data[:1024], b.Data[1024:2048], b.Data[2048:]
		loc := s.startUpload(t, repo)

		if rng := s.uploadRange(t, loc); rng != "" && rng != "0-0" {
			t.Errorf("fresh upload: Range %q, want none or 0-0", rng)
		}

		r := s.do(t, http.MethodPatch, loc, c1, "Content-Type", "application/octet-stream",
			"Content-Range", "0-1023")
		mustStatus(t, r, http.StatusAccepted)
		wantHeader(t, r, "Range", "0-1023")
		loc = s.resolve(t, r.Header.Get("Location"))

		if rng := s.uploadRange(t, loc); rng != "0-1023" {
			t.Errorf("upload status after one chunk: Range %q, want 0-1023", rng)
		}

		// Out of order: skips bytes 1024..1099.
		r = s.do(t, http.MethodPatch, loc, c2[100:], "Content-Type", "application/octet-stream",
			"Content-Range", fmt.Sprintf("1100-%d", 2047))
		wantStatus(t, r, http.StatusRequestedRangeNotSatisfiable)
		if !s.cfg.Features.NoRangeOn416 {
			wantHeader(t, r, "Range", "0-1023")
		}
		// Repeats bytes already received.
		r = s.do(t, http.MethodPatch, loc, c1, "Content-Type", "application/octet-stream",
			"Content-Range", "0-1023")
		wantStatus(t, r, http.StatusRequestedRangeNotSatisfiable)
		if rng := s.uploadRange(t, loc); rng != "0-1023" {
			t.Errorf("upload status after refused chunks: Range %q, want 0-1023", rng)
		}

		r = s.do(t, http.MethodPatch, loc, c2, "Content-Type", "application/octet-stream",
			"Content-Range", "1024-2047")
		mustStatus(t, r, http.StatusAccepted)
		wantHeader(t, r, "Range", "0-2047")
		loc = s.resolve(t, r.Header.Get("Location"))

		// The final chunk out of order in the closing PUT is refused too.
		r = s.do(t, http.MethodPut, s.resolve(t, loc, "digest", b.Digest), c3[1:],
			"Content-Type", "application/octet-stream", "Content-Range", fmt.Sprintf("2049-%d", len(b.Data)-1))
		wantStatus(t, r, http.StatusRequestedRangeNotSatisfiable)
		if rng := s.uploadRange(t, loc); rng != "0-2047" {
			t.Fatalf("upload status after refused final chunk: Range %q, want 0-2047", rng)
		}
		s.wantNoBlob(t, repo, b.Digest)

		r = s.do(t, http.MethodPut, s.resolve(t, loc, "digest", b.Digest), c3,
			"Content-Type", "application/octet-stream", "Content-Range", fmt.Sprintf("2048-%d", len(b.Data)-1))
		mustStatus(t, r, http.StatusCreated)
		if r.Header.Get("Location") == "" {
			t.Errorf("%v: no Location", r)
		}
		s.wantBlob(t, repo, b)
	})

	t.Run("ChunkedThenEmptyPut", func(t *testing.T) {
		b := randomBlob(1500)
		loc := s.startUpload(t, repo)
		r := s.do(t, http.MethodPatch, loc, b.Data, "Content-Type", "application/octet-stream",
			"Content-Range", "0-1499")
		mustStatus(t, r, http.StatusAccepted)
		r = s.do(t, http.MethodPut, s.resolve(t, r.Header.Get("Location"), "digest", b.Digest), nil)
		mustStatus(t, r, http.StatusCreated)
		s.wantBlob(t, repo, b)
	})

	t.Run("StreamedPatch", func(t *testing.T) {
		b := randomBlob(64 * 1024)
		loc := s.startUpload(t, repo)
		r := s.stream(t, http.MethodPatch, loc, b.Data[:40000], "Content-Type", "application/octet-stream")
		mustStatus(t, r, http.StatusAccepted)
		wantHeader(t, r, "Range", "0-39999")
		loc = s.resolve(t, r.Header.Get("Location"))
		r = s.stream(t, http.MethodPatch, loc, b.Data[40000:], "Content-Type", "application/octet-stream")
		mustStatus(t, r, http.StatusAccepted)
		wantHeader(t, r, "Range", "0-"+strconv.Itoa(len(b.Data)-1))
		loc = s.resolve(t, r.Header.Get("Location"))
		r = s.do(t, http.MethodPut, s.resolve(t, loc, "digest", b.Digest), nil)
		mustStatus(t, r, http.StatusCreated)
		s.wantBlob(t, repo, b)
	})

	t.Run("Cancel", func(t *testing.T) {
		b := randomBlob(500)
		loc := s.startUpload(t, repo)
		r := s.do(t, http.MethodPatch, loc, b.Data[:100], "Content-Type", "application/octet-stream",
			"Content-Range", "0-99")
		mustStatus(t, r, http.StatusAccepted)
		loc = s.resolve(t, r.Header.Get("Location"))
		r = s.do(t, http.MethodDelete, loc, nil, "Content-Length", "0")
		wantStatus(t, r, http.StatusNoContent)
		wantError(t, s.do(t, http.MethodGet, loc, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		wantError(t, s.do(t, http.MethodPatch, loc, b.Data[100:], "Content-Type", "application/octet-stream",
			"Content-Range", "100-499"), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		wantError(t, s.do(t, http.MethodPut, s.resolve(t, loc, "digest", b.Digest), b.Data[100:],
			"Content-Type", "application/octet-stream"), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		s.wantNoBlob(t, repo, b.Digest)
	})

	t.Run("UnknownUpload", func(t *testing.T) {
		loc := s.u("/v2/" + repo + "/blobs/uploads/7b8a9c3e-1f0d-4c59-9c1b-000000000000")
		s.unknownUpload(t, s.do(t, http.MethodGet, loc, nil))
		s.unknownUpload(t, s.do(t, http.MethodPatch, loc, []byte("x"), "Content-Type", "application/octet-stream"))
		b := randomBlob(10)
		s.unknownUpload(t, s.do(t, http.MethodPut, s.resolve(t, loc, "digest", b.Digest), b.Data,
			"Content-Type", "application/octet-stream"))
		wantStatus(t, s.do(t, http.MethodDelete, loc, nil), http.StatusNotFound)
		s.wantNoBlob(t, repo, b.Digest)
	})

	t.Run("SessionsAreIndependent", func(t *testing.T) {
		a, b := randomBlob(300), randomBlob(400)
		la, lb := s.startUpload(t, repo), s.startUpload(t, repo)
		if la == lb {
			t.Fatalf("two POSTs returned the same upload location %s", la)
		}
		mustStatus(t, s.do(t, http.MethodPut, s.resolve(t, lb, "digest", b.Digest), b.Data,
			"Content-Type", "application/octet-stream"), http.StatusCreated)
		mustStatus(t, s.do(t, http.MethodPut, s.resolve(t, la, "digest", a.Digest), a.Data,
			"Content-Type", "application/octet-stream"), http.StatusCreated)
		s.wantBlob(t, repo, a)
		s.wantBlob(t, repo, b)
	})

	t.Run("UploadIsScopedToRepository", func(t *testing.T) {
		// An upload session of one repository cannot complete into another.
		b := randomBlob(200)
		loc := s.startUpload(t, repo)
		other := s.repo("blobs-other")
		s.pushBlob(t, other, randomBlob(10)) // make the other repository exist
		moved := s.resolve(t, loc)
		u := s.u("/v2/" + other + "/blobs/uploads/" + lastSegment(moved))
		r := s.do(t, http.MethodPut, s.resolve(t, u, "digest", b.Digest), b.Data,
			"Content-Type", "application/octet-stream")
		s.unknownUpload(t, r)
		s.wantNoBlob(t, other, b.Digest)
	})
}

func (s *suite) blobPull(t *testing.T) {
	repo := s.repo("pull")
	b := randomBlob(1000)
	s.pushBlob(t, repo, b)

	t.Run("GetAndHead", func(t *testing.T) { s.wantBlob(t, repo, b) })

	ranges := []struct {
		name, header string
		from, to     int
	}{
		{"Range/FirstBytes", "bytes=0-9", 0, 9},
		{"Range/Middle", "bytes=100-199", 100, 199},
		{"Range/OpenEnded", "bytes=990-", 990, 999},
		{"Range/Suffix", "bytes=-5", 995, 999},
		{"Range/EndPastSize", "bytes=995-5000", 995, 999},
	}
	for _, tc := range ranges {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, http.MethodGet, s.blobURL(repo, b.Digest), nil, "Range", tc.header)
			mustStatus(t, r, http.StatusPartialContent)
			wantBody(t, r, b.Data[tc.from:tc.to+1])
			wantHeader(t, r, "Content-Range", fmt.Sprintf("bytes %d-%d/%d", tc.from, tc.to, len(b.Data)))
			wantHeader(t, r, "Content-Length", strconv.Itoa(tc.to-tc.from+1))
		})
	}
	t.Run("Range/Reversed", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.blobURL(repo, b.Digest), nil, "Range", "bytes=500-0")
		wantStatus(t, r, http.StatusRequestedRangeNotSatisfiable)
	})
	t.Run("Range/Unsatisfiable", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.blobURL(repo, b.Digest), nil, "Range", "bytes=1000-1010")
		wantStatus(t, r, http.StatusRequestedRangeNotSatisfiable)
		wantHeader(t, r, "Content-Range", "bytes */1000")
	})

	t.Run("Unknown", func(t *testing.T) {
		s.wantNoBlob(t, repo, randomBlob(10).Digest)
	})

	t.Run("OtherRepositoryIsolated", func(t *testing.T) {
		// A blob pushed elsewhere is not readable through this repository.
		other := s.repo("pull-other")
		ob := randomBlob(50)
		s.pushBlob(t, other, ob)
		s.wantNoBlob(t, repo, ob.Digest)
	})

	t.Run("UnknownRepository", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.blobURL(s.repo("never-pushed"), b.Digest), nil)
		wantError(t, r, http.StatusNotFound, "BLOB_UNKNOWN", "NAME_UNKNOWN")
	})
}

func (s *suite) mount(t *testing.T) {
	src, dst := s.repo("mount-src"), s.repo("mount-dst")
	b := randomBlob(777)
	s.pushBlob(t, src, b)

	t.Run("FromRepository", func(t *testing.T) {
		r := s.do(t, http.MethodPost, s.uploadsURL(dst, "mount", b.Digest, "from", src), nil, "Content-Length", "0")
		mustStatus(t, r, http.StatusCreated)
		if r.Header.Get("Location") == "" {
			t.Errorf("%v: no Location", r)
		}
		wantHeader(t, r, "Docker-Content-Digest", b.Digest)
		s.wantBlob(t, dst, b)
		s.wantBlob(t, src, b)
	})

	fallback := func(t *testing.T, query ...string) {
		t.Helper()
		nb := randomBlob(333)
		if len(query) > 1 && query[1] == "" {
			query[1] = nb.Digest
		}
		r := s.do(t, http.MethodPost, s.uploadsURL(s.repo("mount-fallback"), query...), nil, "Content-Length", "0")
		mustStatus(t, r, http.StatusAccepted)
		loc := s.resolve(t, r.Header.Get("Location"))
		r = s.do(t, http.MethodPut, s.resolve(t, loc, "digest", nb.Digest), nb.Data,
			"Content-Type", "application/octet-stream")
		mustStatus(t, r, http.StatusCreated)
		s.wantBlob(t, s.repo("mount-fallback"), nb)
	}
	t.Run("MissingFromRepositoryFallsBackToUpload", func(t *testing.T) {
		fallback(t, "mount", "", "from", s.repo("does-not-exist"))
	})
	t.Run("BlobNotInFromFallsBackToUpload", func(t *testing.T) {
		fallback(t, "mount", "", "from", src)
	})
	t.Run("WithoutFrom", func(t *testing.T) {
		// The spec lets a registry mount without "from" (201) or open a
		// session (202); either way the blob must end up readable.
		other := s.repo("mount-nofrom")
		r := s.do(t, http.MethodPost, s.uploadsURL(other, "mount", b.Digest), nil, "Content-Length", "0")
		mustStatus(t, r, http.StatusCreated, http.StatusAccepted)
		if r.Status == http.StatusAccepted {
			loc := s.resolve(t, r.Header.Get("Location"))
			mustStatus(t, s.do(t, http.MethodPut, s.resolve(t, loc, "digest", b.Digest), b.Data,
				"Content-Type", "application/octet-stream"), http.StatusCreated)
		}
		s.wantBlob(t, other, b)
	})
}

func lastSegment(u string) string {
	if i := indexByteLast(u, '?'); i >= 0 {
		u = u[:i]
	}
	if i := indexByteLast(u, '/'); i >= 0 {
		return u[i+1:]
	}
	return u
}

func indexByteLast(s string, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// unknownUpload checks the answer to a request on an upload session the
// registry does not know (here).
func (s *suite) unknownUpload(t *testing.T, r response) {
	t.Helper()
	if s.cfg.Features.NoUploadUnknownCode {
		wantError(t, r, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID")
		return
	}
	wantError(t, r, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
}
