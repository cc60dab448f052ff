package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/pullthrough/pullthroughtest"
	"github.com/berth-registry/berth/internal/server/servertest"
)

func TestImportCommand(t *testing.T) {
	upAddr := servertest.Start(t, servertest.Options{})
	img := (&pullthroughtest.Client{Base: "http://" + upAddr}).PushImage(t, "team/app", "v1", []byte("layer"))
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	writeImage := func(name, allowed string) string {
		p := filepath.Join(dir, name)
		y := fmt.Sprintf("apiVersion: config.openshift.io/v1\nkind: Image\nmetadata: {name: cluster}\nspec:\n  allowedRegistriesForImport:\n%s", allowed)
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	refusing := writeImage("refusing.yaml", "  - domainName: quay.io\n")
	_, _, err := runBerth(t, "import", upAddr+"/team/app:v1", "mine/app", "--root", root, "--insecure", "--image-config", refusing)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("import outside allowedRegistriesForImport: %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(root, "metadata.db")); err == nil {
		t.Error("a refused import opened the store")
	}
	admitting := writeImage("admitting.yaml", fmt.Sprintf("  - domainName: %q\n    insecure: true\n", upAddr))
	out, _, err := runBerth(t, "import", upAddr+"/team/app:v1", "mine/app", "--root", root, "--insecure", "--image-config", admitting)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "mine/app:v1") || !strings.Contains(out, string(img.Digest)) || !strings.Contains(out, "imported") {
		t.Fatalf("import output:\n%s", out)
	}
	out, _, err = runBerth(t, "import", upAddr+"/team/app:v1", "mine/app", "--root", root, "--insecure")
	if err != nil || !strings.Contains(out, "unchanged") {
		t.Fatalf("second import: %v\n%s", err, out)
	}
}
