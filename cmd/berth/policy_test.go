package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const policyTestImage = `apiVersion: config.openshift.io/v1
kind: Image
metadata: {name: cluster}
spec:
  registrySources:
    blockedRegistries: [blocked.example.com]
    insecureRegistries: [insecure.example.com]
`

const policyTestIDMS = `apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata: {name: quay}
spec:
  imageDigestMirrors:
  - source: quay.io/org
    mirrors: [mirror.example.com/org]
`

const policyRelease = "quay.io/openshift-release-dev/ocp-release@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestPolicyRenderWritesRootAndSummarizes(t *testing.T) {
	dir := t.TempDir()
	inputs := filepath.Join(dir, "inputs")
	writeFile(t, filepath.Join(inputs, "image.yaml"), policyTestImage)
	writeFile(t, filepath.Join(inputs, "mirrors", "idms.yml"), policyTestIDMS)
	writeFile(t, filepath.Join(inputs, "README.txt"), "not an input")
	out := filepath.Join(dir, "root")

	stdout, _, err := runBerth(t, "policy", "render", "--release-image", policyRelease, "--out", out, inputs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"changed   etc/containers/registries.conf → drain", "changed   etc/containers/policy.json → reload", "node action: drain"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	conf, err := os.ReadFile(filepath.Join(out, "etc/containers/registries.conf"))
	if err != nil || !bytes.Contains(conf, []byte(`location = "mirror.example.com/org"`)) {
		t.Fatalf("registries.conf: %v\n%s", err, conf)
	}

	// The same inputs again: nothing changes, nothing to do.
	stdout, _, err = runBerth(t, "policy", "render", "--release-image", policyRelease, "--out", out, inputs)
	if err != nil || !strings.Contains(stdout, "node action: none") || strings.Contains(stdout, "  changed ") {
		t.Errorf("re-render: %v\n%s", err, stdout)
	}

	// Only a digest mirror more: a reload, no drain.
	writeFile(t, filepath.Join(inputs, "mirrors", "more.yaml"), strings.ReplaceAll(strings.ReplaceAll(policyTestIDMS, "quay.io/org", "quay.io/other"), "name: quay", "name: other"))
	stdout, _, err = runBerth(t, "policy", "render", "--release-image", policyRelease, "--out", out, inputs)
	if err != nil || !strings.Contains(stdout, "node action: reload") {
		t.Errorf("adding a digest mirror: %v\n%s", err, stdout)
	}
	// Nothing is left beside the root.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("%d entries beside the root, want inputs and root only: %v", len(entries), entries)
	}
}

func TestPolicyRenderMalformedInputWritesNothing(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, filepath.Join(dir, "good.yaml"), policyTestIDMS)
	bad := writeFile(t, filepath.Join(dir, "bad.yaml"), strings.Replace(policyTestImage, "blocked.example.com", `"*.example.com/ns"`, 1))
	out := filepath.Join(dir, "root")
	if _, _, err := runBerth(t, "policy", "render", "--out", out, good, bad); err == nil || !strings.Contains(err.Error(), `invalid entry for blocked registries "*.example.com/ns"`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed render created %s", out)
	}
	// An existing root is left exactly as it was.
	if _, _, err := runBerth(t, "policy", "render", "--out", out, good); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(out, "etc/containers/registries.conf"))
	if _, _, err := runBerth(t, "policy", "render", "--out", out, good, bad); err == nil {
		t.Fatal("bad input rendered")
	}
	after, _ := os.ReadFile(filepath.Join(out, "etc/containers/registries.conf"))
	if !bytes.Equal(before, after) {
		t.Error("a failed render changed the existing root")
	}
}

func TestPolicyRenderRefusesForeignRoot(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, filepath.Join(dir, "in.yaml"), policyTestIDMS)
	out := filepath.Join(dir, "root")
	writeFile(t, filepath.Join(out, "etc", "passwd"), "root:x:0:0")
	if _, _, err := runBerth(t, "policy", "render", "--out", out, in); err == nil || !strings.Contains(err.Error(), "etc/passwd") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "etc", "passwd")); string(b) != "root:x:0:0" {
		t.Error("foreign file touched")
	}
}

