package policy

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyImportsStayPure keeps the package a pure renderer: the standard
// library (without os, net or os/exec) plus the YAML, TOML and reference
// parsers. The runtime's library may appear in tests only.
func TestPolicyImportsStayPure(t *testing.T) {
	allowed := map[string]bool{
		"sigs.k8s.io/yaml":                  true,
		"github.com/BurntSushi/toml":        true,
		"github.com/distribution/reference": true,
	}
	forbidden := map[string]bool{"os": true, "os/exec": true, "net": true, "net/http": true, "io/ioutil": true}
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			stdlib := !strings.Contains(strings.Split(p, "/")[0], ".")
			if forbidden[p] || (!stdlib && !allowed[p]) {
				t.Errorf("%s imports %s, which a pure policy renderer must not", f, p)
			}
		}
	}
}
