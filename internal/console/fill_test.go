package console_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/testpeer"
)

// run runs a peer client and returns its trimmed stdout, failing the test
// with its stderr.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return runEnv(t, nil, name, args...)
}

// runEnv is run with extra environment variables.
func runEnv(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testpeer.Need(t, name), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// regctl keeps its config under HOME; keep it out of the user's.
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir()), env...)
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// layer writes a one-file tarball and returns its path.
func layer(t testing.TB, name string, content []byte) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pushImage pushes a one-layer image for platform to ref with crane,
// configured like a real one (entrypoint, cmd, env, labels, user), and
// returns its digest.
func pushImage(t testing.TB, ref, platform string, size int) string {
	t.Helper()
	content := make([]byte, size)
	r := rand.NewChaCha8([32]byte([]byte(fmt.Sprintf("%-32s", ref+platform))))
	_, _ = r.Read(content)
	run(t, "crane", "append", "--oci-empty-base", "-f", layer(t, "data.bin", content), "-t", ref)
	run(t, "crane", "mutate", ref, "--set-platform", platform, "--entrypoint", "/bin/app", "--cmd", "serve,--port=8080",
		"-e", "PATH=/usr/bin:/bin", "-e", "APP_MODE=test", "-l", "org.opencontainers.image.title=demo", "-u", "1000", "-t", ref)
	return run(t, "crane", "digest", ref)
}

type descriptor struct {
	Digest       string `json:"digest"`
	ArtifactType string `json:"artifactType"`
}

// referrers asks the registry's referrers API (anonymous).
func referrers(t testing.TB, host, repo, d string) []descriptor {
	t.Helper()
	resp, err := http.Get("http://" + host + "/v2/" + repo + "/referrers/" + d)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var idx struct{ Manifests []descriptor }
	if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil || resp.StatusCode != 200 {
		t.Fatalf("referrers of %s: %d %v", d, resp.StatusCode, err)
	}
	return idx.Manifests
}

// fixture is what fill pushed.
type fixture struct {
	host string
	// multi:v1 is an index of linux/amd64 and linux/arm64.
	multiDigest string
	// signed:v1 has a cosign-style signature tag, a signature referrer and
	// an SBOM referrer.
	signedDigest string
	sigReferrer  string
	sbomReferrer string
	// many has 200 tags, pushed in pushOrder.
	pushOrder []string
	// plain:v1 is a single-platform image.
	plainDigest string
}

// fill pushes the test content into the registry at host with crane and
// regctl, the way users fill a registry.
func fill(t testing.TB, host string) fixture {
	t.Helper()
	fx := fixture{host: host}
	amd := pushImage(t, host+"/team/multi:amd64", "linux/amd64", 3000)
	arm := pushImage(t, host+"/team/multi:arm64", "linux/arm64/v8", 4000)
	run(t, "crane", "index", "append", "-m", host+"/team/multi@"+amd, "-m", host+"/team/multi@"+arm, "-t", host+"/team/multi:v1")
	fx.multiDigest = run(t, "crane", "digest", host+"/team/multi:v1")

	fx.signedDigest = pushImage(t, host+"/team/signed:v1", "linux/amd64", 2000)
	hexPart := strings.TrimPrefix(fx.signedDigest, "sha256:")
	run(t, "crane", "append", "--oci-empty-base", "-f", layer(t, "signature.json", []byte(`{"critical":{}}`)), "-t", host+"/team/signed:sha256-"+hexPart+".sig")
	regHost := "reg=" + host + ",tls=disabled"
	dir := t.TempDir()
	sig := filepath.Join(dir, "sig.json")
	sbom := filepath.Join(dir, "sbom.json")
	os.WriteFile(sig, []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`), 0o644)
	os.WriteFile(sbom, []byte(`{"spdxVersion":"SPDX-2.3","name":"demo"}`), 0o644)
	run(t, "regctl", "--host", regHost, "artifact", "put", "--subject", host+"/team/signed@"+fx.signedDigest,
		"--artifact-type", "application/vnd.dev.sigstore.bundle.v0.3+json", "-f", sig)
	run(t, "regctl", "--host", regHost, "artifact", "put", "--subject", host+"/team/signed@"+fx.signedDigest,
		"--artifact-type", "application/spdx+json", "-f", sbom)
	for _, d := range referrers(t, host, "team/signed", fx.signedDigest) {
		switch d.ArtifactType {
		case "application/vnd.dev.sigstore.bundle.v0.3+json":
			fx.sigReferrer = d.Digest
		case "application/spdx+json":
			fx.sbomReferrer = d.Digest
		}
	}
	if fx.sigReferrer == "" || fx.sbomReferrer == "" {
		t.Fatalf("the referrers API lists no signature or SBOM for %s after regctl artifact put", fx.signedDigest)
	}

	fx.plainDigest = pushImage(t, host+"/plain:v1", "linux/amd64", 1000)

	base := pushImage(t, host+"/team/many:base", "linux/amd64", 500)
	order := make([]string, 200)
	for i := range order {
		order[i] = fmt.Sprintf("v1.%d", i)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, tag := range order {
		run(t, "crane", "tag", host+"/team/many@"+base, tag)
	}
	fx.pushOrder = append([]string{"base"}, order...)
	return fx
}
