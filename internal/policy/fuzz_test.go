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
		for _, ref := range vectorRefs(in) {
			if _, err := node.Explain(ref); err != nil {
				t.Fatalf("explain %s: %v", ref, err)
			}
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
