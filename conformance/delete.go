package conformance

import (
	"net/http"
	"slices"
	"testing"
)

func (s *suite) delete(t *testing.T) {
	repo := s.repo("delete")

	t.Run("ManifestByDigest", func(t *testing.T) {
		im := newImage(t, false, 10)
		s.pushImage(t, repo, "bydigest", im)
		s.pushManifest(t, repo, "bydigest-2", im.Manifest)
		r := s.do(t, http.MethodDelete, s.manifestURL(repo, im.Manifest.Digest), nil)
		mustStatus(t, r, http.StatusAccepted)
		s.wantNoManifest(t, repo, im.Manifest.Digest)
		// Every tag that pointed at it is gone too.
		s.wantNoManifest(t, repo, "bydigest")
		s.wantNoManifest(t, repo, "bydigest-2")
		tl, _ := s.getTags(t, s.u("/v2/"+repo+"/tags/list"))
		if slices.Contains(tl.Tags, "bydigest") || slices.Contains(tl.Tags, "bydigest-2") {
			t.Errorf("tags of a deleted manifest still listed: %q", tl.Tags)
		}
		// Deleting twice: it is unknown now.
		wantError(t, s.do(t, http.MethodDelete, s.manifestURL(repo, im.Manifest.Digest), nil),
			http.StatusNotFound, "MANIFEST_UNKNOWN")
	})

	t.Run("ManifestByTag", func(t *testing.T) {
		im := newImage(t, false, 10)
		s.pushImage(t, repo, "bytag", im)
		s.pushManifest(t, repo, "bytag-keep", im.Manifest)
		r := s.do(t, http.MethodDelete, s.manifestURL(repo, "bytag"), nil)
		if s.cfg.Features.NoDeleteByTag {
			// The spec's answer for a registry without tag deletion.
			wantStatus(t, r, http.StatusBadRequest, http.StatusMethodNotAllowed)
			s.wantManifest(t, repo, "bytag", im.Manifest)
			return
		}
		mustStatus(t, r, http.StatusAccepted)
		s.wantNoManifest(t, repo, "bytag")
		// Only the tag went: the manifest and its other tags stay.
		s.wantManifest(t, repo, im.Manifest.Digest, im.Manifest)
		s.wantManifest(t, repo, "bytag-keep", im.Manifest)
		tl, _ := s.getTags(t, s.u("/v2/"+repo+"/tags/list"))
		if slices.Contains(tl.Tags, "bytag") {
			t.Errorf("deleted tag still listed: %q", tl.Tags)
		}
		wantError(t, s.do(t, http.MethodDelete, s.manifestURL(repo, "bytag"), nil),
			http.StatusNotFound, "MANIFEST_UNKNOWN")
	})

	t.Run("UnknownManifest", func(t *testing.T) {
		s.pushImage(t, repo, "exists", newImage(t, false, 10))
		wantError(t, s.do(t, http.MethodDelete, s.manifestURL(repo, randomBlob(10).Digest), nil),
			http.StatusNotFound, "MANIFEST_UNKNOWN")
	})

	t.Run("UnknownRepository", func(t *testing.T) {
		r := s.do(t, http.MethodDelete, s.manifestURL(s.repo("never-pushed"), randomBlob(10).Digest), nil)
		wantError(t, r, http.StatusNotFound, "NAME_UNKNOWN", "MANIFEST_UNKNOWN")
	})

	t.Run("Blob", func(t *testing.T) {
		b := randomBlob(300)
		s.pushBlob(t, repo, b)
		r := s.do(t, http.MethodDelete, s.blobURL(repo, b.Digest), nil)
		mustStatus(t, r, http.StatusAccepted)
		s.wantNoBlob(t, repo, b.Digest)
		wantError(t, s.do(t, http.MethodDelete, s.blobURL(repo, b.Digest), nil), http.StatusNotFound, "BLOB_UNKNOWN")
		// It can be pushed again.
		s.pushBlob(t, repo, b)
		s.wantBlob(t, repo, b)
	})

	t.Run("BlobOnlyFromOneRepository", func(t *testing.T) {
		b := randomBlob(300)
		other := s.repo("delete-other")
		s.pushBlob(t, repo, b)
		s.pushBlob(t, other, b)
		mustStatus(t, s.do(t, http.MethodDelete, s.blobURL(other, b.Digest), nil), http.StatusAccepted)
		s.wantNoBlob(t, other, b.Digest)
		s.wantBlob(t, repo, b)
	})

	t.Run("UnknownBlob", func(t *testing.T) {
		wantError(t, s.do(t, http.MethodDelete, s.blobURL(repo, randomBlob(10).Digest), nil),
			http.StatusNotFound, "BLOB_UNKNOWN")
	})

	t.Run("IndexKeepsChildren", func(t *testing.T) {
		a := newImage(t, false, 10)
		s.pushImage(t, repo, a.Manifest.Digest, a)
		ix := newIndex(t, mtOCIIndex, a.Manifest)
		s.pushManifest(t, repo, "index", ix)
		mustStatus(t, s.do(t, http.MethodDelete, s.manifestURL(repo, ix.Digest), nil), http.StatusAccepted)
		s.wantNoManifest(t, repo, ix.Digest)
		s.wantManifest(t, repo, a.Manifest.Digest, a.Manifest)
	})
}
