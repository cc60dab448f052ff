package conformance

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type tagList struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

func (s *suite) getTags(t *testing.T, target string) (tagList, response) {
	t.Helper()
	r := s.do(t, http.MethodGet, target, nil)
	mustStatus(t, r, http.StatusOK)
	var tl tagList
	if err := json.Unmarshal(r.Body, &tl); err != nil {
		t.Fatalf("%v: %v", r, err)
	}
	return tl, r
}

func (s *suite) tags(t *testing.T) {
	repo := s.repo("tags")
	all := []string{"0.1", "1.0", "alpha", "beta", "gamma", "latest", "v1", "v2"}
	im := newImage(t, false, 10)
	s.pushImage(t, repo, all[len(all)-1], im)
	for _, tag := range all[:len(all)-1] {
		s.pushManifest(t, repo, tag, im.Manifest)
	}
	list := s.u("/v2/" + repo + "/tags/list")

	t.Run("All", func(t *testing.T) {
		tl, _ := s.getTags(t, list)
		if tl.Name != repo {
			t.Errorf("name = %q, want %q", tl.Name, repo)
		}
		if diff := cmp.Diff(all, tl.Tags); diff != "" {
			t.Errorf("tags (-want +got):\n%s", diff)
		}
	})

	t.Run("N", func(t *testing.T) {
		tl, r := s.getTags(t, s.u("/v2/"+repo+"/tags/list", "n", "3"))
		if diff := cmp.Diff(all[:3], tl.Tags); diff != "" {
			t.Errorf("tags (-want +got):\n%s", diff)
		}
		if linkNext(r.Header) == "" {
			t.Errorf("%v: more tags remain but no Link rel=\"next\" (%q)", r, r.Header.Values("Link"))
		}
	})

	t.Run("FollowLink", func(t *testing.T) {
		var got []string
		next := s.u("/v2/"+repo+"/tags/list", "n", "3")
		for pages := 0; next != ""; pages++ {
			if pages > len(all) {
				t.Fatalf("Link chain does not end: %s", next)
			}
			tl, r := s.getTags(t, next)
			if len(tl.Tags) > 3 {
				t.Errorf("%v: %d tags for n=3", r, len(tl.Tags))
			}
			got = append(got, tl.Tags...)
			next = linkNext(r.Header)
			if next != "" {
				next = s.resolve(t, next)
			}
		}
		if diff := cmp.Diff(all, got); diff != "" {
			t.Errorf("tags over all pages (-want +got):\n%s", diff)
		}
	})

	t.Run("Last", func(t *testing.T) {
		tl, _ := s.getTags(t, s.u("/v2/"+repo+"/tags/list", "last", "beta"))
		if diff := cmp.Diff(all[4:], tl.Tags); diff != "" {
			t.Errorf("tags after beta (-want +got):\n%s", diff)
		}
	})

	t.Run("NAndLast", func(t *testing.T) {
		tl, _ := s.getTags(t, s.u("/v2/"+repo+"/tags/list", "n", "2", "last", "alpha"))
		if diff := cmp.Diff(all[3:5], tl.Tags); diff != "" {
			t.Errorf("tags (-want +got):\n%s", diff)
		}
	})

	t.Run("LastPastEnd", func(t *testing.T) {
		tl, r := s.getTags(t, s.u("/v2/"+repo+"/tags/list", "n", "2", "last", "v2"))
		if len(tl.Tags) != 0 {
			t.Errorf("tags after the last one: %q", tl.Tags)
		}
		if linkNext(r.Header) != "" {
			t.Errorf("%v: Link header past the end", r)
		}
	})

	t.Run("NZero", func(t *testing.T) {
		tl, r := s.getTags(t, s.u("/v2/"+repo+"/tags/list", "n", "0"))
		if len(tl.Tags) != 0 {
			t.Errorf("n=0 returned tags %q", tl.Tags)
		}
		if len(r.Header.Values("Link")) != 0 {
			t.Errorf("n=0 returned a Link header %q", r.Header.Values("Link"))
		}
	})

	t.Run("UnknownRepository", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.u("/v2/"+s.repo("never-pushed")+"/tags/list"), nil)
		wantError(t, r, http.StatusNotFound, "NAME_UNKNOWN")
	})
}

