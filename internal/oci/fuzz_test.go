package oci

import (
	"strings"
	"testing"
)

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a", "ocp4/openshift4/release", "a/../b", "A", "a//b", "a__b", "a___b", "a.-b", "..", strings.Repeat("a", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateName(s) != nil {
			return
		}
		for _, part := range strings.Split(s, "/") {
			if part == "" || part == "." || part == ".." || strings.ContainsAny(part, `\:@`) {
				t.Fatalf("accepted name %q has a component that could escape the store", s)
			}
		}
	})
}

func FuzzValidateTag(f *testing.F) {
	for _, s := range []string{"latest", "v1.0", "-x", ".x", strings.Repeat("t", 129), "a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateTag(s) == nil && (len(s) > 128 || strings.ContainsAny(s, "/:@") || IsDigestReference(s)) {
			t.Fatalf("accepted bad tag %q", s)
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("b", 128), "md5:abc", "sha256:XYZ", ":", "sha256:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			if e, ok := AsError(err); !ok || e.Code != ErrDigestInvalid {
				t.Fatalf("error for %q is not DIGEST_INVALID: %v", s, err)
			}
			return
		}
		if d.Validate() != nil {
			t.Fatalf("accepted %q which go-digest rejects: %v", s, d.Validate())
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	seeds := []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":2},"layers":[]}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`,
		`{"schemaVersion":1}`, `{`, `[]`, `null`, `{"schemaVersion":2}{}`,
	}
	for _, s := range seeds {
		f.Add("", []byte(s))
		f.Add(MediaTypeOCIManifest, []byte(s))
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		m, err := ParseManifest(ct, body)
		if err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		for _, d := range append(m.Blobs(), m.Manifests...) {
			if _, err := ParseDigest(string(d.Digest)); err != nil {
				t.Fatalf("accepted manifest references bad digest %q", d.Digest)
			}
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-1023", "bytes 0-9/10", "5-4", "-1-3", "a-b", "", "0-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := ParseContentRange(s)
		if err == nil && (start < 0 || end < start) {
			t.Fatalf("%q parsed to invalid range %d-%d", s, start, end)
		}
	})
}
