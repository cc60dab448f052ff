package conformance

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
)

// concurrency pushes the same content from several clients at once: every
// push must succeed and the result must be one of the pushed states, never a
// mix or an error.
func (s *suite) concurrency(t *testing.T) {
	const clients = 8
	repo := s.repo("concurrent")

	// parallel runs fn(i) for every client and reports their errors.
	parallel := func(t *testing.T, fn func(i int) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, clients)
		for i := range clients {
			wg.Go(func() { errs[i] = fn(i) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		}
	}
	// pushBlob is a goroutine-safe POST then PUT.
	pushBlob := func(b blob) error {
		r, err := s.try(http.MethodPost, s.uploadsURL(repo), nil, "Content-Length", "0")
		if err != nil {
			return err
		}
		if r.Status != http.StatusAccepted {
			return fmt.Errorf("%v: want 202", r)
		}
		loc, err := url.Parse(r.Header.Get("Location"))
		if err != nil {
			return err
		}
		u := s.base.ResolveReference(loc)
		q := u.Query()
		q.Set("digest", b.Digest)
		u.RawQuery = q.Encode()
		r, err = s.try(http.MethodPut, u.String(), b.Data, "Content-Type", "application/octet-stream")
		if err != nil {
			return err
		}
		if r.Status != http.StatusCreated {
			return fmt.Errorf("%v: want 201", r)
		}
		return nil
	}
	putManifest := func(ref string, m blob) error {
		r, err := s.try(http.MethodPut, s.manifestURL(repo, ref), m.Data, "Content-Type", m.MediaType)
		if err != nil {
			return err
		}
		if r.Status != http.StatusCreated {
			return fmt.Errorf("%v: want 201", r)
		}
		return nil
	}

	t.Run("SameBlob", func(t *testing.T) {
		b := randomBlob(256 * 1024)
		parallel(t, func(int) error { return pushBlob(b) })
		s.wantBlob(t, repo, b)
	})

	t.Run("SameManifestManyTags", func(t *testing.T) {
		im := newImage(t, false, 100)
		for _, b := range im.blobs() {
			s.pushBlob(t, repo, b)
		}
		parallel(t, func(i int) error { return putManifest(fmt.Sprintf("same-%d", i), im.Manifest) })
		for i := range clients {
			s.wantManifest(t, repo, fmt.Sprintf("same-%d", i), im.Manifest)
		}
	})

	t.Run("SameTag", func(t *testing.T) {
		var ims []image
		for range clients {
			im := newImage(t, false, 50)
			for _, b := range im.blobs() {
				s.pushBlob(t, repo, b)
			}
			ims = append(ims, im)
		}
		parallel(t, func(i int) error { return putManifest("contended", ims[i].Manifest) })
		r := s.do(t, http.MethodGet, s.manifestURL(repo, "contended"), nil, "Accept", acceptAll)
		mustStatus(t, r, http.StatusOK)
		winner := slices.IndexFunc(ims, func(im image) bool { return im.Manifest.Digest == r.Header.Get("Docker-Content-Digest") })
		if winner < 0 {
			t.Fatalf("%v: tag resolves to none of the pushed manifests", r)
		}
		wantBody(t, r, ims[winner].Manifest.Data)
		for _, im := range ims {
			s.wantManifest(t, repo, im.Manifest.Digest, im.Manifest)
		}
	})
}