func (s *suite) catalog(t *testing.T) {
	names := []string{s.repo("catalog/a"), s.repo("catalog/b"), s.repo("catalog/c")}
	for _, n := range names {
		s.pushImage(t, n, "latest", newImage(t, false, 10))
	}

	t.Run("Paginated", func(t *testing.T) {
		var got []string
		next := s.u("/v2/_catalog", "n", "2")
		for pages := 0; next != ""; pages++ {
			if pages > 100000 {
				t.Fatal("Link chain does not end")
			}
			r := s.do(t, http.MethodGet, next, nil)
			mustStatus(t, r, http.StatusOK)
			var c struct {
				Repositories []string `json:"repositories"`
			}
			if err := json.Unmarshal(r.Body, &c); err != nil {
				t.Fatalf("%v: %v", r, err)
			}
			if len(c.Repositories) > 2 {
				t.Errorf("%v: %d repositories for n=2", r, len(c.Repositories))
			}
			got = append(got, c.Repositories...)
			next = linkNext(r.Header)
			if next != "" {
				next = s.resolve(t, next)
			}
		}
		if !slices.IsSorted(got) {
			t.Errorf("catalog not in lexical order: %q", got)
		}
		for _, n := range names {
			if !slices.Contains(got, n) {
				t.Errorf("catalog lacks %s", n)
			}
		}
	})

	t.Run("Last", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.u("/v2/_catalog", "n", "1", "last", names[0]), nil)
		mustStatus(t, r, http.StatusOK)
		var c struct {
			Repositories []string `json:"repositories"`
		}
		if err := json.Unmarshal(r.Body, &c); err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		if diff := cmp.Diff(names[1:2], c.Repositories); diff != "" {
			t.Errorf("repositories after %s (-want +got):\n%s", names[0], diff)
		}
		if linkNext(r.Header) == "" {
			t.Errorf("%v: no Link header though more repositories follow", r)
		}
	})
}

func (s *suite) getReferrers(t *testing.T, repo, dgst string, query ...string) (index, response) {
	t.Helper()
	r := s.do(t, http.MethodGet, s.u("/v2/"+repo+"/referrers/"+dgst, query...), nil)
	mustStatus(t, r, http.StatusOK)
	wantHeader(t, r, "Content-Type", mtOCIIndex)
	var ix index
	if err := json.Unmarshal(r.Body, &ix); err != nil {
		t.Fatalf("%v: %v", r, err)
	}
	if ix.SchemaVersion != 2 || ix.MediaType != mtOCIIndex {
		t.Errorf("%v: not an OCI image index (schemaVersion %d, mediaType %q)", r, ix.SchemaVersion, ix.MediaType)
	}
	// Follow pagination so the caller sees every referrer.
	for next, pages := linkNext(r.Header), 0; next != ""; pages++ {
		if pages > 1000 {
			t.Fatal("referrers Link chain does not end")
		}
		nr := s.do(t, http.MethodGet, s.resolve(t, next), nil)
		mustStatus(t, nr, http.StatusOK)
		var more index
		if err := json.Unmarshal(nr.Body, &more); err != nil {
			t.Fatalf("%v: %v", nr, err)
		}
		ix.Manifests = append(ix.Manifests, more.Manifests...)
		next = linkNext(nr.Header)
	}
	return ix, r
}

// sortDescs orders descriptors by digest for comparison.
func sortDescs(d []descriptor) []descriptor {
	d = slices.Clone(d)
	slices.SortFunc(d, func(a, b descriptor) int { return strings.Compare(a.Digest, b.Digest) })
	return d
}

