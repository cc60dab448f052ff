package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/berth-registry/berth"

// fences: an import prefix, and the only packages (prefixes) allowed to
// import it in non-test code.
var fences = []struct {
	imp     string
	allowed []string
}{
	{"modernc.org/sqlite", []string{module + "/internal/metadata"}},
	{"github.com/jackc/pgx", []string{module + "/internal/metadata"}},
	{"gocloud.dev", []string{module + "/internal/storage"}},
	{"github.com/aws/", []string{module + "/internal/storage"}},
	{"cloud.google.com/", []string{module + "/internal/storage"}},
	{"github.com/Azure/", []string{module + "/internal/storage"}},
	{"github.com/google/go-containerregistry", []string{module + "/internal/mirror"}},
	{"go.podman.io/image", []string{module + "/internal/nodeverify"}},
	{"github.com/spf13/cobra", []string{module + "/cmd/"}},
	{"github.com/golang-jwt/jwt", []string{module + "/internal/auth"}},
	{"golang.org/x/crypto/bcrypt", []string{module + "/internal/auth"}},
	{"net/http", []string{module + "/internal/oci", module + "/internal/api", module + "/internal/console", module + "/internal/events", module + "/internal/server", module + "/internal/mirror", module + "/internal/pullthrough/pullthroughtest", module + "/internal/bench", module + "/internal/testpeer", module + "/conformance", module + "/cmd/"}},
}

func TestDependencyFence(t *testing.T) {
	// With the build tag every build of Berth carries, so the container
	// runtime library's importer is seen.
	out, err := exec.Command("go", "list", "-tags", "containers_image_openpgp", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkgs[f[0]] = f[1:]
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	allowed := func(pkg string, list []string) bool {
		for _, a := range list {
			if pkg == strings.TrimSuffix(a, "/") || strings.HasPrefix(pkg, a) || strings.HasPrefix(pkg, a+"/") {
				return true
			}
		}
		return false
	}
	for pkg, imps := range pkgs {
		for _, imp := range imps {
			for _, f := range fences {
				if strings.HasPrefix(imp, f.imp) && !allowed(pkg, f.allowed) {
					t.Errorf("%s imports %s; only %v may", pkg, imp, f.allowed)
				}
			}
			// Pure packages.
			if pkg == module+"/internal/oci" && strings.HasPrefix(imp, module) {
				t.Errorf("internal/oci must import nothing of Berth's, imports %s", imp)
			}
			if pkg == module+"/conformance" && strings.HasPrefix(imp, module) {
				t.Errorf("the conformance suite must run against any registry, but imports %s", imp)
			}
			if pkg == module+"/internal/registry" && imp == "net/http" {
				t.Errorf("internal/registry must not speak HTTP")
			}
			if pkg == module+"/internal/events" && (imp == module+"/internal/api" || imp == module+"/internal/registry" || imp == module+"/internal/server") {
				t.Errorf("internal/events sends webhooks; it must not import the API, the registry or the server (%s)", imp)
			}
		}
	}
}
