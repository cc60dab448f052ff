package imageset

import (
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/policy"
)

func digestOf(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

var resourceGoldenCases = []struct {
	name string
	res  ClusterResources
}{
	{"resources/all", ClusterResources{
		Release: MirrorSets{Digest: []mirror.MirrorSource{
			{Source: "quay.io/openshift-release-dev/ocp-release", Mirrors: []string{"reg.example.com/mirror/openshift/release-images"}},
			{Source: "quay.io/openshift-release-dev/ocp-v4.0-art-dev", Mirrors: []string{"reg.example.com/mirror/openshift/release"}},
		}},
		Operator: MirrorSets{Digest: []mirror.MirrorSource{{Source: "registry.redhat.io/albo", Mirrors: []string{"reg.example.com/mirror/albo"}}}},
		Generic: MirrorSets{
			Digest: []mirror.MirrorSource{{Source: "docker.io/library/nginx", Mirrors: []string{"reg.example.com/mirror/library/nginx"}}},
			Tag:    []mirror.MirrorSource{{Source: "registry.example.com/team/tool", Mirrors: []string{"reg.example.com/mirror/team/tool"}}},
		},
		Catalogs: []RebuiltCatalog{
			{Reference: "reg.example.com/mirror/redhat/redhat-operator-index:v4.16", Digest: digestOf('a')},
			{Reference: "reg.example.com/mirror/catalogs/example:sha256-00000000000000000000000000000000000000000000000000000000000000cc", Digest: digestOf('b')},
			{Reference: "reg.example.com/mirror/my_catalog.index@" + digestOf('c'), Digest: digestOf('c')},
		},
		UpdateService: &UpdateServiceRef{Releases: "reg.example.com/mirror/openshift/release-images", GraphImage: "reg.example.com/mirror/openshift/graph-image@" + digestOf('d')},
		Signatures: []ReleaseSignature{
			{Digest: digestOf('e'), Signatures: [][]byte{[]byte("signature one of e"), []byte("signature two of e")}},
			{Digest: digestOf('f'), Signatures: [][]byte{{0x89, 0x02, 0x00, 0xff}}},
		},
	}},
	{"resources/one-catalog", ClusterResources{
		Catalogs: []RebuiltCatalog{{Reference: "mirror.example.com/community-operators:v1", Digest: digestOf('1')}},
	}},
}

func resourceGoldenNames(t *testing.T) []string {
	var out []string
	for _, c := range resourceGoldenCases {
		files, err := c.res.Files()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, f := range FileNames(files) {
			out = append(out, c.name+"/"+f)
		}
	}
	return out
}

// TestClusterResourcesGolden: every file as written, and the mirror sets
// parsed back by berth policy's strict parser as the cluster's inputs.
func TestClusterResourcesGolden(t *testing.T) {
	for _, tc := range resourceGoldenCases {
		t.Run(tc.name, func(t *testing.T) {
			files, err := tc.res.Files()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range FileNames(files) {
				golden(t, tc.name+"/"+f, files[f])
				var in policy.Inputs
				if ps := in.Parse(f, files[f]); len(ps) > 0 {
					t.Errorf("%s does not parse as cluster input: %v", f, ps)
				}
				if ps := policy.Validate(&in); len(ps) > 0 {
					t.Errorf("%s is not valid cluster input: %v", f, ps)
				}
			}
		})
	}
}

func TestClusterResourcesNames(t *testing.T) {
	cases := []struct {
		name, ref, digest, cs, cc, image string
	}{
		{"tag names it, digest pulls it", "reg.example.com/mirror/redhat/redhat-operator-index:v4.16", digestOf('a'), "cs-redhat-operator-index-v4-16", "cc-redhat-operator-index-v4-16", "reg.example.com/mirror/redhat/redhat-operator-index@" + digestOf('a')},
		{"digest only: the first 12 hex digits", "reg.example.com/x/index@" + digestOf('b'), digestOf('b'), "cs-index-bbbbbbbbbbbb", "cc-index-bbbbbbbbbbbb", "reg.example.com/x/index@" + digestOf('b')},
		{"long tags are cut to 12", "reg.example.com/x/index:v4.16-2025-01-01", digestOf('c'), "cs-index-v4-16-2025-0", "cc-index-v4-16-2025-0", "reg.example.com/x/index@" + digestOf('c')},
		{"long repositories are cut to fit 63", "reg.example.com/x/" + strings.Repeat("a", 80) + ":v1", digestOf('d'), "cs-" + strings.Repeat("a", 57) + "-v1", "cc-" + strings.Repeat("a", 57) + "-v1", "reg.example.com/x/" + strings.Repeat("a", 80) + "@" + digestOf('d')},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, doc, err := CatalogSource(RebuiltCatalog{Reference: tc.ref, Digest: tc.digest})
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.cs || !strings.Contains(string(doc), "image: "+tc.image+"\n") || !strings.Contains(string(doc), "name: "+tc.cs+"\n") {
				t.Errorf("CatalogSource %s:\n%s", n, doc)
			}
			n, doc, err = ClusterCatalog(RebuiltCatalog{Reference: tc.ref, Digest: tc.digest})
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.cc || !strings.Contains(string(doc), "ref: "+tc.image+"\n") {
				t.Errorf("ClusterCatalog %s:\n%s", n, doc)
			}
		})
	}
}

func TestClusterResourcesRejects(t *testing.T) {
	cases := []struct {
		name string
		res  ClusterResources
		want string
	}{
		{"catalog without a digest", ClusterResources{Catalogs: []RebuiltCatalog{{Reference: "reg/x/index:v1"}}}, "digest"},
		{"catalog not a reference", ClusterResources{Catalogs: []RebuiltCatalog{{Reference: "reg/X Y", Digest: digestOf('a')}}}, "not an image reference"},
		{"two catalogs, one name", ClusterResources{Catalogs: []RebuiltCatalog{{Reference: "reg/a/index:v1", Digest: digestOf('a')}, {Reference: "reg/b/index:v1", Digest: digestOf('b')}}}, "make the resource name cs-index-v1"},
		{"releases with a tag", ClusterResources{UpdateService: &UpdateServiceRef{Releases: "reg/openshift/release-images:latest", GraphImage: "reg/g:latest"}}, "without tag or digest"},
		{"signature digest", ClusterResources{Signatures: []ReleaseSignature{{Digest: "sha256:abc", Signatures: [][]byte{{1}}}}}, "release signature digest"},
		{"empty signature", ClusterResources{Signatures: []ReleaseSignature{{Digest: digestOf('a'), Signatures: [][]byte{nil}}}}, "is empty"},
		{"digest twice", ClusterResources{Signatures: []ReleaseSignature{{Digest: digestOf('a'), Signatures: [][]byte{{1}}}, {Digest: digestOf('a'), Signatures: [][]byte{{2}}}}}, "given twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.res.Files()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("nothing to write", func(t *testing.T) {
		files, err := ClusterResources{}.Files()
		if err != nil || len(files) != 0 {
			t.Errorf("Files() = %v, %v; want none", FileNames(files), err)
		}
	})
}
