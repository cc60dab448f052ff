package clients_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/server/servertest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/crypto/bcrypt"
)

const authSecret = "berth-clients-test-secret-0123456789"

// startAuthServer runs berth serve with access control on: viewer may pull
// and editor may push under auth/, the robot user ci-bot may push under
// auth/ci, and nobody else may do anything.
func startAuthServer(t *testing.T) string {
	t.Helper()
	var lines []string
	for _, u := range []string{"viewer", "editor"} {
		b, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, u+":"+string(b))
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return servertest.Start(t, servertest.Options{Auth: &config.Auth{
		Htpasswd:    file,
		TokenSecret: authSecret,
		RoleBindings: []config.RoleBinding{
			{Role: "registry-viewer", Namespace: "auth", Users: []string{"viewer"}},
			{Role: "registry-editor", Namespace: "auth", Users: []string{"editor"}},
			{Role: "registry-editor", Namespace: "auth/ci", Users: []string{"ci-bot"}},
		},
	}})
}

// authedDigest reads a manifest's digest over HTTP with Basic credentials,
// and checks an anonymous read is challenged.
func authedDigest(t *testing.T, host, user, repo, ref string) string {
	t.Helper()
	get := func(withCreds bool) *http.Response {
		req, err := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", acceptAll)
		if withCreds {
			req.SetBasicAuth(user, user+"-pw")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := get(false); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="http://`+host+`/v2/token"`) {
		t.Errorf("anonymous HEAD %s:%s → %d %q, want a 401 challenge", repo, ref, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp := get(true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s:%s as %s → %d", repo, ref, user, resp.StatusCode)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// wantRefused requires a client failure that names the refusal the way
// the client reports it: denied or unauthorized unless other words are
// given.
func wantRefused(t *testing.T, what string, err error, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded; want it refused", what)
	}
	if len(words) == 0 {
		words = []string{"denied", "unauthorized"}
	}
	msg := strings.ToLower(err.Error())
	for _, w := range words {
		if strings.Contains(msg, w) {
			t.Logf("%s refused: %s", what, lastLine(err.Error()))
			return
		}
	}
	t.Errorf("%s failed, but not with any of %q:\n%v", what, words, err)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// TestAuthCrane logs in with crane auth login (user and password, and a
// robot token as the password) and pushes and pulls through the token flow.
func TestAuthCrane(t *testing.T) {
	host := startAuthServer(t)
	img := ociImage(t, "amd64")
	want := digestOf(t, img)
	dir := writeLayout(t, filepath.Join(t.TempDir(), "src"), map[string]v1.Image{"v1": img}, nil)
	as := func(user, password string) []string {
		env := []string{"DOCKER_CONFIG=" + t.TempDir(), "HOME=" + t.TempDir()}
		run(t, env, "crane", "auth", "login", host, "-u", user, "-p", password)
		return env
	}
	editor, viewer := as("editor", "editor-pw"), as("viewer", "viewer-pw")

	run(t, editor, "crane", "--insecure", "push", dir, host+"/auth/crane:v1")
	if got := authedDigest(t, host, "viewer", "auth/crane", "v1"); got != want.String() {
		t.Errorf("pushed %s, registry serves %s", want, got)
	}
	if got := strings.TrimSpace(run(t, viewer, "crane", "--insecure", "digest", host+"/auth/crane:v1")); got != want.String() {
		t.Errorf("viewer's crane digest = %s, want %s", got, want)
	}
	out := filepath.Join(t.TempDir(), "pulled")
	run(t, viewer, "crane", "--insecure", "pull", "--format", "oci", host+"/auth/crane:v1", out)
	if got := layoutDigest(t, out, ""); got != want {
		t.Errorf("viewer pulled %s, want %s", got, want)
	}
	_, err := runErr(t, viewer, "crane", "--insecure", "push", dir, host+"/auth/crane:viewer")
	wantRefused(t, "crane push as viewer", err)
	_, err = runErr(t, nil, "crane", "--insecure", "digest", host+"/auth/crane:v1")
	wantRefused(t, "anonymous crane digest", err)
	_, err = runErr(t, as("editor", "wrong"), "crane", "--insecure", "digest", host+"/auth/crane:v1")
	wantRefused(t, "crane with a wrong password", err)

	robot, err := auth.NewRobotToken(auth.SigningKey(authSecret, ""), "ci-bot", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bot := as("ci-bot", robot)
	run(t, bot, "crane", "--insecure", "push", dir, host+"/auth/ci/crane:v1")
	_, err = runErr(t, bot, "crane", "--insecure", "push", dir, host+"/auth/crane:bot")
	// crane's first request there is a HEAD, whose 403 has no body.
	wantRefused(t, "robot push outside its namespace", err, "denied", "403 forbidden")
}

// TestAuthSkopeo copies with --dest-creds and --src-creds.
func TestAuthSkopeo(t *testing.T) {
	host := startAuthServer(t)
	skopeo := skopeoFor(t)
	img := ociImage(t, "arm64")
	want := digestOf(t, img)
	src := writeLayout(t, filepath.Join(t.TempDir(), "src"), map[string]v1.Image{"v1": img}, nil)
	cp := []string{"copy", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"}

	skopeo(t, append(cp, "--dest-creds", "editor:editor-pw", "oci:"+src+":v1", "docker://"+host+"/auth/skopeo:v1")...)
	if got := authedDigest(t, host, "editor", "auth/skopeo", "v1"); got != want.String() {
		t.Errorf("pushed %s, registry serves %s", want, got)
	}
	out := filepath.Join(t.TempDir(), "out")
	skopeo(t, append(cp, "--src-creds", "viewer:viewer-pw", "docker://"+host+"/auth/skopeo:v1", "oci:"+out+":v1")...)
	if got := layoutDigest(t, out, "v1"); got != want {
		t.Errorf("viewer copied out %s, want %s", got, want)
	}
	policy := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + t.TempDir(), "REGISTRY_AUTH_FILE=" + filepath.Join(t.TempDir(), "auth.json")}
	_, err := runErr(t, env, "skopeo", append([]string{"--policy", policy}, append(cp, "--dest-creds", "viewer:viewer-pw", "oci:"+src+":v1", "docker://"+host+"/auth/skopeo:viewer")...)...)
	wantRefused(t, "skopeo copy --dest-creds viewer", err)
}

// TestAuthPodman logs in with podman login and pushes and pulls.
func TestAuthPodman(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the podman round trip runs as root")
	}
	host := startAuthServer(t)
	id := strings.ToLower(randomTag())
	name := host + "/auth/podman-" + id + ":v1"
	authFile := filepath.Join(t.TempDir(), "auth.json")
	env := []string{"REGISTRY_AUTH_FILE=" + authFile}
	podman := func(t *testing.T, args ...string) string {
		t.Helper()
		return strings.TrimSpace(run(t, env, "podman", args...))
	}
	t.Cleanup(func() { _, _ = runErr(t, nil, "podman", "rmi", "--force", "--ignore", name, name+"-again") })

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte("FROM scratch\nLABEL org.example.run="+id+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	podman(t, "build", "--quiet", "--tag", name, "--file", filepath.Join(dir, "Containerfile"), dir)

	_, err := runErr(t, env, "podman", "login", "--tls-verify=false", "-u", "editor", "-p", "wrong", host)
	wantRefused(t, "podman login with a wrong password", err, "invalid username/password")

	podman(t, "login", "--tls-verify=false", "-u", "editor", "-p", "editor-pw", host)
	digestFile := filepath.Join(t.TempDir(), "digest")
	podman(t, "push", "--tls-verify=false", "--digestfile", digestFile, name)
	b, err := os.ReadFile(digestFile)
	if err != nil {
		t.Fatal(err)
	}
	pushed := strings.TrimSpace(string(b))
	if got := authedDigest(t, host, "viewer", "auth/podman-"+id, "v1"); got != pushed {
		t.Errorf("podman pushed %s, registry serves %s", pushed, got)
	}

	podman(t, "logout", host)
	podman(t, "login", "--tls-verify=false", "-u", "viewer", "-p", "viewer-pw", host)
	podman(t, "rmi", name)
	podman(t, "pull", "--quiet", "--tls-verify=false", name)
	if got := podman(t, "image", "inspect", "--format", "{{.Digest}}", name); got != pushed {
		t.Errorf("viewer pulled %s, want %s", got, pushed)
	}
	podman(t, "tag", name, name+"-again")
	_, err = runErr(t, env, "podman", "push", "--tls-verify=false", name+"-again")
	wantRefused(t, "podman push as viewer", err)
}

// TestAuthRegctl logs in with regctl registry login and copies.
func TestAuthRegctl(t *testing.T) {
	host := startAuthServer(t)
	img := ociImage(t, "amd64")
	want := digestOf(t, img)
	src := writeLayout(t, filepath.Join(t.TempDir(), "src"), map[string]v1.Image{"v1": img}, nil)
	as := func(user string) []string {
		env := []string{"HOME=" + t.TempDir()}
		run(t, env, "regctl", "registry", "set", "--tls", "disabled", host)
		run(t, env, "regctl", "registry", "login", host, "-u", user, "-p", user+"-pw")
		return env
	}
	editor, viewer := as("editor"), as("viewer")
	run(t, editor, "regctl", "image", "copy", "ocidir://"+src+":v1", host+"/auth/regctl:v1")
	if got := authedDigest(t, host, "viewer", "auth/regctl", "v1"); got != want.String() {
		t.Errorf("regctl pushed %s, registry serves %s", want, got)
	}
	if got := strings.TrimSpace(run(t, viewer, "regctl", "image", "digest", host+"/auth/regctl:v1")); got != want.String() {
		t.Errorf("viewer's regctl image digest = %s, want %s", got, want)
	}
	_, err := runErr(t, viewer, "regctl", "image", "copy", "ocidir://"+src+":v1", host+"/auth/regctl:viewer")
	wantRefused(t, "regctl image copy as viewer", err)
}
