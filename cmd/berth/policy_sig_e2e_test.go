package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"

	"github.com/berth-registry/berth/internal/nodeverify"
	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/berth-registry/berth/internal/testpeer"
)

// TestPolicyE2ESignedImagesThroughBerthMirror is the signature story end to
// end, judged by the code CRI-O runs. cosign makes two key pairs and signs
// images (sha256-<hex>.sig tags) in an upstream CNCF Distribution; berth
// mirror copies them, signatures and a referrer included, to a berth serve;
// berth policy render turns the mirror run's ImageDigestMirrorSet plus a
// ClusterImagePolicy (key A, the org scope) and an ImagePolicy (key B, the
// team scope, namespace team-a) into a node root. With the upstream
// stopped, the container runtime's library (copy.Image with a
// PolicyContext from the rendered policy.json or CRI-O namespace policy,
// and a SystemContext on the rendered registries.conf and registries.d)
// pulls each image by its original reference: the image signed by key A
// is accepted, an unsigned one and one signed by key B are refused in the
// library's words, the namespace's policy is honoured, and berth policy
// verify gives the same verdicts in the same words.
func TestPolicyE2ESignedImagesThroughBerthMirror(t *testing.T) {
	start := time.Now()
	cosign := testpeer.Need(t, "cosign")
	crane := testpeer.Need(t, "crane")
	up, stopUp := testpeer.StartStoppableDistribution(t)
	dst := servertest.Start(t, servertest.Options{})
	work := t.TempDir()

	keyA, keyB := cosignKeyPair(t, cosign, filepath.Join(work, "key-a")), cosignKeyPair(t, cosign, filepath.Join(work, "key-b"))

	type img struct {
		repo   string
		key    string // "" unsigned
		digest string
	}
	images := map[string]*img{
		"signed":   {repo: "org/signed", key: keyA},
		"unsigned": {repo: "org/unsigned"},
		"otherkey": {repo: "org/otherkey", key: keyB},
		"team":     {repo: "team/app", key: keyB},
		"teamnone": {repo: "team/unsigned"},
		"exact":    {repo: "exact/app", key: keyA},
	}
	var mapping strings.Builder
	for _, im := range images {
		im.digest = cranePushRandom(t, crane, work, up+"/"+im.repo+":v1")
		if im.key != "" {
			cosignSign(t, cosign, im.key, up+"/"+im.repo+"@"+im.digest)
		}
		mapping.WriteString(up + "/" + im.repo + "@" + im.digest + " " + dst + "/mirror/" + im.repo + "\n")
	}
	signed := images["signed"]
	sigTag := strings.Replace(signed.digest, ":", "-", 1) + ".sig"
	upSig := craneDigest(t, crane, up+"/"+signed.repo+":"+sigTag)
	// A referrer of the signed image (an OCI artifact with a subject).
	referrer := pushReferrer(t, up+"/"+signed.repo, signed.digest)

	// Mirror by digest, writing the IDMS for the run.
	mapFile := filepath.Join(work, "mapping.txt")
	os.WriteFile(mapFile, []byte(mapping.String()), 0o644)
	cluster := filepath.Join(work, "cluster")
	if _, errOut, err := runBerth(t, "mirror", "image", "-f", mapFile, "--manifests-dir", cluster, "--src-insecure", "--dest-insecure", "--progress", "none"); err != nil {
		t.Fatalf("berth mirror: %v\n%s", err, errOut)
	}
	// The signature tag and the referrer travelled with the image.
	if got := craneDigest(t, crane, dst+"/mirror/"+signed.repo+":"+sigTag); got != upSig {
		t.Fatalf("signature tag %s at the mirror: %s, want %s (as upstream)", sigTag, got, upSig)
	}
	refs, err := remote.Referrers(mustDigestRef(t, dst+"/mirror/"+signed.repo+"@"+signed.digest))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := refs.IndexManifest(); err != nil || !hasDigest(m.Manifests, referrer) {
		t.Fatalf("referrer %s not at the mirror: %v %+v", referrer, err, m)
	}

	// Node policy: the run's IDMS, the mirror as an insecure registry, and the signature policies.
	pubA, pubB := readFile(t, filepath.Join(keyA, "cosign.pub")), readFile(t, filepath.Join(keyB, "cosign.pub"))
	writeFile(t, filepath.Join(cluster, "image.yaml"), `apiVersion: config.openshift.io/v1
kind: Image
metadata: {name: cluster}
spec:
  registrySources:
    insecureRegistries: ["`+dst+`", "`+up+`"]
`)
	writeFile(t, filepath.Join(cluster, "signatures.yaml"), `apiVersion: config.openshift.io/v1
kind: ClusterImagePolicy
metadata: {name: org}
spec:
  scopes: ["`+up+`/org"]
  policy:
    rootOfTrust:
      policyType: PublicKey
      publicKey:
        keyData: `+base64.StdEncoding.EncodeToString(pubA)+`
    # cosign signs the repository name only, which the default
    # MatchRepoDigestOrExact never accepts (the exact/ scope below).
    signedIdentity: {matchPolicy: MatchRepository}
---
apiVersion: config.openshift.io/v1
kind: ClusterImagePolicy
metadata: {name: exact}
spec:
  scopes: ["`+up+`/exact"]
  policy:
    rootOfTrust:
      policyType: PublicKey
      publicKey:
        keyData: `+base64.StdEncoding.EncodeToString(pubA)+`
---
apiVersion: config.openshift.io/v1
kind: ImagePolicy
metadata: {name: team, namespace: team-a}
spec:
  scopes: ["`+up+`/team"]
  policy:
    rootOfTrust:
      policyType: PublicKey
      publicKey:
        keyData: `+base64.StdEncoding.EncodeToString(pubB)+`
    signedIdentity: {matchPolicy: MatchRepository}
`)
	root := filepath.Join(work, "node")
	if out, errOut, err := runBerth(t, "policy", "render", "--out", root, cluster); err != nil {
		t.Fatalf("policy render: %v\n%s\n%s", err, out, errOut)
	}
	for _, f := range []string{"etc/containers/registries.d/sigstore-registries.yaml", "etc/crio/policies/team-a.json"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Fatalf("render wrote no %s: %v", f, err)
		}
	}

	// explain names the requirement from the files alone.
	for _, c := range []struct{ namespace, image, want string }{
		{"", "signed", `by transports.docker["` + up + `/org"] [sigstoreSigned]`},
		{"team-a", "team", `namespace team-a: etc/crio/policies/team-a.json: accepted only with valid signatures (sigstoreSigned) by transports.docker["` + up + `/team"]`},
	} {
		args := []string{"policy", "explain", "--root", root, up + "/" + images[c.image].repo + "@" + images[c.image].digest}
		if c.namespace != "" {
			args = append(args, "--namespace", c.namespace)
		}
		out, _, err := runBerth(t, args...)
		if err != nil || !strings.Contains(out, c.want) || !strings.Contains(out, "signature: sigstoreSigned, root of trust PublicKey") {
			t.Errorf("explain %v: %v; want %q:\n%s", args, err, c.want, out)
		}
	}

	// From here on only the mirror can serve.
	stopUp()

	pull := func(policyFile, ref string) error {
		pol, err := signature.NewPolicyFromFile(filepath.Join(root, policyFile))
		if err != nil {
			t.Fatalf("the runtime library refuses %s: %v", policyFile, err)
		}
		pc, err := signature.NewPolicyContext(pol)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Destroy()
		src, err := docker.ParseReference("//" + ref)
		if err != nil {
			t.Fatal(err)
		}
		dest, err := layout.ParseReference(filepath.Join(t.TempDir(), "pulled") + ":img")
		if err != nil {
			t.Fatal(err)
		}
		cache := t.TempDir()
		sysregistriesv2.InvalidateCache()
		sys := &types.SystemContext{
			SystemRegistriesConfPath:    filepath.Join(root, "etc/containers/registries.conf"),
			SystemRegistriesConfDirPath: filepath.Join(root, "etc/containers/registries.conf.d"),
			RegistriesDirPath:           filepath.Join(root, "etc/containers/registries.d"),
			BlobInfoCacheDir:            cache,
		}
		// An OCI layout cannot store signatures; the policy has judged them
		// at the source before anything is copied.
		_, err = copy.Image(context.Background(), pc, dest, src, &copy.Options{
			SourceCtx: sys, DestinationCtx: &types.SystemContext{BlobInfoCacheDir: cache}, RemoveSignatures: true,
		})
		return err
	}
	verify := func(namespace string, refs ...string) []nodeverify.Verdict {
		args := []string{"policy", "verify", "--root", root, "-o", "json"}
		if namespace != "" {
			args = append(args, "--namespace", namespace)
		}
		out, errOut, err := runBerth(t, append(args, refs...)...)
		var ee *exitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("verify: %v\n%s", err, errOut)
		}
		var vs []nodeverify.Verdict
		if err := json.Unmarshal([]byte(out), &vs); err != nil || len(vs) != len(refs) {
			t.Fatalf("verify output: %v\n%s", err, out)
		}
		return vs
	}

	const policyJSON, teamPolicy = "etc/containers/policy.json", "etc/crio/policies/team-a.json"
	for _, c := range []struct {
		name, namespace, policy, image string
		refusal                        string // the library's words; "" accepts
	}{
		{"signed by the ClusterImagePolicy's key", "", policyJSON, "signed", ""},
		{"unsigned in the ClusterImagePolicy's scope", "", policyJSON, "unsigned", "A signature was required, but no signature exists"},
		{"signed by another key in the same scope", "", policyJSON, "otherkey", "cryptographic signature verification failed"},
		{"outside every scope cluster-wide", "", policyJSON, "teamnone", ""},
		{"a cosign signature under the default MatchRepoDigestOrExact", "", policyJSON, "exact", `Signature for identity "` + up + `/exact/app" is not accepted`},
		{"signed by the ImagePolicy's key in its namespace", "team-a", teamPolicy, "team", ""},
		{"unsigned in the ImagePolicy's scope in its namespace", "team-a", teamPolicy, "teamnone", "A signature was required, but no signature exists"},
		{"the cluster's requirement holds in the namespace too", "team-a", teamPolicy, "unsigned", "A signature was required, but no signature exists"},
		{"another namespace is judged by policy.json", "team-b", policyJSON, "teamnone", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			im := images[c.image]
			ref := up + "/" + im.repo + "@" + im.digest // the ORIGINAL reference
			err := pull(c.policy, ref)
			v := verify(c.namespace, ref)[0]
			if v.Policy != c.policy {
				t.Errorf("verify judged by %s, want %s", v.Policy, c.policy)
			}
			if c.refusal == "" {
				if err != nil {
					t.Fatalf("the runtime library refuses %s: %v", ref, err)
				}
				if !v.Accepted || v.Digest != im.digest {
					t.Fatalf("verify: %+v; want accepted %s", v, im.digest)
				}
				return
			}
			if err == nil {
				t.Fatalf("the runtime library pulled %s; want refusal %q", ref, c.refusal)
			}
			if !strings.Contains(err.Error(), c.refusal) {
				t.Fatalf("the runtime library's refusal does not say %q: %v", c.refusal, err)
			}
			if v.Accepted || v.Stage != nodeverify.StagePolicy || !strings.Contains(err.Error(), "Source image rejected: "+v.Reason) {
				t.Fatalf("verify: %+v; want the library's refusal %q", v, err)
			}
		})
	}

	// The text form and the exit code, for all images at once.
	var all []string
	for _, k := range []string{"signed", "unsigned", "otherkey"} {
		all = append(all, up+"/"+images[k].repo+"@"+images[k].digest)
	}
	out, _, err := runBerth(t, append([]string{"policy", "verify", "--root", root}, all...)...)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "2 of 3 image(s) refused") {
		t.Fatalf("verify of a refused set: %v", err)
	}
	for _, want := range []string{all[0] + ": accepted (" + signed.digest + ", by etc/containers/policy.json)", all[1] + ": refused at policy (by etc/containers/policy.json): A signature was required, but no signature exists"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify says not %q:\n%s", want, out)
		}
	}
	t.Logf("signature story end to end: %s", time.Since(start).Round(time.Second))
}

