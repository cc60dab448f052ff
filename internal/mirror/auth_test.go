package mirror

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// installHelper puts docker-credential-NAME on PATH: a script speaking the
// credential-helper protocol (server URL on stdin, JSON on stdout) that
// knows one server.
func installHelper(t *testing.T, helper, server, user, secret string) {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
[ "$1" = get ] || exit 1
read -r url
if [ "$url" = "` + server + `" ]; then
  printf '{"ServerURL":"%s","Username":"` + user + `","Secret":"` + secret + `"}' "$url"
else
  echo "credentials not found in native keychain"
  exit 1
fi
`
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+helper), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestFileKeychain(t *testing.T) {
	installHelper(t, "berthhelper", "helped.example.com", "helper-user", "helper-secret")
	installHelper(t, "berthstore", "https://index.docker.io/v1/", "<token>", "hub-token")
	installHelper(t, "berthbroken", "", "", "")
	os.WriteFile(filepath.Join(filepath.SplitList(os.Getenv("PATH"))[0], "docker-credential-berthbroken"), []byte("#!/bin/sh\necho 'keychain locked' >&2\nexit 3\n"), 0o755)
	dir := t.TempDir()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	first := filepath.Join(dir, "pull-secret.json")
	second := filepath.Join(dir, "config.json")
	os.WriteFile(first, []byte(`{"auths":{
		"quay.io":{"auth":"`+b64("quay-user:quay-pass")+`"},
		"quay.io/team":{"auth":"`+b64("team-user:team-pass")+`"}}}`), 0o600)
	os.WriteFile(second, []byte(`{"auths":{
		"quay.io":{"auth":"`+b64("later:ignored")+`"},
		"helped.example.com":{},
		"https://index.docker.io/v1/":{}},
		"credHelpers":{"helped.example.com":"berthhelper","broken.example.com":"berthbroken","missing.example.com":"berthmissing"},
		"credsStore":"berthstore"}`), 0o600)
	kc := NewFileKeychain([]string{first, second}, true, nil)
	if err := kc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, repo string
		want       authn.AuthConfig
		wantErr    bool
	}{
		{"first file wins", "quay.io/other/app", authn.AuthConfig{Username: "quay-user", Password: "quay-pass"}, false},
		{"longest key wins", "quay.io/team/app", authn.AuthConfig{Username: "team-user", Password: "team-pass"}, false},
		{"empty entry falls to credHelpers", "helped.example.com/app", authn.AuthConfig{Username: "helper-user", Password: "helper-secret"}, false},
		{"credsStore with an identity token", "docker.io/library/busybox", authn.AuthConfig{IdentityToken: "hub-token"}, false},
		{"store knows nothing: anonymous", "unknown.example.com/app", authn.AuthConfig{}, false},
		{"a helper that fails is an error naming it", "broken.example.com/app", authn.AuthConfig{}, true},
		{"a helper not installed: anonymous", "missing.example.com/app", authn.AuthConfig{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo, err := name.NewRepository(tc.repo)
			if err != nil {
				t.Fatal(err)
			}
			a, err := kc.Resolve(repo)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "docker-credential-berthbroken") {
					t.Fatalf("Resolve(%s) = %v, %v; want an error naming the helper", tc.repo, a, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.Authorization()
			if err != nil {
				t.Fatal(err)
			}
			if *got != tc.want {
				t.Errorf("Resolve(%s) = %+v, want %+v", tc.repo, *got, tc.want)
			}
		})
	}
}
