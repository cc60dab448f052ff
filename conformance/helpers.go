package conformance

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
)

func (s *suite) blobURL(repo, dgst string) string {
	return s.u("/v2/" + repo + "/blobs/" + dgst)
}

func (s *suite) manifestURL(repo, ref string) string {
	return s.u("/v2/" + repo + "/manifests/" + ref)
}

func (s *suite) uploadsURL(repo string, query ...string) string {
	return s.u("/v2/"+repo+"/blobs/uploads/", query...)
}

// startUpload opens an upload session and returns its absolute location.
func (s *suite) startUpload(t *testing.T, repo string, query ...string) string {
	t.Helper()
	r := s.do(t, http.MethodPost, s.uploadsURL(repo, query...), nil, "Content-Length", "0")
	mustStatus(t, r, http.StatusAccepted)
	loc := r.Header.Get("Location")
	if loc == "" {
		t.Fatalf("%v: no Location header", r)
	}
	return s.resolve(t, loc)
}

// pushBlob uploads b to repo with POST then PUT, the method every registry
// supports, and fails the test unless it is accepted.
func (s *suite) pushBlob(t *testing.T, repo string, b blob) {
	t.Helper()
	loc := s.startUpload(t, repo)
	r := s.do(t, http.MethodPut, s.resolve(t, loc, "digest", b.Digest), b.Data,
		"Content-Type", "application/octet-stream")
	mustStatus(t, r, http.StatusCreated)
}

// monolithicTarget returns where a whole blob is sent in one request: the
// single POST, or, for a target without it, a fresh session's PUT.
func (s *suite) monolithicTarget(t *testing.T, repo, dgst string) (method, target string) {
	t.Helper()
	if s.cfg.Features.NoSinglePost {
		return http.MethodPut, s.resolve(t, s.startUpload(t, repo), "digest", dgst)
	}
	return http.MethodPost, s.uploadsURL(repo, "digest", dgst)
}

// monolithic sends data as one blob claimed to have digest dgst.
func (s *suite) monolithic(t *testing.T, repo, dgst string, data []byte) response {
	t.Helper()
	method, target := s.monolithicTarget(t, repo, dgst)
	return s.do(t, method, target, data, "Content-Type", "application/octet-stream")
}

// putManifest PUTs m under ref and returns the answer.
func (s *suite) putManifest(t *testing.T, repo, ref string, m blob) response {
	t.Helper()
	return s.do(t, http.MethodPut, s.manifestURL(repo, ref), m.Data, "Content-Type", m.MediaType)
}

// pushManifest PUTs m under ref and fails the test unless it is created.
func (s *suite) pushManifest(t *testing.T, repo, ref string, m blob) response {
	t.Helper()
	r := s.putManifest(t, repo, ref, m)
	mustStatus(t, r, http.StatusCreated)
	return r
}

// pushImage pushes im's blobs and then its manifest under ref.
func (s *suite) pushImage(t *testing.T, repo, ref string, im image) {
	t.Helper()
	for _, b := range im.blobs() {
		s.pushBlob(t, repo, b)
	}
	s.pushManifest(t, repo, ref, im.Manifest)
}

// wantBlob checks that GET and HEAD of the blob answer its exact bytes.
func (s *suite) wantBlob(t *testing.T, repo string, b blob) {
	t.Helper()
	r := s.do(t, http.MethodGet, s.blobURL(repo, b.Digest), nil)
	if !wantStatus(t, r, http.StatusOK) {
		return
	}
	wantBody(t, r, b.Data)
	wantHeader(t, r, "Docker-Content-Digest", b.Digest)
	h := s.do(t, http.MethodHead, s.blobURL(repo, b.Digest), nil)
	if wantStatus(t, h, http.StatusOK) {
		wantHeader(t, h, "Content-Length", strconv.Itoa(len(b.Data)))
		wantHeader(t, h, "Docker-Content-Digest", b.Digest)
		if len(h.Body) != 0 {
			t.Errorf("%v: HEAD answered a body", h)
		}
	}
}

// wantNoBlob checks that the blob is absent: HEAD 404 and GET 404
// BLOB_UNKNOWN.
func (s *suite) wantNoBlob(t *testing.T, repo, dgst string) {
	t.Helper()
	wantStatus(t, s.do(t, http.MethodHead, s.blobURL(repo, dgst), nil), http.StatusNotFound)
	wantError(t, s.do(t, http.MethodGet, s.blobURL(repo, dgst), nil), http.StatusNotFound, "BLOB_UNKNOWN")
}

// wantManifest checks GET and HEAD of m under ref: the stored bytes, the
// media type, the digest and the length.
func (s *suite) wantManifest(t *testing.T, repo, ref string, m blob) {
	t.Helper()
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		r := s.do(t, method, s.manifestURL(repo, ref), nil, "Accept", acceptAll)
		if !wantStatus(t, r, http.StatusOK) {
			continue
		}
		if method == http.MethodGet {
			wantBody(t, r, m.Data)
		} else if len(r.Body) != 0 {
			t.Errorf("%v: HEAD answered a body", r)
		}
		wantHeader(t, r, "Content-Type", m.MediaType)
		wantHeader(t, r, "Docker-Content-Digest", m.Digest)
		wantHeader(t, r, "Content-Length", strconv.Itoa(len(m.Data)))
	}
}

// wantNoManifest checks ref is unknown in repo: 404 MANIFEST_UNKNOWN (or
// NAME_UNKNOWN when the repository itself is gone).
func (s *suite) wantNoManifest(t *testing.T, repo, ref string) {
	t.Helper()
	wantStatus(t, s.do(t, http.MethodHead, s.manifestURL(repo, ref), nil, "Accept", acceptAll), http.StatusNotFound)
	r := s.do(t, http.MethodGet, s.manifestURL(repo, ref), nil, "Accept", acceptAll)
	wantError(t, r, http.StatusNotFound, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")
}

// acceptAll is what a client that understands every manifest type sends.
var acceptAll = fmt.Sprintf("%s, %s, %s, %s", mtOCIManifest, mtOCIIndex, mtDockerV2, mtDockerList)

// uploadRange reads the upload status: it must be 204 with a Location, and
// it returns the Range header.
func (s *suite) uploadRange(t *testing.T, loc string) string {
	t.Helper()
	r := s.do(t, http.MethodGet, loc, nil)
	mustStatus(t, r, http.StatusNoContent)
	if r.Header.Get("Location") == "" {
		t.Errorf("%v: upload status without Location", r)
	}
	return r.Header.Get("Range")
}
