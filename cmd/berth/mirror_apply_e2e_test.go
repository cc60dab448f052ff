package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/mirrortest"
	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/berth-registry/berth/internal/testpeer"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// applyFixture is a source registry holding a release channel's payload,
// an operator catalog of two packages with their bundle and related
// images, and two additional images; plus the update graph naming the
// release.
type applyFixture struct {
	src      *mirrortest.CountingRegistry
	graphURL string
	// sigURL is a signature store holding one signature of the release.
	sigURL  string
	release *mirrortest.Release
	catalog string
	// images maps each package to the bundle and related image refs its
	// head needs, by digest.
	images     map[string][]string
	additional []string
}

func pushOrFail(t *testing.T, ref string, seeds ...uint64) string {
	t.Helper()
	d, err := mirrortest.PushImage(ref, seeds...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newApplyFixture(t *testing.T) *applyFixture {
	t.Helper()
	ctx := context.Background()
	f := &applyFixture{src: mirrortest.StartCountingRegistry(t), images: map[string][]string{}}
	host := f.src.Host
	var err error
	if f.release, err = mirrortest.PushRelease(ctx, host, mirrortest.ReleaseSpec{Version: "4.17.2", Components: 6, MultiArchEvery: 3}); err != nil {
		t.Fatal(err)
	}
	graph := map[string]any{
		"nodes": []map[string]any{
			{"version": "4.17.2", "payload": host + "/openshift-release-dev/ocp-release@" + f.release.Digest, "metadata": map[string]string{}},
		},
		"edges": [][2]int{},
	}
	gs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("channel") != "stable-4.17" {
			http.Error(w, "no such channel", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(graph)
	}))
	t.Cleanup(gs.Close)
	f.graphURL = gs.URL
	sigPath := "/sha256=" + strings.TrimPrefix(f.release.Digest, "sha256:") + "/signature-1"
	ss := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != sigPath {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("release-signature-bytes"))
	}))
	t.Cleanup(ss.Close)
	f.sigURL = ss.URL

	var fbc strings.Builder
	for i, pkg := range []string{"foo", "bar"} {
		seed := uint64(1000 + 100*i)
		bundle := host + "/operators/" + pkg + "-bundle@" + pushOrFail(t, host+"/operators/"+pkg+"-bundle:v1.0.0", seed)
		operand := host + "/operators/" + pkg + "-operand@" + pushOrFail(t, host+"/operators/"+pkg+"-operand:v1", seed+1, seed+2)
		f.images[pkg] = []string{bundle, operand}
		for _, m := range []map[string]any{
			{"schema": "olm.package", "name": pkg, "defaultChannel": "stable"},
			{"schema": "olm.channel", "package": pkg, "name": "stable", "entries": []map[string]string{{"name": pkg + ".v1.0.0"}}},
			{"schema": "olm.bundle", "name": pkg + ".v1.0.0", "package": pkg, "image": bundle,
				"properties":    []map[string]any{{"type": "olm.package", "value": map[string]string{"packageName": pkg, "version": "1.0.0"}}},
				"relatedImages": []map[string]string{{"name": "operand", "image": operand}, {"name": "", "image": bundle}}},
		} {
			b, _ := json.Marshal(m)
			fbc.Write(append(b, '\n'))
		}
	}
	layer, err := mirrortest.FileLayer(map[string][]byte{"configs/index.json": []byte(fbc.String())})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mirrortest.Image([]v1.Layer{layer}, "amd64", map[string]string{"operators.operatorframework.io.index.configs.v1": "/configs"})
	if err != nil {
		t.Fatal(err)
	}
	f.catalog = host + "/redhat/operator-index:v4.17"
	ref, _ := name.ParseReference(f.catalog)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	f.additional = []string{host + "/app/web:1.0"}
	pushOrFail(t, f.additional[0], 7)
	// db shares web's layer: deleting db must leave it to web.
	f.additional = append(f.additional, host+"/app/db@"+pushOrFail(t, host+"/app/db:5", 7, 8))
	return f
}

