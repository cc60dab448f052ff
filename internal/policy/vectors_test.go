package policy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goldenfile "github.com/berth-registry/berth/internal/golden"
)

// defaultRelease is the vectors' release payload unless a vector's "release" file says otherwise.
const defaultRelease = "quay.io/openshift-release-dev/ocp-release@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// vector is one directory of testdata/vectors: input.yaml (and optionally
// release, imports) in; the rendered node root under expected/, plus
// summary.golden, explain.golden, imports.golden or error.golden beside them.
type vector struct {
	name, dir string
	in        *Inputs
	problems  []Problem
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("testdata", "vectors", "V*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no vectors: %v", err)
	}
	var vs []vector
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "input.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		in := &Inputs{ReleaseImage: defaultRelease}
		if r, err := os.ReadFile(filepath.Join(d, "release")); err == nil {
			in.ReleaseImage = strings.TrimSpace(string(r))
		}
		ps := in.Parse("input.yaml", expandKeys(t, data))
		vs = append(vs, vector{name: filepath.Base(d), dir: d, in: in, problems: ps})
	}
	return vs
}

// golden compares got with the file, or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) { t.Helper(); goldenfile.Check(t, path, got) }

// renderVector renders a vector, or returns its problems as text.
func renderVector(v vector) (*Rendered, string) {
	if len(v.problems) > 0 {
		return nil, (&ValidationError{Problems: v.problems}).Error() + "\n"
	}
	r, err := Render(v.in, StockBase())
	if err != nil {
		return nil, err.Error() + "\n"
	}
	return r, ""
}

func TestPolicyVectorsGolden(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			r, errText := renderVector(v)
			expected := filepath.Join(v.dir, "expected")
			if errText != "" {
				golden(t, filepath.Join(v.dir, "error.golden"), []byte(errText))
				if _, err := os.Stat(expected); err == nil {
					t.Errorf("%s exists but the vector does not render", expected)
				}
				return
			}
			if goldenfile.Update() {
				os.RemoveAll(expected)
			}
			for p, b := range r.Files {
				golden(t, filepath.Join(expected, filepath.FromSlash(p)), b)
			}
			// Every expected file must be rendered: nothing stale in the tree.
			filepath.WalkDir(expected, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(expected, p)
				if _, ok := r.Files[filepath.ToSlash(rel)]; !ok {
					t.Errorf("expected file %s was not rendered", rel)
				}
				return nil
			})
			var sum bytes.Buffer
			for _, w := range r.Warnings {
				fmt.Fprintf(&sum, "warning: %s\n", w)
			}
			base := StockBase()
			sum.WriteString(Summarize(map[string][]byte{RegistriesConfPath: base.RegistriesConf, PolicyJSONPath: base.PolicyJSON}, r.Files).String())
			golden(t, filepath.Join(v.dir, "summary.golden"), sum.Bytes())

			node := loadRendered(t, r.Files)
			var ex bytes.Buffer
			for _, ref := range vectorRefs(v.in) {
				ex.WriteString(explainLine(t, node, ref))
			}
			golden(t, filepath.Join(v.dir, "explain.golden"), ex.Bytes())
			if objs := signatureObjects(v.in); len(objs) > 0 {
				// The text berth policy explain prints, for the first
				// scope of each policy, in the last policy's namespace.
				var txt bytes.Buffer
				ns := objs[len(objs)-1].namespace
				for _, o := range objs {
					ref := o.spec.Scopes[0]
					if validSource(ref) {
						ref = strings.Replace(ref, "*.", "a.", 1) + "/app:v1"
					}
					e, err := node.ExplainWith(ref, ExplainOptions{Namespace: ns})
					if err != nil {
						t.Fatal(err)
					}
					fmt.Fprintf(&txt, "$ berth policy explain %s --namespace %q\n%s\n", ref, ns, e.String())
				}
				golden(t, filepath.Join(v.dir, "explain-text.golden"), txt.Bytes())
			}

			if imp, err := os.ReadFile(filepath.Join(v.dir, "imports")); err == nil {
				var out bytes.Buffer
				for _, line := range strings.Split(strings.TrimSpace(string(imp)), "\n") {
					tr, ref, _ := strings.Cut(line, " ")
					iv, err := ExplainImport(v.in, ref, ImportTransport(tr))
					if err != nil {
						t.Fatal(err)
					}
					verdict := "admitted by " + iv.MatchedBy
					if !iv.Allowed {
						verdict = "FORBIDDEN: " + iv.Reason
					}
					fmt.Fprintf(&out, "%s %s: %s\n", tr, ref, verdict)
					for _, n := range iv.Notes {
						fmt.Fprintf(&out, "    note: %s\n", n)
					}
				}
				golden(t, filepath.Join(v.dir, "imports.golden"), out.Bytes())
			}
		})
	}
}

