package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyVerifyRefusesBadUsage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"policy", "verify", "quay.io/a/b:c"}, "--root DIR is required"},
		{[]string{"policy", "verify", "--root", dir, "-o", "yaml", "quay.io/a/b:c"}, `--output must be text or json, not "yaml"`},
		{[]string{"policy", "verify", "--root", dir, "quay.io/a/b:c"}, "is not a node root written by berth policy render"},
		{[]string{"policy", "verify", "--root", filepath.Join(dir, "x"), "--namespace", "Team_A", "quay.io/a/b:c"}, "not a Kubernetes namespace name"},
		{[]string{"policy", "verify", "--root", dir}, "requires at least 1 arg"},
	} {
		if _, _, err := runBerth(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		}
	}
}

// A reference that does not parse is refused at the reference stage, and
// the exit code says an image was refused.
func TestPolicyVerifyBadReference(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "in", "image.yaml"), policyTestImage)
	root := filepath.Join(dir, "root")
	if _, _, err := runBerth(t, "policy", "render", "--out", root, filepath.Join(dir, "in")); err != nil {
		t.Fatal(err)
	}
	out, _, err := runBerth(t, "policy", "verify", "--root", root, "Not/A::Reference")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(out, "Not/A::Reference: refused at reference (by etc/containers/policy.json): ") {
		t.Fatalf("output:\n%s", out)
	}
}