func TestPolicyRenderBaseOverrides(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, filepath.Join(dir, "in.yaml"), policyTestImage)
	baseConf := writeFile(t, filepath.Join(dir, "base.conf"), "unqualified-search-registries = ['example.org']\nshort-name-mode = 'enforcing'\n")
	basePol := writeFile(t, filepath.Join(dir, "base.json"), `{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"registry.redhat.io":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-release"}]}}}`)
	out := filepath.Join(dir, "root")
	if _, _, err := runBerth(t, "policy", "render", "--out", out, "--base-registries-conf", baseConf, "--base-policy", basePol, in); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(filepath.Join(out, "etc/containers/registries.conf"))
	pol, _ := os.ReadFile(filepath.Join(out, "etc/containers/policy.json"))
	if !bytes.Contains(conf, []byte(`short-name-mode = "enforcing"`)) || !bytes.Contains(conf, []byte(`"example.org"`)) {
		t.Errorf("base registries.conf lost:\n%s", conf)
	}
	if !bytes.Contains(pol, []byte(`"signedBy"`)) || !bytes.Contains(pol, []byte(`"blocked.example.com"`)) {
		t.Errorf("base policy lost:\n%s", pol)
	}
}

func TestPolicyCheckReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, filepath.Join(dir, "a.yaml"), `apiVersion: config.openshift.io/v1
kind: Image
metadata: {name: cluster}
spec:
  registrySources:
    blockedRegistries: ["", "quay.io/ns/img:latest"]
    allowedRegistries: [a.io]
`)
	b := writeFile(t, filepath.Join(dir, "b.yaml"), `apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata: {name: x}
spec:
  imageDigestMirrors:
  - {source: "*.a.io/ns", mirrors: ["*.b.io"]}
  - {source: c.io, mirrors: [m.io, c.io], mirrorSourcePolicy: NeverContactSource}
`)
	stdout, _, err := runBerth(t, "policy", "check", a, b)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err = %v, want exit code 1", err)
	}
	for _, want := range []string{
		"a.yaml: document 0 (line 6): spec.registrySources.blockedRegistries[0]: invalid entry for blocked registries \"\"",
		"spec.registrySources.blockedRegistries[1]: invalid entry for blocked registries \"quay.io/ns/img:latest\"",
		"spec.registrySources: Only one of blockedRegistries or allowedRegistries may be set",
		"b.yaml: document 0 (line 6): spec.imageDigestMirrors[0].source: invalid format for source \"*.a.io/ns\"",
		"spec.imageDigestMirrors[0].mirrors[0]: invalid format for mirror \"*.b.io\"",
		"spec.imageDigestMirrors[1].mirrorSourcePolicy: cannot set mirrorSourcePolicy: NeverContactSource if the source \"c.io\" is one of the mirrors",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("check output lacks %q:\n%s", want, stdout)
		}
	}
	if n := strings.Count(stdout, "\n"); n != 6 {
		t.Errorf("%d problems reported, want 6:\n%s", n, stdout)
	}

	ok := writeFile(t, filepath.Join(dir, "ok", "idms.yaml"), policyTestIDMS)
	if stdout, _, err := runBerth(t, "policy", "check", ok); err != nil || stdout != "ok\n" {
		t.Errorf("valid input: %v %q", err, stdout)
	}
	if _, _, err := runBerth(t, "policy", "check", "--release-image", "not-qualified", ok); !errors.As(err, &ee) {
		t.Errorf("bad --release-image: %v", err)
	}
}