// cosignKeyPair makes a passwordless key pair in dir (cosign.key, cosign.pub).
func cosignKeyPair(t *testing.T, cosign, dir string) string {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	cmd := exec.Command(cosign, "generate-key-pair")
	cmd.Dir = dir
	cmd.Env = cosignEnv(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	return dir
}

func cosignSign(t *testing.T, cosign, keyDir, ref string) {
	t.Helper()
	cmd := exec.Command(cosign, "sign", "--yes", "--key", filepath.Join(keyDir, "cosign.key"), "--tlog-upload=false", "--allow-insecure-registry", ref)
	cmd.Env = cosignEnv(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign sign %s: %v\n%s", ref, err, out)
	}
}

// cosignEnv: no password, and cosign's caches in the test's directory.
func cosignEnv(t *testing.T) []string {
	home := filepath.Join(os.TempDir(), "berth-cosign-home")
	return append(os.Environ(), "COSIGN_PASSWORD=", "HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"))
}

// cranePushRandom pushes a random one-layer image with crane and returns its digest.
func cranePushRandom(t *testing.T, crane, work, ref string) string {
	t.Helper()
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	tar := filepath.Join(work, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(tar, tag, img); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(crane, "push", "--insecure", tar, ref).CombinedOutput(); err != nil {
		t.Fatalf("crane push %s: %v\n%s", ref, err, out)
	}
	d, _ := img.Digest()
	if got := craneDigest(t, crane, ref); got != d.String() {
		t.Fatalf("%s: crane digest %s, pushed %s", ref, got, d)
	}
	return d.String()
}

func craneDigest(t *testing.T, crane, ref string) string {
	t.Helper()
	out, err := exec.Command(crane, "digest", "--insecure", ref).CombinedOutput()
	if err != nil {
		t.Fatalf("crane digest %s: %v\n%s", ref, err, out)
	}
	return strings.TrimSpace(string(out))
}

// pushReferrer pushes an OCI artifact whose subject is repo@digest and returns its digest.
func pushReferrer(t *testing.T, repo, digest string) string {
	t.Helper()
	subject, err := remote.Head(mustDigestRef(t, repo+"@"+digest))
	if err != nil {
		t.Fatal(err)
	}
	art := mutate.ConfigMediaType(mutate.MediaType(empty.Image, ggcrtypes.OCIManifestSchema1), "application/vnd.berth.test.sbom")
	img := mutate.Subject(art, *subject).(v1.Image)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustDigestRef(t, repo+"@"+d.String()), img); err != nil {
		t.Fatalf("pushing a referrer of %s@%s: %v", repo, digest, err)
	}
	return d.String()
}

func mustDigestRef(t *testing.T, s string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func hasDigest(ds []v1.Descriptor, d string) bool {
	for _, x := range ds {
		if x.Digest.String() == d {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