func (f *applyFixture) isc(t *testing.T, dir string, packages ...string) string {
	t.Helper()
	var pk strings.Builder
	for _, p := range packages {
		fmt.Fprintf(&pk, "    - name: %s\n", p)
	}
	doc := fmt.Sprintf(`kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  platform:
    channels:
    - name: stable-4.17
  operators:
  - catalog: %s
    packages:
%s  additionalImages:
  - name: %s
  - name: %s
`, f.catalog, pk.String(), f.additional[0], f.additional[1])
	p := filepath.Join(dir, fmt.Sprintf("isc-%d.yaml", len(packages)))
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// The ImageSetConfiguration workflow end to end: mirror to disk with
// archives, the sources gone, disk to mirror into a fresh berth serve,
// node policy rendered from the written mirror sets, and skopeo pulling
// every planned image by its original reference from the mirror. Then an
// unchanged rerun ships no blob, and one more package ships only its own.
func TestMirrorApplyDisconnected(t *testing.T) {
	skopeo := testpeer.Need(t, "skopeo")
	f := newApplyFixture(t)
	dst := servertest.Start(t, servertest.Options{})
	work := t.TempDir()
	isc := f.isc(t, work, "foo")
	to := dst + "/mirror"

	// A dry run resolves everything and writes nothing.
	out, errOut, err := runBerth(t, "mirror", "apply", "-f", isc, "--to", to, "--dry-run", "--update-service", f.graphURL, "--signature-store", "none")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, errOut)
	}
	for _, want := range []string{"release ", "operator ", "generic ", "keep foo", f.images["foo"][0]} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run does not mention %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, f.images["bar"][0]) {
		t.Errorf("dry run plans bar's bundle, which the configuration does not name:\n%s", out)
	}

	usb := filepath.Join(work, "usb")
	if _, errOut, err := runBerth(t, "mirror", "apply", "-f", isc, "--to-dir", usb, "--archive-size", "256KiB", "--update-service", f.graphURL, "--signature-store", f.sigURL, "--progress", "none"); err != nil {
		t.Fatalf("to-dir: %v\n%s", err, errOut)
	}
	f.src.SetFail(func(*http.Request) (int, bool) { return http.StatusServiceUnavailable, true })

	archives := mirror.DefaultArchiveDir(usb)
	kept := filepath.Join(work, "imported")
	out, errOut, err = runBerth(t, "mirror", "apply", "-f", isc, "--from-dir", archives, "--unpack-dir", kept, "--to", to, "--progress", "none")
	if err != nil {
		t.Fatalf("from-dir: %v\n%s\n%s", err, out, errOut)
	}
	resources := filepath.Join(archives, "cluster-resources")
	for _, fn := range []string{"idms-oc-mirror.yaml", "itms-oc-mirror.yaml", "signature-configmap.yaml"} {
		if _, err := os.Stat(filepath.Join(resources, fn)); err != nil {
			t.Fatalf("cluster resources: %v\n%s", err, out)
		}
	}
	sigs, _ := os.ReadFile(filepath.Join(resources, "signature-configmap.yaml"))
	if key := strings.Replace(f.release.Digest, ":", "-", 1) + "-1: " + base64.StdEncoding.EncodeToString([]byte("release-signature-bytes")); !strings.Contains(string(sigs), key) {
		t.Errorf("signature ConfigMap lacks %q:\n%s", key, sigs)
	}
	cs, _ := filepath.Glob(filepath.Join(resources, "cs-*.yaml"))
	if len(cs) != 1 {
		t.Fatalf("want one CatalogSource in %s, got %v", resources, cs)
	}
	raw, _ := os.ReadFile(cs[0])
	catDigest := mustDigest(t, to+"/redhat/operator-index:v4.17")
	if !strings.Contains(string(raw), to+"/redhat/operator-index@"+catDigest) {
		t.Errorf("CatalogSource does not pull the rebuilt catalog by digest %s:\n%s", catDigest, raw)
	}

	imageCfg := filepath.Join(work, "image.yaml")
	os.WriteFile(imageCfg, []byte("apiVersion: config.openshift.io/v1\nkind: Image\nmetadata:\n  name: cluster\nspec:\n  registrySources:\n    insecureRegistries:\n    - "+dst+"\n"), 0o644)
	root := filepath.Join(work, "node")
	if _, errOut, err := runBerth(t, "policy", "render", "--out", root, filepath.Join(resources, "idms-oc-mirror.yaml"), filepath.Join(resources, "itms-oc-mirror.yaml"), imageCfg); err != nil {
		t.Fatalf("policy render: %v\n%s", err, errOut)
	}
	conf := filepath.Join(root, "etc", "containers", "registries.conf")
	pol := filepath.Join(root, "etc", "containers", "policy.json")
	refs := []string{f.src.Host + "/openshift-release-dev/ocp-release@" + f.release.Digest}
	for _, c := range f.release.Components {
		refs = append(refs, c.Ref)
	}
	refs = append(append(refs, f.images["foo"]...), f.additional...)
	for i, ref := range refs {
		dir := filepath.Join(work, "pulled", fmt.Sprint(i))
		os.MkdirAll(filepath.Dir(dir), 0o755)
		cmd := exec.Command(skopeo, "--registries-conf", conf, "--policy", pol, "copy", "--all", "--preserve-digests",
			"--src-tls-verify=false", "docker://"+ref, "oci:"+dir+":pulled")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pull %s through the mirror: %v\n%s", ref, err, b)
		}
	}

	// The receiving side's state: what it imported.
	state := filepath.Join(work, "state.json")
	out, errOut, err = runBerth(t, "mirror", "state", "--from-dir", kept)
	if err != nil {
		t.Fatalf("state: %v\n%s", err, errOut)
	}
	os.WriteFile(state, []byte(out), 0o644)

	// An unchanged rerun ships no blob: the archives hold only the
	// directory's index, record and manifests.
	f.src.SetFail(nil)
	usb2 := filepath.Join(work, "usb2")
	if _, errOut, err := runBerth(t, "mirror", "apply", "-f", isc, "--to-dir", usb2, "--since", state, "--archive-size", "256KiB", "--update-service", f.graphURL, "--signature-store", "none", "--progress", "none"); err != nil {
		t.Fatalf("unchanged rerun: %v\n%s", err, errOut)
	}
	if n := dirBytes(t, mirror.DefaultArchiveDir(usb2)); n > 1<<20 {
		t.Errorf("an unchanged rerun shipped %d bytes of archives, want under 1 MiB", n)
	}
	blobs, _ := filepath.Glob(filepath.Join(usb2, "blobs", "sha256", "*"))
	for _, b := range blobs {
		fi, _ := os.Stat(b)
		if fi.Size() > 64<<10 {
			t.Errorf("an unchanged rerun wrote blob %s (%d bytes)", filepath.Base(b), fi.Size())
		}
	}

	// One more package: only its bundle and operand layers, and the new
	// catalog layer, travel.
	isc2 := f.isc(t, work, "foo", "bar")
	usb3 := filepath.Join(work, "usb3")
	if _, errOut, err := runBerth(t, "mirror", "apply", "-f", isc2, "--to-dir", usb3, "--since", state, "--update-service", f.graphURL, "--signature-store", "none", "--progress", "none"); err != nil {
		t.Fatalf("one more package: %v\n%s", err, errOut)
	}
	if _, errOut, err := runBerth(t, "mirror", "apply", "-f", isc2, "--from-dir", usb3, "--to", to, "--progress", "none"); err != nil {
		t.Fatalf("one more package, pushed: %v\n%s", err, errOut)
	}
	for _, ref := range f.images["bar"] {
		r, _ := name.ParseReference(ref)
		want := r.(name.Digest).DigestStr()
		if got := mustDigest(t, to+"/"+r.Context().RepositoryStr()+"@"+want); got != want {
			t.Errorf("%s at the mirror: %s", ref, got)
		}
	}
}

