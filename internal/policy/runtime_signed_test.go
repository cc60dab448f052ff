//go:build containers_image_openpgp

package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// testRegistry is an in-memory registry serving manifests, blobs and
// cosign's sha256-<hex>.sig attachments: enough for the runtime's docker
// transport to fetch an image and its sigstore signatures.
type testRegistry struct {
	mu        sync.Mutex
	manifests map[string][]byte // "name|tag-or-digest" → OCI manifest
	blobs     map[digest.Digest][]byte
}

func (r *testRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := strings.TrimPrefix(req.URL.Path, "/v2/")
	if p == "" {
		w.WriteHeader(http.StatusOK)
		return
	}
	if i := strings.LastIndex(p, "/manifests/"); i >= 0 {
		m, ok := r.manifests[p[:i]+"|"+p[i+len("/manifests/"):]]
		if !ok {
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(m).String())
		w.Write(m)
		return
	}
	if i := strings.LastIndex(p, "/blobs/"); i >= 0 {
		b, ok := r.blobs[digest.Digest(p[i+len("/blobs/"):])]
		if !ok {
			http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		w.Write(b)
		return
	}
	http.NotFound(w, req)
}

func (r *testRegistry) blob(b []byte) digest.Digest {
	d := digest.FromBytes(b)
	r.blobs[d] = b
	return d
}

// push stores an image under name:tag (a distinct config per image) and
// returns its manifest digest.
func (r *testRegistry) push(name, tag string) digest.Digest {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Labels":{"name":%q}}}`, name+":"+tag))
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, r.blob(cfg), len(cfg)))
	d := digest.FromBytes(m)
	r.manifests[name+"|"+tag] = m
	r.manifests[name+"|"+d.String()] = m
	return d
}