func TestPolicyExplain(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	writeFile(t, filepath.Join(in, "image.yaml"), policyTestImage)
	writeFile(t, filepath.Join(in, "idms.yaml"), policyTestIDMS)
	out := filepath.Join(dir, "root")
	if _, _, err := runBerth(t, "policy", "render", "--out", out, in); err != nil {
		t.Fatal(err)
	}
	digest := "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	stdout, _, err := runBerth(t, "policy", "explain", "--root", out, "quay.io/org/app"+digest)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1. mirror mirror.example.com/org/app" + digest, "2. source quay.io/org/app" + digest, "result: pullable"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("explain lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, _ = runBerth(t, "policy", "explain", "--root", out, "quay.io/org/app:1")
	if !strings.Contains(stdout, "skipped, digest-only mirror; the reference is by tag") {
		t.Errorf("tag pull:\n%s", stdout)
	}
	stdout, _, err = runBerth(t, "policy", "explain", "--root", out, "-o", "json", "blocked.example.com/a/b:1")
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Blocked bool `json:"blocked"`
		Policy  struct {
			Scope   string `json:"scope"`
			Allowed bool   `json:"allowed"`
		} `json:"policy"`
	}
	if err := json.Unmarshal([]byte(stdout), &e); err != nil || !e.Blocked || e.Policy.Allowed || e.Policy.Scope != "blocked.example.com" {
		t.Errorf("json: %v %+v\n%s", err, e, stdout)
	}

	// --import reads the inputs, not the root.
	img := writeFile(t, filepath.Join(dir, "import.yaml"), `apiVersion: config.openshift.io/v1
kind: Image
metadata: {name: cluster}
spec:
  allowedRegistriesForImport: [{domainName: registry.redhat.io}]
status: {internalRegistryHostname: "image-registry.openshift-image-registry.svc:5000"}
`)
	stdout, _, err = runBerth(t, "policy", "explain", "--import", "-f", img, "quay.io/x:1")
	if err != nil || !strings.Contains(stdout, `forbidden: registry "quay.io" not allowed by whitelist: "image-registry.openshift-image-registry.svc:5000", "registry.redhat.io:443"`) {
		t.Errorf("import: %v\n%s", err, stdout)
	}
	stdout, _, err = runBerth(t, "policy", "explain", "--import", "-f", img, "-o", "json", "registry.redhat.io/ubi9/ubi:latest")
	if err != nil || !strings.Contains(stdout, `"allowed": true`) {
		t.Errorf("import json: %v\n%s", err, stdout)
	}
}

func TestPolicyHelpExplainsFlags(t *testing.T) {
	for _, c := range []struct {
		cmd   string
		flags []string
	}{
		{"render", []string{"--out", "--release-image", "--base-registries-conf", "--base-policy"}},
		{"check", []string{"--release-image"}},
		{"explain", []string{"--root", "--output", "--import", "--file", "--transport"}},
	} {
		stdout, _, err := runBerth(t, "policy", c.cmd, "--help")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range c.flags {
			if !strings.Contains(stdout, f) {
				t.Errorf("%s --help lacks %s", c.cmd, f)
			}
		}
	}
}

// TestPolicyRenderRelativeOut renders into a root given as a relative path,
// as a user typing `--out node-root` does.
func TestPolicyRenderRelativeOut(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeFile(t, "image.yaml", policyTestImage)
	if _, errOut, err := runBerth(t, "policy", "render", "--out", "node-root", "--release-image", policyRelease, "image.yaml"); err != nil {
		t.Fatalf("render --out node-root: %v\n%s", err, errOut)
	}
	got, err := os.ReadFile(filepath.Join(dir, "node-root", "etc", "containers", "registries.conf"))
	if err != nil || !bytes.Contains(got, []byte("blocked.example.com")) {
		t.Fatalf("registries.conf under the relative root: %v\n%s", err, got)
	}
	if _, errOut, err := runBerth(t, "policy", "explain", "--root", "node-root", "blocked.example.com/a/b:1"); err != nil {
		t.Fatalf("explain --root node-root: %v\n%s", err, errOut)
	}
}