// Delete: what a DeleteImageSetConfiguration names goes from the mirror,
// what a kept set needs stays (and says why), and gc reclaims exactly the
// bytes only the deleted images held.
func TestMirrorDelete(t *testing.T) {
	f := newApplyFixture(t)
	root := t.TempDir()
	dst := servertest.Start(t, servertest.Options{Root: root})
	work := t.TempDir()
	to := dst + "/mirror"
	isc := f.isc(t, work, "foo", "bar")
	if _, errOut, err := runBerth(t, "mirror", "apply", "-f", isc, "--to", to, "--update-service", f.graphURL, "--signature-store", "none", "--manifests-dir", filepath.Join(work, "cr"), "--progress", "none"); err != nil {
		t.Fatalf("apply: %v\n%s", err, errOut)
	}
	web, db := f.additional[0], f.additional[1]
	keep := filepath.Join(work, "keep.yaml")
	os.WriteFile(keep, []byte(fmt.Sprintf(`kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  operators:
  - catalog: %s
    packages:
    - name: bar
  additionalImages:
  - name: %s
`, f.catalog, web)), 0o644)
	del := filepath.Join(work, "delete.yaml")
	os.WriteFile(del, []byte(fmt.Sprintf(`kind: DeleteImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
delete:
  operators:
  - catalog: %s
    packages:
    - name: foo
  additionalImages:
  - name: %s
  - name: %s
`, f.catalog, web, db)), 0o644)

	out, errOut, err := runBerth(t, "mirror", "delete", "-f", del, "--to", to, "--keep", keep, "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "keep ") || !strings.Contains(out, "needed by "+keep) {
		t.Errorf("the dry run does not say web is kept for keep.yaml:\n%s", out)
	}
	mirrorRef := func(ref string) string {
		r, _ := name.ParseReference(ref)
		return to + "/" + r.Context().RepositoryStr() + "@" + digestOfRef(t, ref)
	}
	if d := mustDigest(t, mirrorRef(db)); d == "" {
		t.Fatal("the dry run deleted db")
	}

	if _, errOut, err := runBerth(t, "mirror", "delete", "-f", del, "--to", to, "--keep", keep); err != nil {
		t.Fatalf("delete: %v\n%s", err, errOut)
	}
	gone := append([]string{db}, f.images["foo"]...)
	for _, ref := range gone {
		if _, err := mirrortest.HeadDigest(mirrorRef(ref)); err == nil {
			t.Errorf("%s is still on the mirror", ref)
		}
	}
	for _, ref := range append([]string{web}, f.images["bar"]...) {
		mustDigest(t, mirrorRef(ref))
	}

	// gc reclaims db's own layer, not the layer it shared with web.
	time.Sleep(20 * time.Millisecond)
	out, errOut, err = runBerth(t, "gc", "--root", root, "--grace", "10ms", "-o", "json")
	if err != nil {
		t.Fatalf("gc: %v\n%s", err, errOut)
	}
	dbLayers := layersOf(t, f.src.Host, db)
	webLayers := layersOf(t, f.src.Host, web)
	if len(dbLayers) != 2 || len(webLayers) != 1 || dbLayers[0] != webLayers[0] && dbLayers[1] != webLayers[0] {
		t.Fatalf("fixture: db layers %v should include web's %v", dbLayers, webLayers)
	}
	var res struct {
		Deleted []struct{ Digest string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("gc output: %v\n%s", err, out)
	}
	deleted := map[string]bool{}
	for _, b := range res.Deleted {
		deleted[b.Digest] = true
	}
	for _, l := range dbLayers {
		shared := l == webLayers[0]
		if removed := deleted[l]; removed == shared {
			t.Errorf("gc removed=%v layer %s (shared with web: %v)\n%s", removed, l, shared, out)
		}
	}
	// web still pulls whole from the mirror.
	r, _ := name.ParseReference(to + "/app/web:1.0")
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("web's layer after gc: %v", err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("web's layer after gc: %v", err)
		}
		rc.Close()
	}
}