// sign attaches a cosign-style signature by key claiming identity for the
// image with manifest digest d.
func (r *testRegistry) sign(t *testing.T, name string, d digest.Digest, key *ecdsa.PrivateKey, identity string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	payload := []byte(fmt.Sprintf(`{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, identity, d))
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	empty := []byte("{}")
	layer := map[string]any{
		"mediaType":   "application/vnd.dev.cosign.simplesigning.v1+json",
		"digest":      r.blob(payload),
		"size":        len(payload),
		"annotations": map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)},
	}
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": r.blob(empty), "size": len(empty)},
		"layers":        []any{layer},
	})
	r.manifests[name+"|"+strings.Replace(d.String(), ":", "-", 1)+".sig"] = m
}

// The runtime library verifies real sigstore signatures (ECDSA, cosign's
// attachment layout) of images in an in-process registry against the
// rendered node root: policy.json, the namespace's CRI-O policy and
// registries.d. Each verdict must be what explain announced: accepted
// exactly when the signature is by the named key and claims what explain
// says it must claim.
func TestPolicyRuntimeVerifiesSignedImagesAsExplained(t *testing.T) {
	reg := &testRegistry{manifests: map[string][]byte{}, blobs: map[digest.Digest][]byte{}}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	host := "localhost:" + srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	yaml := strings.ReplaceAll(`
apiVersion: config.openshift.io/v1
kind: ClusterImagePolicy
metadata: {name: acme}
spec:
  scopes: [HOST/acme]
  policy:
    rootOfTrust: {policyType: PublicKey, publicKey: {keyData: "{{key:acme}}"}}
---
apiVersion: config.openshift.io/v1
kind: ClusterImagePolicy
metadata: {name: repo}
spec:
  scopes: [HOST/repo]
  policy:
    rootOfTrust: {policyType: PublicKey, publicKey: {keyData: "{{key:acme}}"}}
    signedIdentity: {matchPolicy: MatchRepository}
---
apiVersion: config.openshift.io/v1
kind: ClusterImagePolicy
metadata: {name: remap}
spec:
  scopes: [HOST/remap]
  policy:
    rootOfTrust: {policyType: PublicKey, publicKey: {keyData: "{{key:vendor}}"}}
    signedIdentity:
      matchPolicy: RemapIdentity
      remapIdentity: {prefix: HOST/remap, signedPrefix: registry.vendor.com/products}
---
apiVersion: config.openshift.io/v1
kind: ClusterImagePolicy
metadata: {name: exact}
spec:
  scopes: [HOST/exact]
  policy:
    rootOfTrust: {policyType: PublicKey, publicKey: {keyData: "{{key:acme}}"}}
    signedIdentity:
      matchPolicy: ExactRepository
      exactRepository: {repository: registry.vendor.com/golden}
---
apiVersion: config.openshift.io/v1
kind: ImagePolicy
metadata: {name: team, namespace: team}
spec:
  scopes: [HOST/team, HOST/acme/app]
  policy:
    rootOfTrust: {policyType: PublicKey, publicKey: {keyData: "{{key:team}}"}}
`, "HOST", host)
	in := &Inputs{}
	if ps := in.Parse("signed.yaml", expandKeys(t, []byte(yaml))); len(ps) > 0 {
		t.Fatal((&ValidationError{Problems: ps}).Error())
	}
	r, err := Render(in, StockBase())
	if err != nil {
		t.Fatal(err)
	}
	root := writeRoot(t, r.Files)
	node := loadRendered(t, r.Files)

	acme, team, vendor, other := testSigningKey(t, "acme"), testSigningKey(t, "team"), testSigningKey(t, "vendor"), testSigningKey(t, "other")
	type img struct {
		ref      string // name:tag inside the registry
		key      *ecdsa.PrivateKey
		identity string // claimed; "" for unsigned
	}
	images := []img{
		{"acme/app:v1", acme, host + "/acme/app:v1"},
		{"acme/app:v2", acme, host + "/acme/app:v1"}, // claims another tag: default identity refuses
		{"acme/unsigned:v1", nil, ""},
		{"acme/wrongkey:v1", other, host + "/acme/wrongkey:v1"},
		{"acme/other-repo:v1", acme, host + "/acme/app:v1"},
		{"repo/app:v2", acme, host + "/repo/app:v1"}, // MatchRepository: any tag of the repository
		{"repo/app:v3", acme, host + "/repo/other:v1"},
		{"remap/app:v1", vendor, "registry.vendor.com/products/app:v1"},
		{"remap/app:v2", vendor, host + "/remap/app:v2"},
		{"exact/app:v1", acme, "registry.vendor.com/golden:v7"},
		{"exact/app:v2", acme, host + "/exact/app:v2"},
		{"team/app:v1", team, host + "/team/app:v1"},
		{"team/bad:v1", acme, host + "/team/bad:v1"},
		{"free/app:v1", nil, ""},
	}
	for _, im := range images {
		name, tag, _ := strings.Cut(im.ref, ":")
		d := reg.push(name, tag)
		if im.key != nil {
			reg.sign(t, name, d, im.key, im.identity)
		}
	}

	emptyD := t.TempDir()
	cases, accepted, signedAccepted := 0, 0, 0
	for _, ns := range []string{"", "team"} {
		file := PolicyJSONPath
		if ns != "" {
			file = CRIOPolicyPath(ns)
		}
		pol, err := signature.NewPolicyFromFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		pc, err := signature.NewPolicyContext(pol)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range images {
			ref := host + "/" + im.ref
			e, err := node.ExplainWith(ref, ExplainOptions{Namespace: ns})
			if err != nil {
				t.Fatal(err)
			}
			verdict, rules := e.Policy, e.Signatures
			if ns != "" {
				verdict, rules = e.Namespace.Policy, e.Namespace.Signatures
			}
			// What explain announces, applied to what the image carries.
			want := verdict.Allowed
			if !want && len(rules) == 1 && im.key != nil {
				r := rules[0]
				keyOK := strings.Contains(strings.Join(r.Keys, " "), fingerprint(mustDER(t, im.key)))
				want = keyOK && claimSatisfies(r.Expects, im.identity)
			}
			got, gotErr := runtimeAllowsPulledFrom(t, pc, root, filepath.Join(root, filepath.FromSlash(RegistriesDDir)), ref)
			if got != want {
				t.Errorf("%s (namespace %q): explain implies accepted=%v (scope %q, %+v), the runtime says %v: %v", ref, ns, want, verdict.Scope, rules, got, gotErr)
			}
			if got {
				accepted++
			}
			if got && len(rules) > 0 {
				signedAccepted++
				// Without registries.d the runtime never sees the signature.
				if ok, _ := runtimeAllowsPulledFrom(t, pc, root, emptyD, ref); ok {
					t.Errorf("%s: accepted without sigstore-registries.yaml; the rendered file is not what made it verify", ref)
				}
			}
			cases++
		}
		pc.Destroy()
	}
	if cases != 2*len(images) || signedAccepted < 5 || cases-accepted < 8 {
		t.Fatalf("%d cases, %d accepted (%d by signature): the table no longer probes both outcomes", cases, accepted, signedAccepted)
	}
	t.Logf("%d cases, %d accepted (%d by a verified signature), %d refused", cases, accepted, signedAccepted, cases-accepted)
}

func mustDER(t *testing.T, k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// claimSatisfies reads explain's Expects ("a signature for exactly X" or
// "a signature for repository X …") against a claimed identity.
func claimSatisfies(expects, claimed string) bool {
	if x, ok := strings.CutPrefix(expects, "a signature for exactly "); ok {
		x, _, _ = strings.Cut(x, " ")
		return claimed == x
	}
	if x, ok := strings.CutPrefix(expects, "a signature for repository "); ok {
		x, _, _ = strings.Cut(x, " ")
		repo := claimed
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		return repo == x
	}
	return false
}

// runtimeAllowsPulledFrom opens ref with the runtime's docker transport
// (registries.d from dir) and evaluates the policy on what it fetched.
func runtimeAllowsPulledFrom(t *testing.T, pc *signature.PolicyContext, root, registriesD, ref string) (bool, error) {
	t.Helper()
	if _, err := os.Stat(registriesD); err != nil {
		t.Fatalf("registries.d: %v", err)
	}
	sys := &types.SystemContext{
		SystemRegistriesConfPath:    filepath.Join(root, RegistriesConfPath),
		SystemRegistriesConfDirPath: filepath.Join(root, "etc/containers/registries.conf.d"),
		RegistriesDirPath:           registriesD,
		DockerInsecureSkipTLSVerify: types.OptionalBoolTrue,
	}
	ir, err := docker.ParseReference("//" + ref)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, err := ir.NewImageSource(ctx, sys)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	defer src.Close()
	return pc.IsRunningImageAllowed(ctx, image.UnparsedInstance(src, nil))
}
