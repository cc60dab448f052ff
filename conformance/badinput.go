package conformance

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// badInput sends malformed requests. Each must get its OCI error and leave
// the store as it was: nothing new readable, old content intact.
func (s *suite) badInput(t *testing.T) {
	repo := s.repo("bad")
	good := newImage(t, false, 100)
	s.pushImage(t, repo, "target", good)

	// intact checks the tag still serves the good manifest.
	intact := func(t *testing.T) {
		t.Helper()
		s.wantManifest(t, repo, "target", good.Manifest)
	}

	t.Run("Manifest/MalformedJSON", func(t *testing.T) {
		bad := newBlob([]byte(`{"schemaVersion": 2, "mediaType": "`+mtOCIManifest+`", "config": {`), mtOCIManifest)
		wantError(t, s.putManifest(t, repo, "target", bad), http.StatusBadRequest, "MANIFEST_INVALID")
		wantError(t, s.putManifest(t, repo, bad.Digest, bad), http.StatusBadRequest, "MANIFEST_INVALID")
		intact(t)
		s.wantNoManifest(t, repo, bad.Digest)
	})

	t.Run("Manifest/NotJSON", func(t *testing.T) {
		bad := newBlob([]byte("\x00\x01 this is not a manifest"), mtOCIManifest)
		wantError(t, s.putManifest(t, repo, "target", bad), http.StatusBadRequest, "MANIFEST_INVALID")
		intact(t)
		s.wantNoManifest(t, repo, bad.Digest)
	})

	t.Run("Manifest/MediaTypeMismatch", func(t *testing.T) {
		// The body says OCI manifest, the Content-Type says Docker schema2.
		im := newImage(t, false, 10)
		for _, b := range im.blobs() {
			s.pushBlob(t, repo, b)
		}
		m := im.Manifest
		m.MediaType = mtDockerV2
		wantError(t, s.putManifest(t, repo, "target", m), http.StatusBadRequest, "MANIFEST_INVALID")
		intact(t)
		s.wantNoManifest(t, repo, m.Digest)
	})

	t.Run("Manifest/IndexSentAsManifest", func(t *testing.T) {
		ix := newIndex(t, mtOCIIndex, good.Manifest)
		ix.MediaType = mtOCIManifest
		wantError(t, s.putManifest(t, repo, "target", ix), http.StatusBadRequest, "MANIFEST_INVALID")
		intact(t)
		s.wantNoManifest(t, repo, ix.Digest)
	})

	t.Run("Manifest/WrongSchemaVersion", func(t *testing.T) {
		m := manifest{SchemaVersion: 3, MediaType: mtOCIManifest, Config: good.Config.desc(), Layers: []descriptor{}}
		bad := encode(t, mtOCIManifest, m)
		s.wantBadInput(t, s.putManifest(t, repo, "target", bad), http.StatusBadRequest, "MANIFEST_INVALID")
		intact(t)
		s.wantNoManifest(t, repo, bad.Digest)
	})

	t.Run("Manifest/InvalidDescriptorDigest", func(t *testing.T) {
		d := good.Layers[0].desc()
		d.Digest = "sha256:not-a-digest"
		m := manifest{SchemaVersion: 2, MediaType: mtOCIManifest, Config: good.Config.desc(), Layers: []descriptor{d}}
		bad := encode(t, mtOCIManifest, m)
		s.wantBadInput(t, s.putManifest(t, repo, "target", bad), http.StatusBadRequest,
			"MANIFEST_INVALID", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN")
		intact(t)
		s.wantNoManifest(t, repo, bad.Digest)
	})

	t.Run("Manifest/DigestMismatch", func(t *testing.T) {
		other := randomBlob(10).Digest
		wantError(t, s.putManifest(t, repo, other, good.Manifest), http.StatusBadRequest, "DIGEST_INVALID")
		s.wantNoManifest(t, repo, other)
	})

	t.Run("Manifest/UnknownAlgorithm", func(t *testing.T) {
		ref := "sha999:" + strings.Repeat("ab", 32)
		r := s.putManifest(t, repo, ref, good.Manifest)
		if s.cfg.Features.NoNameErrors && r.Status == http.StatusNotFound {
			return
		}
		wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID", "UNSUPPORTED")
	})

	t.Run("Manifest/ReferenceNeitherTagNorDigest", func(t *testing.T) {
		const ref = "sha256:baddigeststring"
		r := s.putManifest(t, repo, ref, good.Manifest)
		if s.cfg.Features.NoNameErrors && r.Status == http.StatusNotFound {
			return
		}
		wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID", "TAG_INVALID")
		g := s.do(t, http.MethodGet, s.manifestURL(repo, ref), nil, "Accept", acceptAll)
		if g.Status == http.StatusNotFound {
			wantEnvelope(t, g, "MANIFEST_UNKNOWN")
		} else {
			wantError(t, g, http.StatusBadRequest, "DIGEST_INVALID", "TAG_INVALID")
		}
	})

	// The published OCI conformance suite (v1.1.1) pulls a reference that is
	// not a valid tag and wants a miss, not a bad request: no manifest can
	// carry such a tag. A push of one stays TAG_INVALID (InvalidTag/*).
	t.Run("Manifest/InvalidTagPullIsUnknown", func(t *testing.T) {
		const ref = ".INVALID_MANIFEST_NAME"
		g := s.do(t, http.MethodGet, s.manifestURL(repo, ref), nil, "Accept", acceptAll)
		if !(s.cfg.Features.NoNameErrors && g.Status == http.StatusNotFound) {
			wantError(t, g, http.StatusNotFound, "MANIFEST_UNKNOWN")
		}
		if h := s.do(t, http.MethodHead, s.manifestURL(repo, ref), nil, "Accept", acceptAll); h.Status != http.StatusNotFound {
			t.Errorf("HEAD manifest %s: status %d, want 404", ref, h.Status)
		}
	})

	t.Run("Manifest/TooLarge", func(t *testing.T) {
		big := bigManifest(t, good.Config, 4<<20+1024)
		req, err := http.NewRequest(http.MethodPut, s.manifestURL(repo, "target"), strings.NewReader(string(big.Data)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", mtOCIManifest)
		resp, err := s.hc.Do(req)
		if err != nil {
			// The server hung up while the body was still coming.
			if !s.cfg.Features.NoManifestTooLargeError {
				t.Errorf("PUT of a %d-byte manifest: %v; want an OCI error answer", len(big.Data), err)
			}
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r := response{Method: req.Method, URL: req.URL.String(), Status: resp.StatusCode, Header: resp.Header, Body: body}
			switch {
			case r.Status == http.StatusRequestEntityTooLarge && s.cfg.Features.NoManifestTooLargeError:
			case r.Status == http.StatusRequestEntityTooLarge:
				wantEnvelope(t, r, "MANIFEST_INVALID", "SIZE_INVALID")
			default:
				wantError(t, r, http.StatusBadRequest, "MANIFEST_INVALID", "SIZE_INVALID")
			}
		}
		intact(t)
		s.wantNoManifest(t, repo, big.Digest)
	})

	t.Run("Blob/DigestMismatchSinglePost", func(t *testing.T) {
		b, claimed := randomBlob(500), randomBlob(500)
		r := s.monolithic(t, repo, claimed.Digest, b.Data)
		wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		s.wantNoBlob(t, repo, claimed.Digest)
		s.wantNoBlob(t, repo, b.Digest)
	})

	t.Run("Blob/DigestMismatchPut", func(t *testing.T) {
		b, claimed := randomBlob(500), randomBlob(500)
		loc := s.startUpload(t, repo)
		r := s.do(t, http.MethodPut, s.resolve(t, loc, "digest", claimed.Digest), b.Data,
			"Content-Type", "application/octet-stream")
		wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		s.wantNoBlob(t, repo, claimed.Digest)
		s.wantNoBlob(t, repo, b.Digest)
	})

	t.Run("Blob/DigestMismatchChunked", func(t *testing.T) {
		b, claimed := randomBlob(2000), randomBlob(2000)
		loc := s.startUpload(t, repo)
		r := s.do(t, http.MethodPatch, loc, b.Data[:1000], "Content-Type", "application/octet-stream",
			"Content-Range", "0-999")
		mustStatus(t, r, http.StatusAccepted)
		r = s.do(t, http.MethodPut, s.resolve(t, r.Header.Get("Location"), "digest", claimed.Digest), b.Data[1000:],
			"Content-Type", "application/octet-stream", "Content-Range", "1000-1999")
		wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		s.wantNoBlob(t, repo, claimed.Digest)
		s.wantNoBlob(t, repo, b.Digest)
	})

	t.Run("Blob/DigestMismatchStreamed", func(t *testing.T) {
		b, claimed := randomBlob(3000), randomBlob(3000)
		loc := s.startUpload(t, repo)
		r := s.stream(t, http.MethodPatch, loc, b.Data, "Content-Type", "application/octet-stream")
		mustStatus(t, r, http.StatusAccepted)
		r = s.do(t, http.MethodPut, s.resolve(t, r.Header.Get("Location"), "digest", claimed.Digest), nil)
		wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		s.wantNoBlob(t, repo, claimed.Digest)
		s.wantNoBlob(t, repo, b.Digest)
	})

	t.Run("Blob/MissingDigestOnPut", func(t *testing.T) {
		b := randomBlob(500)
		loc := s.startUpload(t, repo)
		r := s.do(t, http.MethodPut, loc, b.Data, "Content-Type", "application/octet-stream")
		wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		s.wantNoBlob(t, repo, b.Digest)
	})

	malformed := []struct{ name, digest string }{
		{"MalformedHex", "sha256:xyz"},
		{"ShortHex", "sha256:abcd"},
		{"NoAlgorithm", strings.Repeat("ab", 32)},
		{"UnknownAlgorithm", "sha999:" + strings.Repeat("ab", 32)},
		{"Unregistered MD5", "md5:" + strings.Repeat("ab", 16)},
	}
	for _, tc := range malformed {
		t.Run("Blob/Digest/"+strings.ReplaceAll(tc.name, " ", ""), func(t *testing.T) {
			b := randomBlob(100)
			r := s.monolithic(t, repo, tc.digest, b.Data)
			wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID", "UNSUPPORTED")
			loc := s.startUpload(t, repo)
			r = s.do(t, http.MethodPut, s.resolve(t, loc, "digest", tc.digest), b.Data,
				"Content-Type", "application/octet-stream")
			wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID", "UNSUPPORTED")
			s.wantNoBlob(t, repo, b.Digest)
		})
	}

	t.Run("Blob/MalformedDigestInPath", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.blobURL(repo, "sha256:xyz"), nil)
		if s.cfg.Features.NoNameErrors && r.Status == http.StatusNotFound {
			return
		}
		wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
	})

	t.Run("Blob/ContentLengthShorterThanBody", func(t *testing.T) {
		// The server reads Content-Length bytes: a prefix whose digest is
		// not the one claimed.
		b := randomBlob(1000)
		method, target := s.monolithicTarget(t, repo, b.Digest)
		head := fmt.Sprintf("%s %s HTTP/1.1\nContent-Type: application/octet-stream\nContent-Length: 600",
			method, s.pathOf(target))
		r, ok := s.raw(t, head, b.Data, false)
		if !ok {
			t.Fatal("no answer")
		}
		wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID", "SIZE_INVALID")
		s.wantNoBlob(t, repo, b.Digest)
		s.wantNoBlob(t, repo, sha256Of(b.Data[:600]))
	})

	t.Run("Blob/TruncatedSinglePost", func(t *testing.T) {
		b := randomBlob(2000)
		method, target := s.monolithicTarget(t, repo, b.Digest)
		head := fmt.Sprintf("%s %s HTTP/1.1\nContent-Type: application/octet-stream\nContent-Length: 2000",
			method, s.pathOf(target))
		r, ok := s.raw(t, head, b.Data[:1200], true)
		s.truncatedAnswer(t, r, ok)
		s.wantNoBlob(t, repo, b.Digest)
		s.wantNoBlob(t, repo, sha256Of(b.Data[:1200]))
	})

	t.Run("Blob/TruncatedPut", func(t *testing.T) {
		b := randomBlob(2000)
		loc := s.startUpload(t, repo)
		head := fmt.Sprintf("PUT %s HTTP/1.1\nContent-Type: application/octet-stream\nContent-Length: 2000",
			s.pathOf(s.resolve(t, loc, "digest", b.Digest)))
		r, ok := s.raw(t, head, b.Data[:1200], true)
		s.truncatedAnswer(t, r, ok)
		s.wantNoBlob(t, repo, b.Digest)
	})

	t.Run("Blob/TruncatedPatch", func(t *testing.T) {
		b := randomBlob(3000)
		loc := s.startUpload(t, repo)
		r := s.do(t, http.MethodPatch, loc, b.Data[:1000], "Content-Type", "application/octet-stream",
			"Content-Range", "0-999")
		mustStatus(t, r, http.StatusAccepted)
		loc = s.resolve(t, r.Header.Get("Location"))
		head := fmt.Sprintf("PATCH %s HTTP/1.1\nContent-Type: application/octet-stream\nContent-Range: 1000-2999\nContent-Length: 2000",
			s.pathOf(loc))
		r, ok := s.raw(t, head, b.Data[1000:1500], true)
		s.truncatedAnswer(t, r, ok)
		// The session is either gone or where it was before the PATCH.
		st := s.do(t, http.MethodGet, loc, nil)
		switch st.Status {
		case http.StatusNotFound:
			wantEnvelope(t, st, "BLOB_UPLOAD_UNKNOWN")
		case http.StatusNoContent:
			if !s.cfg.Features.NoTruncatedBodyError {
				wantHeader(t, st, "Range", "0-999")
			}
		default:
			t.Errorf("%v: want 204 or 404", st)
		}
		s.wantNoBlob(t, repo, b.Digest)
	})

	t.Run("Chunk/Gap", func(t *testing.T) {
		b := randomBlob(2000)
		loc := s.startUpload(t, repo)
		r := s.do(t, http.MethodPatch, loc, b.Data[:1000], "Content-Type", "application/octet-stream",
			"Content-Range", "0-999")
		mustStatus(t, r, http.StatusAccepted)
		loc = s.resolve(t, r.Header.Get("Location"))
		r = s.do(t, http.MethodPatch, loc, b.Data[1500:], "Content-Type", "application/octet-stream",
			"Content-Range", "1500-1999")
		wantStatus(t, r, http.StatusRequestedRangeNotSatisfiable)
		if rng := s.uploadRange(t, loc); rng != "0-999" {
			t.Errorf("upload status after a gap: Range %q, want 0-999", rng)
		}
		// Closing with the digest of what was sent around the gap fails:
		// the refused chunk was not kept.
		gapped := sha256Of(append(append([]byte{}, b.Data[:1000]...), b.Data[1500:]...))
		r = s.do(t, http.MethodPut, s.resolve(t, loc, "digest", gapped), nil)
		wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		s.wantNoBlob(t, repo, gapped)
		s.wantNoBlob(t, repo, b.Digest)
	})

	t.Run("Chunk/LengthDisagreesWithRange", func(t *testing.T) {
		if s.cfg.Features.NoChunkLengthCheck {
			t.Skip("target declares no Content-Range length check")
		}
		b := randomBlob(2000)
		loc := s.startUpload(t, repo)
		r := s.do(t, http.MethodPatch, loc, b.Data[:1000], "Content-Type", "application/octet-stream",
			"Content-Range", "0-1999")
		if r.Status == http.StatusBadRequest {
			wantEnvelope(t, r, "BLOB_UPLOAD_INVALID", "SIZE_INVALID")
		} else {
			wantStatus(t, r, http.StatusRequestedRangeNotSatisfiable)
		}
		st := s.do(t, http.MethodGet, loc, nil)
		if st.Status == http.StatusNoContent {
			if rng := st.Header.Get("Range"); rng != "" && rng != "0-0" {
				t.Errorf("upload status after a refused chunk: Range %q, want nothing stored", rng)
			}
		} else {
			wantError(t, st, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		}
	})

	t.Run("Chunk/MalformedContentRange", func(t *testing.T) {
		b := randomBlob(100)
		loc := s.startUpload(t, repo)
		r := s.do(t, http.MethodPatch, loc, b.Data, "Content-Type", "application/octet-stream",
			"Content-Range", "bytes=zero-ninety-nine")
		if s.cfg.Features.BadInputAs500 && r.Status == http.StatusInternalServerError {
			// documented gap
		} else if r.Status == http.StatusBadRequest {
			wantEnvelope(t, r, "BLOB_UPLOAD_INVALID", "SIZE_INVALID")
		} else {
			wantStatus(t, r, http.StatusRequestedRangeNotSatisfiable)
		}
		s.wantNoBlob(t, repo, b.Digest)
	})
}

// truncatedAnswer checks the answer to a request whose body ended before its
// Content-Length: an OCI error, never a success.
func (s *suite) truncatedAnswer(t *testing.T, r response, ok bool) {
	t.Helper()
	if s.cfg.Features.NoTruncatedBodyError {
		if ok && r.Status < 400 {
			t.Errorf("%v: a truncated body was accepted", r)
		}
		return
	}
	if !ok {
		t.Error("the server hung up without an answer; want a 400 OCI error")
		return
	}
	wantError(t, r, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "SIZE_INVALID", "DIGEST_INVALID")
}

// pathOf returns the request-target (path and query) of an absolute URL.
func (s *suite) pathOf(abs string) string {
	i := strings.Index(abs, "://")
	rest := abs[i+3:]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		return rest[j:]
	}
	return "/"
}

// wantBadInput is wantError, except that a BadInputAs500 target may answer
// 500 with an OCI envelope.
func (s *suite) wantBadInput(t *testing.T, r response, status int, codes ...string) {
	t.Helper()
	if s.cfg.Features.BadInputAs500 && r.Status == http.StatusInternalServerError {
		wantEnvelope(t, r, "UNKNOWN")
		return
	}
	wantError(t, r, status, codes...)
}
