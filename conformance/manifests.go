package conformance

import (
	"fmt"
	"net/http"
	"testing"
)

func (s *suite) manifests(t *testing.T) {
	repo := s.repo("manifests")

	// pushAndPull pushes m under tag and checks every way to read it back.
	pushAndPull := func(t *testing.T, tag string, m blob) {
		t.Helper()
		r := s.pushManifest(t, repo, tag, m)
		if r.Header.Get("Location") == "" {
			t.Errorf("%v: no Location", r)
		}
		wantHeader(t, r, "Docker-Content-Digest", m.Digest)
		s.wantManifest(t, repo, tag, m)
		s.wantManifest(t, repo, m.Digest, m)
	}

	oci := newImage(t, false, 512, 1024)
	docker := newImage(t, true, 700)
	t.Run("OCIImageManifest", func(t *testing.T) {
		for _, b := range oci.blobs() {
			s.pushBlob(t, repo, b)
		}
		pushAndPull(t, "oci", oci.Manifest)
	})

	t.Run("DockerSchema2", func(t *testing.T) {
		for _, b := range docker.blobs() {
			s.pushBlob(t, repo, b)
		}
		pushAndPull(t, "docker", docker.Manifest)
	})

	t.Run("ByDigest", func(t *testing.T) {
		im := newImage(t, false, 100)
		for _, b := range im.blobs() {
			s.pushBlob(t, repo, b)
		}
		r := s.pushManifest(t, repo, im.Manifest.Digest, im.Manifest)
		wantHeader(t, r, "Docker-Content-Digest", im.Manifest.Digest)
		s.wantManifest(t, repo, im.Manifest.Digest, im.Manifest)
	})

	t.Run("EmptyLayers", func(t *testing.T) {
		im := newImage(t, false)
		s.pushImage(t, repo, "nolayers", im)
		s.wantManifest(t, repo, "nolayers", im.Manifest)
	})

	var ociIndex blob
	t.Run("OCIIndex", func(t *testing.T) {
		a, b := newImage(t, false, 64), newImage(t, false, 65)
		s.pushImage(t, repo, a.Manifest.Digest, a)
		s.pushImage(t, repo, b.Manifest.Digest, b)
		ociIndex = newIndex(t, mtOCIIndex, a.Manifest, b.Manifest)
		pushAndPull(t, "index", ociIndex)
	})

	t.Run("NestedIndex", func(t *testing.T) {
		if ociIndex.Digest == "" {
			t.Skip("needs OCIIndex")
		}
		c := newImage(t, false, 66)
		s.pushImage(t, repo, c.Manifest.Digest, c)
		outer := newIndex(t, mtOCIIndex, ociIndex, c.Manifest)
		pushAndPull(t, "nested", outer)
	})

	t.Run("DockerManifestList", func(t *testing.T) {
		a, b := newImage(t, true, 64), newImage(t, true, 65)
		s.pushImage(t, repo, a.Manifest.Digest, a)
		s.pushImage(t, repo, b.Manifest.Digest, b)
		pushAndPull(t, "list", newIndex(t, mtDockerList, a.Manifest, b.Manifest))
	})

	t.Run("ArtifactWithSubject", func(t *testing.T) {
		subject := oci.Manifest.desc()
		art := newArtifact(t, "application/vnd.berth.conformance.sbom", &subject,
			map[string]string{"org.opencontainers.image.created": "2024-01-01T00:00:00Z"})
		for _, b := range art.blobs() {
			s.pushBlob(t, repo, b)
		}
		r := s.pushManifest(t, repo, art.Manifest.Digest, art.Manifest)
		if !s.cfg.Features.NoReferrers {
			wantHeader(t, r, "OCI-Subject", oci.Manifest.Digest)
		}
		s.wantManifest(t, repo, art.Manifest.Digest, art.Manifest)
	})

	t.Run("ArtifactWithoutSubject", func(t *testing.T) {
		art := newArtifact(t, "application/vnd.berth.conformance.standalone", nil, nil)
		s.pushImage(t, repo, "artifact", art)
		s.wantManifest(t, repo, "artifact", art.Manifest)
	})

	t.Run("SubjectNotYetPushed", func(t *testing.T) {
		// A referrer may arrive before its subject.
		future := newImage(t, false, 10)
		subject := future.Manifest.desc()
		art := newArtifact(t, "application/vnd.berth.conformance.early", &subject, nil)
		for _, b := range art.blobs() {
			s.pushBlob(t, repo, b)
		}
		s.pushManifest(t, repo, art.Manifest.Digest, art.Manifest)
		s.wantManifest(t, repo, art.Manifest.Digest, art.Manifest)
	})

	t.Run("IndexWithSubjectAndArtifactType", func(t *testing.T) {
		subject := oci.Manifest.desc()
		a := newArtifact(t, "application/vnd.berth.conformance.part", nil, nil)
		s.pushImage(t, repo, a.Manifest.Digest, a)
		ix := index{SchemaVersion: 2, MediaType: mtOCIIndex, ArtifactType: "application/vnd.berth.conformance.bundle",
			Manifests: []descriptor{a.Manifest.desc()}, Subject: &subject}
		m := encode(t, mtOCIIndex, ix)
		r := s.pushManifest(t, repo, m.Digest, m)
		if !s.cfg.Features.NoReferrers {
			wantHeader(t, r, "OCI-Subject", oci.Manifest.Digest)
		}
		s.wantManifest(t, repo, m.Digest, m)
	})

	t.Run("ForeignLayers", func(t *testing.T) {
		if s.cfg.Features.NoForeignLayers {
			t.Skip("target declares it refuses foreign layers")
		}
		// Non-distributable layers live elsewhere: the registry must not
		// require their bytes.
		for _, tc := range []struct {
			name    string
			docker  bool
			fgnType string
		}{{"OCI", false, mtOCIForeign}, {"Docker", true, mtDockerFgn}} {
			t.Run(tc.name, func(t *testing.T) {
				im := newImage(t, tc.docker, 200)
				fgn := randomBlob(5000)
				d := fgn.desc()
				d.MediaType = tc.fgnType
				d.URLs = []string{"https://example.com/layers/" + fgn.Digest}
				m := manifest{SchemaVersion: 2, MediaType: mtOCIManifest, Config: im.Config.desc(),
					Layers: []descriptor{d, im.Layers[0].desc()}}
				if tc.docker {
					m.MediaType = mtDockerV2
				}
				mb := encode(t, m.MediaType, m)
				for _, b := range im.blobs() {
					s.pushBlob(t, repo, b)
				}
				pushAndPull(t, "foreign-"+tc.name, mb)
				s.wantNoBlob(t, repo, fgn.Digest)
			})
		}
	})

	t.Run("DescriptorWithData", func(t *testing.T) {
		// The image spec lets a descriptor embed its content as base64
		// "data"; the blob must still be in the repository.
		cfg := emptyConfig()
		s.pushBlob(t, repo, cfg)
		m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/vnd.berth.conformance.data",`+
			`"config":{"mediaType":%q,"digest":%q,"size":2,"data":"e30="},"layers":[{"mediaType":%q,"digest":%q,"size":2,"data":"e30="}]}`,
			mtOCIManifest, mtOCIEmpty, cfg.Digest, mtOCIEmpty, cfg.Digest))
		pushAndPull(t, "data", newBlob(m, mtOCIManifest))
	})

	t.Run("UnknownFields", func(t *testing.T) {
		// Fields the registry does not know are the client's business:
		// accepted and served back untouched.
		cfg := newBlob([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x-custom":{"k":[1,2]}}`), mtOCIConfig)
		s.pushBlob(t, repo, cfg)
		m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"x-custom":"`+randomHex(8)+`",`+
			`"config":{"mediaType":%q,"digest":%q,"size":%d,"x-extra":true},"layers":[],"annotations":{"a":"b"}}`,
			mtOCIManifest, mtOCIConfig, cfg.Digest, len(cfg.Data)))
		pushAndPull(t, "unknown-fields", newBlob(m, mtOCIManifest))
	})

	t.Run("RetagMovesTag", func(t *testing.T) {
		a, b := newImage(t, false, 30), newImage(t, false, 31)
		s.pushImage(t, repo, "moving", a)
		s.pushImage(t, repo, "moving", b)
		s.wantManifest(t, repo, "moving", b.Manifest)
		s.wantManifest(t, repo, a.Manifest.Digest, a.Manifest)
	})

	t.Run("SameManifestManyTags", func(t *testing.T) {
		im := newImage(t, false, 20)
		s.pushImage(t, repo, "t1", im)
		s.pushManifest(t, repo, "t2", im.Manifest)
		s.wantManifest(t, repo, "t1", im.Manifest)
		s.wantManifest(t, repo, "t2", im.Manifest)
	})

	t.Run("ExactBytesKept", func(t *testing.T) {
		// Whitespace and key order are the client's: the registry must
		// store and serve the bytes it was given, under their digest.
		im := newImage(t, false, 40)
		for _, b := range im.blobs() {
			s.pushBlob(t, repo, b)
		}
		odd := newBlob(append([]byte("  \n"), append(im.Manifest.Data, []byte("\n\t ")...)...), mtOCIManifest)
		s.pushManifest(t, repo, "odd-bytes", odd)
		s.wantManifest(t, repo, "odd-bytes", odd)
		s.wantManifest(t, repo, odd.Digest, odd)
	})

	t.Run("Unknown", func(t *testing.T) {
		s.wantNoManifest(t, repo, "no-such-tag")
		s.wantNoManifest(t, repo, randomBlob(10).Digest)
	})

	t.Run("UnknownRepository", func(t *testing.T) {
		s.wantNoManifest(t, s.repo("never-pushed"), "latest")
	})
}

// manifestReferences checks that a manifest may only name blobs and
// manifests present in its repository.
func (s *suite) manifestReferences(t *testing.T) {
	repo := s.repo("references")
	other := s.repo("references-other")

	refuse := func(t *testing.T, tag string, m blob) {
		t.Helper()
		r := s.putManifest(t, repo, tag, m)
		wantError(t, r, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
		s.wantNoManifest(t, repo, tag)
		s.wantNoManifest(t, repo, m.Digest)
	}

	t.Run("MissingLayer", func(t *testing.T) {
		im := newImage(t, false, 10, 20)
		s.pushBlob(t, repo, im.Config)
		s.pushBlob(t, repo, im.Layers[0])
		refuse(t, "missing-layer", im.Manifest)
	})
	t.Run("MissingConfig", func(t *testing.T) {
		im := newImage(t, false, 10)
		s.pushBlob(t, repo, im.Layers[0])
		refuse(t, "missing-config", im.Manifest)
	})
	t.Run("DockerMissingLayer", func(t *testing.T) {
		im := newImage(t, true, 10)
		s.pushBlob(t, repo, im.Config)
		refuse(t, "docker-missing-layer", im.Manifest)
	})
	t.Run("LayerOnlyInOtherRepository", func(t *testing.T) {
		im := newImage(t, false, 10)
		s.pushBlob(t, repo, im.Config)
		s.pushBlob(t, other, im.Layers[0])
		refuse(t, "layer-elsewhere", im.Manifest)
	})
	t.Run("IndexMissingChild", func(t *testing.T) {
		a, b := newImage(t, false, 10), newImage(t, false, 11)
		s.pushImage(t, repo, a.Manifest.Digest, a)
		for _, bl := range b.blobs() {
			s.pushBlob(t, repo, bl)
		}
		refuse(t, "index-missing-child", newIndex(t, mtOCIIndex, a.Manifest, b.Manifest))
	})
	t.Run("IndexChildOnlyInOtherRepository", func(t *testing.T) {
		a := newImage(t, false, 10)
		s.pushImage(t, other, a.Manifest.Digest, a)
		refuse(t, "index-child-elsewhere", newIndex(t, mtOCIIndex, a.Manifest))
	})
	t.Run("ManifestListMissingChild", func(t *testing.T) {
		a := newImage(t, true, 10)
		refuse(t, "list-missing-child", newIndex(t, mtDockerList, a.Manifest))
	})
	t.Run("AcceptedOnceBlobsArrive", func(t *testing.T) {
		im := newImage(t, false, 10, 20)
		s.pushBlob(t, repo, im.Config)
		refuse(t, "late", im.Manifest)
		for _, l := range im.Layers {
			s.pushBlob(t, repo, l)
		}
		s.pushManifest(t, repo, "late", im.Manifest)
		s.wantManifest(t, repo, "late", im.Manifest)
	})
}

// sha512 checks blobs and manifests addressed by sha512 digests.
func (s *suite) sha512(t *testing.T) {
	if s.cfg.Features.NoSHA512 {
		t.Skip("target declares no sha512 support")
	}
	repo := s.repo("sha512")

	t.Run("BlobSinglePost", func(t *testing.T) {
		b := randomBlob(4000).sha512()
		mustStatus(t, s.monolithic(t, repo, b.Digest, b.Data), http.StatusCreated)
		s.wantBlob(t, repo, b)
	})
	t.Run("BlobPostThenPut", func(t *testing.T) {
		b := randomBlob(4000).sha512()
		s.pushBlob(t, repo, b)
		s.wantBlob(t, repo, b)
	})
	t.Run("BlobChunked", func(t *testing.T) {
		b := randomBlob(4000).sha512()
		loc := s.startUpload(t, repo, "digest-algorithm", "sha512")
		r := s.do(t, http.MethodPatch, loc, b.Data[:2000], "Content-Type", "application/octet-stream",
			"Content-Range", "0-1999")
		mustStatus(t, r, http.StatusAccepted)
		loc = s.resolve(t, r.Header.Get("Location"))
		r = s.do(t, http.MethodPut, s.resolve(t, loc, "digest", b.Digest), b.Data[2000:],
			"Content-Type", "application/octet-stream", "Content-Range", "2000-3999")
		mustStatus(t, r, http.StatusCreated)
		s.wantBlob(t, repo, b)
	})
	t.Run("BlobMismatch", func(t *testing.T) {
		b := randomBlob(100).sha512()
		wrong := randomBlob(100)
		r := s.monolithic(t, repo, b.Digest, wrong.Data)
		wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		s.wantNoBlob(t, repo, b.Digest)
		s.wantNoBlob(t, repo, wrong.sha512().Digest)
	})
	t.Run("Manifest", func(t *testing.T) {
		im := newImage(t, false, 300)
		im.Config = im.Config.sha512()
		im.Layers[0] = im.Layers[0].sha512()
		m := manifest{SchemaVersion: 2, MediaType: mtOCIManifest, Config: im.Config.desc(),
			Layers: []descriptor{im.Layers[0].desc()}}
		mb := encode(t, mtOCIManifest, m).sha512()
		for _, b := range im.blobs() {
			s.pushBlob(t, repo, b)
		}
		r := s.pushManifest(t, repo, mb.Digest, mb)
		wantHeader(t, r, "Docker-Content-Digest", mb.Digest)
		s.wantManifest(t, repo, mb.Digest, mb)
	})
	t.Run("ManifestMismatch", func(t *testing.T) {
		im := newImage(t, false, 10)
		for _, b := range im.blobs() {
			s.pushBlob(t, repo, b)
		}
		wrong := sha512Of(append([]byte(" "), im.Manifest.Data...))
		r := s.do(t, http.MethodPut, s.manifestURL(repo, wrong), im.Manifest.Data, "Content-Type", mtOCIManifest)
		wantError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		s.wantNoManifest(t, repo, wrong)
		s.wantNoManifest(t, repo, im.Manifest.sha512().Digest)
	})
	t.Run("IndexOfSHA512Manifest", func(t *testing.T) {
		im := newImage(t, false, 10)
		mb := im.Manifest.sha512()
		for _, b := range im.blobs() {
			s.pushBlob(t, repo, b)
		}
		s.pushManifest(t, repo, mb.Digest, mb)
		ix := newIndex(t, mtOCIIndex, mb)
		s.pushManifest(t, repo, "index", ix)
		s.wantManifest(t, repo, "index", ix)
	})
}