func (s *suite) referrers(t *testing.T) {
	if s.cfg.Features.NoReferrers {
		t.Skip("target declares no referrers API")
	}
	repo := s.repo("referrers")
	subject := newImage(t, false, 10)
	sd := subject.Manifest.desc()

	const (
		sbom = "application/vnd.berth.conformance.sbom"
		sig  = "application/vnd.berth.conformance.signature"
	)
	// Pushed before the subject exists: must count once the subject arrives.
	a1 := newArtifact(t, sbom, &sd, map[string]string{"org.example.format": "json"})
	s.pushImage(t, repo, a1.Manifest.Digest, a1)
	s.pushImage(t, repo, "subject", subject)
	a2 := newArtifact(t, sig, &sd, map[string]string{"org.example.key": "k1"})
	s.pushImage(t, repo, a2.Manifest.Digest, a2)

	// An image manifest without artifactType: the config's media type
	// stands in.
	plain := newImage(t, false, 10)
	pm := manifest{SchemaVersion: 2, MediaType: mtOCIManifest, Config: plain.Config.desc(),
		Layers: []descriptor{plain.Layers[0].desc()}, Subject: &sd, Annotations: map[string]string{"k": "v"}}
	plain.Manifest = encode(t, mtOCIManifest, pm)
	s.pushImage(t, repo, plain.Manifest.Digest, plain)

	// An index referrer without artifactType: artifactType is omitted.
	ixNoType := encode(t, mtOCIIndex, index{SchemaVersion: 2, MediaType: mtOCIIndex,
		Manifests: []descriptor{a2.Manifest.desc()}, Subject: &sd, Annotations: map[string]string{"i": "1"}})
	s.pushManifest(t, repo, ixNoType.Digest, ixNoType)
	// An index referrer with one.
	ixTyped := encode(t, mtOCIIndex, index{SchemaVersion: 2, MediaType: mtOCIIndex, ArtifactType: sbom,
		Manifests: []descriptor{a2.Manifest.desc()}, Subject: &sd})
	s.pushManifest(t, repo, ixTyped.Digest, ixTyped)

	// A referrer of the same subject in another repository does not count.
	elsewhere := newArtifact(t, sbom, &sd, nil)
	s.pushImage(t, s.repo("referrers-other"), elsewhere.Manifest.Digest, elsewhere)

	want := func(b blob, artifactType string, ann map[string]string) descriptor {
		d := b.desc()
		d.ArtifactType = artifactType
		d.Annotations = ann
		return d
	}
	dA1 := want(a1.Manifest, sbom, map[string]string{"org.example.format": "json"})
	dA2 := want(a2.Manifest, sig, map[string]string{"org.example.key": "k1"})
	dPlain := want(plain.Manifest, mtOCIConfig, map[string]string{"k": "v"})
	dIxNoType := want(ixNoType, "", map[string]string{"i": "1"})
	dIxTyped := want(ixTyped, sbom, nil)

	t.Run("All", func(t *testing.T) {
		ix, _ := s.getReferrers(t, repo, subject.Manifest.Digest)
		if diff := cmp.Diff(sortDescs([]descriptor{dA1, dA2, dPlain, dIxNoType, dIxTyped}), sortDescs(ix.Manifests)); diff != "" {
			t.Errorf("referrers (-want +got):\n%s", diff)
		}
	})

	t.Run("ArtifactTypeFilter", func(t *testing.T) {
		ix, r := s.getReferrers(t, repo, subject.Manifest.Digest, "artifactType", sbom)
		wantHeader(t, r, "OCI-Filters-Applied", "artifactType")
		if diff := cmp.Diff(sortDescs([]descriptor{dA1, dIxTyped}), sortDescs(ix.Manifests)); diff != "" {
			t.Errorf("filtered referrers (-want +got):\n%s", diff)
		}
	})

	t.Run("FilterMatchingNothing", func(t *testing.T) {
		ix, _ := s.getReferrers(t, repo, subject.Manifest.Digest, "artifactType", "application/vnd.none")
		if len(ix.Manifests) != 0 {
			t.Errorf("filter matching nothing returned %d referrers", len(ix.Manifests))
		}
	})

	t.Run("NoReferrers", func(t *testing.T) {
		ix, _ := s.getReferrers(t, repo, a1.Manifest.Digest)
		if len(ix.Manifests) != 0 {
			t.Errorf("got %d referrers of a manifest nobody refers to", len(ix.Manifests))
		}
	})

	t.Run("UnknownSubject", func(t *testing.T) {
		ix, _ := s.getReferrers(t, repo, randomBlob(10).Digest)
		if len(ix.Manifests) != 0 {
			t.Errorf("got %d referrers of an unknown digest", len(ix.Manifests))
		}
	})

	t.Run("InvalidDigest", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.u("/v2/"+repo+"/referrers/sha256:not-hex"), nil)
		wantStatus(t, r, http.StatusBadRequest)
	})

	t.Run("DeletedReferrerDisappears", func(t *testing.T) {
		r := s.do(t, http.MethodDelete, s.manifestURL(repo, a2.Manifest.Digest), nil)
		mustStatus(t, r, http.StatusAccepted)
		ix, _ := s.getReferrers(t, repo, subject.Manifest.Digest)
		for _, d := range ix.Manifests {
			if d.Digest == a2.Manifest.Digest {
				t.Errorf("deleted referrer %s still listed", d.Digest)
			}
		}
		if len(ix.Manifests) != 4 {
			t.Errorf("got %d referrers after deleting one of 5", len(ix.Manifests))
		}
	})

	t.Run("ManyReferrers", func(t *testing.T) {
		// Enough to make a paginating registry paginate.
		const n = 60
		subj := newImage(t, false, 10)
		s.pushImage(t, repo, "many", subj)
		d := subj.Manifest.desc()
		wantDigests := map[string]bool{}
		for i := range n {
			a := newArtifact(t, sbom, &d, map[string]string{"i": strconv.Itoa(i)})
			s.pushImage(t, repo, a.Manifest.Digest, a)
			wantDigests[a.Manifest.Digest] = true
		}
		ix, _ := s.getReferrers(t, repo, subj.Manifest.Digest)
		got := map[string]bool{}
		for _, m := range ix.Manifests {
			got[m.Digest] = true
		}
		if diff := cmp.Diff(wantDigests, got); diff != "" {
			t.Errorf("referrers (-want +got):\n%s", diff)
		}
	})
}
