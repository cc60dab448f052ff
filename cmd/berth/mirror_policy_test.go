package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/mirror/mirrortest"
)

func testPublicKeyData(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// --no-referrers leaves signatures behind: with --policy-root, every image
// whose original reference a ClusterImagePolicy (or a namespace's
// ImagePolicy) covers is named with its scope, and nothing else is.
func TestMirrorNoReferrersWarnsWhenPolicyRequiresSignatures(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	dir := t.TempDir()
	var mapping strings.Builder
	for _, repo := range []string{"release/payload", "team/app", "free/app"} {
		if _, err := mirrortest.PushImage(src+"/"+repo+":v1", 1, 1); err != nil {
			t.Fatal(err)
		}
		mapping.WriteString(src + "/" + repo + ":v1 " + dst + "/m/" + repo + "\n")
	}
	mapFile := filepath.Join(dir, "map.txt")
	os.WriteFile(mapFile, []byte(mapping.String()), 0o644)
	key := testPublicKeyData(t)
	writeFile(t, filepath.Join(dir, "in", "sig.yaml"), `apiVersion: config.openshift.io/v1
kind: ClusterImagePolicy
metadata: {name: release}
spec:
  scopes: ["`+src+`/release"]
  policy:
    rootOfTrust: {policyType: PublicKey, publicKey: {keyData: `+key+`}}
---
apiVersion: config.openshift.io/v1
kind: ImagePolicy
metadata: {name: team, namespace: team-a}
spec:
  scopes: ["`+src+`/team"]
  policy:
    rootOfTrust: {policyType: PublicKey, publicKey: {keyData: `+key+`}}
    signedIdentity: {matchPolicy: MatchRepository}
`)
	root := filepath.Join(dir, "node")
	if _, errOut, err := runBerth(t, "policy", "render", "--out", root, filepath.Join(dir, "in")); err != nil {
		t.Fatalf("render: %v\n%s", err, errOut)
	}

	_, errOut, err := runBerth(t, "mirror", "image", "-f", mapFile, "--no-referrers", "--policy-root", root, "--progress", "none")
	if err != nil {
		t.Fatalf("mirror: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"warning: --no-referrers leaves the signatures of " + src + "/release/payload:v1 behind, but etc/containers/policy.json requires sigstore signatures for it (scope \"" + src + "/release\", root of trust PublicKey, signedIdentity matchRepoDigestOrExact)",
		"warning: --no-referrers leaves the signatures of " + src + "/team/app:v1 behind, but etc/crio/policies/team-a.json requires sigstore signatures for it in namespace team-a (scope \"" + src + "/team\", root of trust PublicKey, signedIdentity matchRepository)",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "free/app:v1 behind") || strings.Count(errOut, "warning: --no-referrers") != 2 {
		t.Errorf("warnings for images no policy covers, or repeated:\n%s", errOut)
	}
	if mustDigest(t, dst+"/m/release/payload:v1") == "" {
		t.Fatal("the warning stopped the copy")
	}

	// With referrers copied, or without a policy root, nothing to warn about.
	for _, args := range [][]string{
		{"mirror", "image", "-f", mapFile, "--policy-root", root, "--progress", "none"},
		{"mirror", "image", "-f", mapFile, "--no-referrers", "--progress", "none"},
	} {
		if _, errOut, err := runBerth(t, args...); err != nil || strings.Contains(errOut, "leaves the signatures") {
			t.Errorf("%v: %v\n%s", args, err, errOut)
		}
	}
	// A policy root that is not one is an error before anything is copied.
	if _, _, err := runBerth(t, "mirror", "image", "-f", mapFile, "--no-referrers", "--policy-root", filepath.Join(dir, "in"), "--progress", "none"); err == nil || !strings.Contains(err.Error(), "--policy-root") {
		t.Errorf("a bad --policy-root: %v", err)
	}
}