func loadRendered(t *testing.T, files map[string][]byte) *Node {
	t.Helper()
	n, err := LoadNodeRoot(files)
	if err != nil {
		t.Fatalf("rendered files do not load: %v", err)
	}
	return n
}

// explainLine is one compact line per reference for explain.golden.
func explainLine(t *testing.T, n *Node, ref string) string {
	t.Helper()
	e, err := n.Explain(ref)
	if err != nil {
		t.Fatalf("explain %s: %v", ref, err)
	}
	var srcs []string
	for _, s := range e.PullSources {
		x := s.Reference
		if s.Skipped != "" {
			x = "~" + x + "~"
		}
		if s.Insecure {
			x += "(insecure)"
		}
		if s.Blocked {
			x += "(blocked)"
		}
		if s.Err != "" {
			x += "(error)"
		}
		if s.SigstoreAttachments {
			x += "(sigstore)"
		}
		srcs = append(srcs, x)
	}
	line := fmt.Sprintf("%s\n    %s | policy %s by %q | %s\n", ref, strings.Join(srcs, " -> "), e.Policy.Verdict, e.Policy.Scope, strings.ToUpper(e.Result))
	line += signatureLines("    ", e.Signatures)
	for _, ns := range sortedKeys(n.Namespaces) {
		ne, err := n.ExplainWith(ref, ExplainOptions{Namespace: ns})
		if err != nil {
			t.Fatalf("explain %s in %s: %v", ref, ns, err)
		}
		v := ne.Namespace
		line += fmt.Sprintf("    namespace %s: policy %s by %q\n", ns, v.Policy.Verdict, v.Policy.Scope)
		line += signatureLines("      ", v.Signatures)
	}
	for _, n := range e.Notes {
		line += "    note: " + n + "\n"
	}
	return line
}

func signatureLines(indent string, rules []SignatureRule) string {
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "%ssig %s %s %v", indent, r.Type, r.RootOfTrust, r.Keys)
		if r.Subject != "" {
			fmt.Fprintf(&b, " subject %q", r.Subject)
		}
		if r.Rekor != "" {
			fmt.Fprintf(&b, " rekor %q", r.Rekor)
		}
		fmt.Fprintf(&b, " identity %q needs %s\n", r.Identity, r.Expects)
	}
	return b.String()
}

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// vectorRefs builds a table of references that probe every scope, source and
// mirror a vector names: by tag and by digest, with a subdomain, a port, a
// deeper path, and the bare domain under wildcards.
func vectorRefs(in *Inputs) []string {
	var scopes []string
	if in.Image != nil {
		rs := in.Image.Spec.RegistrySources
		scopes = append(scopes, rs.InsecureRegistries...)
		scopes = append(scopes, rs.BlockedRegistries...)
		scopes = append(scopes, rs.AllowedRegistries...)
		if h := in.Image.Status.InternalRegistryHostname; h != "" {
			scopes = append(scopes, h+"/ns")
		}
	}
	for _, e := range mirrorEntries(in) {
		scopes = append(scopes, e.set.Source)
		scopes = append(scopes, e.set.Mirrors...)
	}
	var exact []string // scopes naming one image: probed as written
	for _, o := range signatureObjects(in) {
		for _, s := range o.spec.Scopes {
			if ValidatePolicyScope(s) == "" && !validSource(s) {
				exact = append(exact, s)
			} else {
				scopes = append(scopes, s)
			}
		}
		if id := o.spec.Policy.SignedIdentity; id != nil {
			if id.ExactRepository != nil {
				scopes = append(scopes, id.ExactRepository.Repository)
			}
			if id.RemapIdentity != nil {
				scopes = append(scopes, id.RemapIdentity.Prefix, id.RemapIdentity.SignedPrefix)
			}
		}
	}
	seen := map[string]bool{}
	var refs []string
	add := func(name string) {
		for _, r := range []string{name + ":v1", name + "@" + testDigest} {
			if _, err := ParseImageRef(r); err == nil && !seen[r] {
				seen[r] = true
				refs = append(refs, r)
			}
		}
	}
	if in.ReleaseImage != "" {
		if r, err := ParseImageRef(in.ReleaseImage); err == nil {
			add(r.Name())
		}
	}
	for _, s := range scopes {
		if !validSource(s) {
			continue
		}
		if isWildcard(s) {
			d := s[2:]
			add("a." + d + "/app")
			add("a.b." + d + "/app")
			add("a." + d + ":5000/app")
			add(d + "/app")
			continue
		}
		host, path, _ := strings.Cut(s, "/")
		rest := ""
		if path != "" {
			rest = "/" + path
		}
		add(s + "/app")
		add(s + "/app/deeper")
		if !strings.Contains(host, ":") {
			add(host + ":5000" + rest + "/app")
		}
		add("sub." + host + rest + "/app")
	}
	for _, s := range exact {
		if _, err := ParseImageRef(s); err == nil && !seen[s] {
			seen[s] = true
			refs = append(refs, s)
		}
	}
	add("docker.io/library/busybox")
	return refs
}
