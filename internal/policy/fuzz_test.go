package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzPolicyInputs: any bytes parse without panicking; inputs with a problem
// never render (so the command never writes a file); inputs that render
// produce files that load back.
func FuzzPolicyInputs(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "vectors", "*", "input.yaml"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err == nil {
			f.Add(expandKeys(f, b))
		}
	}
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\ndata: {\"h..1\": \"x\"}\n"))
	f.Add([]byte("apiVersion: config.openshift.io/v1\nkind: Image\nspec: {registrySources: {blockedRegistries: [\"*.a\"]}}\n---\napiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nspec: {imageDigestMirrors: [{source: \"*.a\", mirrors: [b.a/c]}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &Inputs{ReleaseImage: defaultRelease}
		ps := in.Parse("fuzz.yaml", data)
		r, err := Render(in, StockBase())
		if len(ps) > 0 {
			// The command stops at parse problems; Render on the partial inputs must still be safe.
			_ = r
			return
		}
		if vs := Validate(in); len(vs) > 0 {
			var ve *ValidationError
			if r != nil || !errors.As(err, &ve) {
				t.Fatalf("invalid inputs rendered: %v / %v", vs, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid inputs failed to render: %v", err)
		}
		for p := range r.Files {
			if strings.Contains(p, "..") || strings.HasPrefix(p, "/") {
				t.Fatalf("rendered path %q escapes the root", p)
			}
		}
		node := loadRendered(t, r.Files)
		for ns := range in.imagePolicyNamespaces() {
			if _, ok := r.Files[CRIOPolicyPath(ns)]; !ok && len(in.ClusterImagePolicies) == 0 {
				t.Fatalf("namespace %s has an ImagePolicy but no %s", ns, CRIOPolicyPath(ns))
			}
		}
		for _, ref := range vectorRefs(in) {
			if _, err := node.Explain(ref); err != nil {
				t.Fatalf("explain %s: %v", ref, err)
			}
			for ns := range node.Namespaces {
				if _, err := node.ExplainWith(ref, ExplainOptions{Namespace: ns}); err != nil {
					t.Fatalf("explain %s in %s: %v", ref, ns, err)
				}
			}
		}
	})
}

func (in *Inputs) imagePolicyNamespaces() map[string]bool {
	m := map[string]bool{}
	for _, p := range in.ImagePolicies {
		m[p.Metadata.Namespace] = true
	}
	return m
}

// FuzzPolicySignatureFiles: registries.d files and CRI-O namespace
// policies read from a node root never panic the loader or explain.
func FuzzPolicySignatureFiles(f *testing.F) {
	roots, _ := filepath.Glob(filepath.Join("testdata", "vectors", "*", "expected"))
	for _, root := range roots {
		regd, _ := os.ReadFile(filepath.Join(root, filepath.FromSlash(SigstoreRegistriesPath)))
		crio, _ := filepath.Glob(filepath.Join(root, filepath.FromSlash(CRIOPoliciesDir), "*.json"))
		var pol []byte
		if len(crio) > 0 {
			pol, _ = os.ReadFile(crio[0])
		}
		if regd != nil || pol != nil {
			f.Add(regd, pol, "quay.io/acme/app:v1")
		}
	}
	f.Add([]byte("default-docker: {use-sigstore-attachments: false}\ndocker: {\"*.example.com\": {use-sigstore-attachments: true}}\n"), []byte(`{"default":[{"type":"sigstoreSigned","keyData":"AAAA","signedIdentity":{"type":"remapIdentity","prefix":"a.example.com","signedPrefix":"b.example.com/x"}}]}`), "a.example.com/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	f.Add([]byte("docker: [1, 2]"), []byte(`{"default":[{"type":"signedBy","keyType":"GPGKeys","keyData":"AAAA"}],"transports":{"docker":{"a.io":[{"type":"sigstoreSigned","pki":{"caRootsData":"AAAA"}}]}}}`), "a.io/x:1")
	f.Fuzz(func(t *testing.T, regd, crioPolicy []byte, ref string) {
		base := StockBase()
		n, err := LoadNode(NamedFile{RegistriesConfPath, base.RegistriesConf}, nil, NamedFile{PolicyJSONPath, base.PolicyJSON})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.LoadSignatureFiles([]NamedFile{{SigstoreRegistriesPath, regd}}, []NamedFile{{CRIOPolicyPath("ns"), crioPolicy}}); err != nil {
			return
		}
		if e, err := n.ExplainWith(ref, ExplainOptions{Namespace: "ns"}); err == nil {
			_ = e.String()
		}
	})
}

// FuzzPolicyScope: a scope the validator accepts renders into a
// registries.conf and policy.json that load, and matching never panics.
func FuzzPolicyScope(f *testing.F) {
	for _, s := range []string{"quay.io", "*.example.com", "a.io:5000/ns/repo", "*.example.com/foo", "quay.io/ns:tag", "", "**.x", "a..b", "*.", "x/Y", "localhost:1"} {
		f.Add(s, "a.example.com:5000/ns/app")
	}
	f.Fuzz(func(t *testing.T, scope, ref string) {
		_ = refMatchingPrefix(ref, scope)
		_ = nestedScope(ref, scope)
		_ = policyNamespaces(ref)
		_ = wildcardMatch(scope, ref)
		if ValidateScope(ScopeBlocked, scope) != "" {
			return
		}
		in := &Inputs{Image: &Image{}}
		in.Image.Spec.RegistrySources.BlockedRegistries = []string{scope}
		in.Image.Spec.RegistrySources.InsecureRegistries = []string{scope}
		r, err := Render(in, StockBase())
		if err != nil {
			t.Fatalf("valid scope %q does not render: %v", scope, err)
		}
		node := loadRendered(t, r.Files)
		if e, err := node.Explain(ref); err == nil && e.Registry == scope && !e.Blocked {
			t.Fatalf("%s matches blocked scope %q but is not blocked", ref, scope)
		}
	})
}