func digestOfRef(t *testing.T, ref string) string {
	t.Helper()
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref[i+1:]
	}
	return mustDigest(t, ref)
}

func layersOf(t *testing.T, host, ref string) []string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

// Bad input stops the run before anything is written, with an error that
// names the object (and, for the file itself, its line and field).
func TestMirrorApplyBadInput(t *testing.T) {
	f := newApplyFixture(t)
	notCatalog := f.src.Host + "/redhat/plain:v1"
	pushOrFail(t, notCatalog, 9)
	dst := servertest.Start(t, servertest.Options{})
	work := t.TempDir()
	write := func(name, operators string) string {
		p := filepath.Join(work, name+".yaml")
		os.WriteFile(p, []byte("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: "+f.additional[0]+"\n  operators:\n"+operators), 0o644)
		return p
	}
	for _, tc := range []struct {
		name, operators string
		want            []string
	}{
		{"unknown-package", "  - catalog: " + f.catalog + "\n    packages:\n    - name: nosuch\n", []string{"nosuch"}},
		{"impossible-range", "  - catalog: " + f.catalog + "\n    packages:\n    - name: foo\n      minVersion: 9.0.0\n", []string{"foo", "9.0.0"}},
		{"not-a-catalog", "  - catalog: " + notCatalog + "\n", []string{notCatalog, "operators.operatorframework.io.index.configs.v1"}},
		{"unknown-field", "  - catalog: " + f.catalog + "\n    packagez:\n    - name: foo\n", []string{"unknown-field.yaml:8:5", "packagez"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isc := write(tc.name, tc.operators)
			dir := filepath.Join(work, tc.name+"-dir")
			for _, args := range [][]string{{"--to", dst + "/mirror"}, {"--to-dir", dir}} {
				_, errOut, err := runBerth(t, append([]string{"mirror", "apply", "-f", isc, "--signature-store", "none", "--progress", "none"}, args...)...)
				if err == nil {
					t.Fatalf("%v: accepted", args)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%v: error does not name %q: %v\n%s", args, w, err, errOut)
					}
				}
			}
			blobs, _ := filepath.Glob(filepath.Join(dir, "blobs", "*", "*"))
			if len(blobs) > 0 {
				t.Errorf("refused run wrote %d blobs into %s", len(blobs), dir)
			}
			resp, err := http.Get("http://" + dst + "/v2/_catalog")
			if err != nil {
				t.Fatal(err)
			}
			var cat struct{ Repositories []string }
			json.NewDecoder(resp.Body).Decode(&cat)
			resp.Body.Close()
			if len(cat.Repositories) > 0 {
				t.Errorf("refused run pushed %v", cat.Repositories)
			}
		})
	}
}
