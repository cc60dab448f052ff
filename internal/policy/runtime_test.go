//go:build containers_image_openpgp

package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.podman.io/image/v5/docker/policyconfiguration"
	dockerref "go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// The container runtime's own library is the judge: every rendered node root
// is loaded with sysregistriesv2 and signature, and for a table of references
// per vector the library's pull sources, blocked verdicts and policy verdicts
// must equal what explain says.
func TestPolicyRuntimeLibraryAgreesWithExplain(t *testing.T) {
	for _, v := range loadVectors(t) {
		r, errText := renderVector(v)
		if errText != "" {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			root := writeRoot(t, r.Files)
			sys := &types.SystemContext{
				SystemRegistriesConfPath:    filepath.Join(root, RegistriesConfPath),
				SystemRegistriesConfDirPath: filepath.Join(root, "etc/containers/registries.conf.d"),
			}
			sysregistriesv2.InvalidateCache()
			pol, err := signature.NewPolicyFromFile(filepath.Join(root, PolicyJSONPath))
			if err != nil {
				t.Fatalf("the runtime refuses the rendered policy.json: %v", err)
			}
			pc, err := signature.NewPolicyContext(pol)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Destroy()
			if _, err := sysregistriesv2.GetRegistries(sys); err != nil {
				t.Fatalf("the runtime refuses the rendered registries.conf: %v", err)
			}
			if want := r.Files[SearchDropInPath]; want != nil {
				got, err := sysregistriesv2.UnqualifiedSearchRegistries(sys)
				if err != nil {
					t.Fatal(err)
				}
				conf, _ := ParseRegistriesConf("drop-in", want)
				if diff := cmp.Diff(conf.UnqualifiedSearchRegistries, got); diff != "" {
					t.Errorf("search registries (-berth +runtime):\n%s", diff)
				}
			}
			node := loadRendered(t, r.Files)
			refs := vectorRefs(v.in)
			if len(refs) < 4 {
				t.Fatalf("only %d references to probe", len(refs))
			}
			for _, ref := range refs {
				e, err := node.Explain(ref)
				if err != nil {
					t.Fatalf("explain %s: %v", ref, err)
				}
				got := runtimeSources(t, sys, ref)
				var want []string
				for _, s := range e.PullSources {
					if s.Skipped != "" {
						continue
					}
					want = append(want, describe(s.Reference, s.Insecure, s.Blocked))
					if s.Err != "" {
						want = []string{"error"}
						break
					}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s: pull sources (-explain +runtime):\n%s", ref, diff)
				}
				allowed := runtimeAllows(t, pc, ref)
				if allowed != e.Policy.Allowed {
					t.Errorf("%s: policy.json: explain says allowed=%v (scope %q), the runtime says %v", ref, e.Policy.Allowed, e.Policy.Scope, allowed)
				}
			}
		})
	}
}

func describe(ref string, insecure, blocked bool) string {
	s := ref
	if insecure {
		s += " insecure"
	}
	if blocked {
		s += " blocked"
	}
	return s
}

func writeRoot(t *testing.T, files map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	for p, b := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// runtimeSources asks the library what the docker transport would try, in
// order, and whether each physical reference is blocked (newDockerClient's
// check) — the library's answer in explain's terms.
func runtimeSources(t *testing.T, sys *types.SystemContext, input string) []string {
	t.Helper()
	ref, err := dockerref.ParseNormalizedNamed(input)
	if err != nil {
		t.Fatal(err)
	}
	ref = dockerref.TagNameOnly(ref)
	reg, err := sysregistriesv2.FindRegistry(sys, ref.Name())
	if err != nil {
		t.Fatal(err)
	}
	type src struct {
		ref      dockerref.Named
		insecure bool
	}
	var srcs []src
	if reg == nil {
		srcs = []src{{ref, false}}
	} else {
		ps, err := reg.PullSourcesFromReference(ref)
		if err != nil {
			return []string{"error"}
		}
		for _, p := range ps {
			srcs = append(srcs, src{p.Reference, p.Endpoint.Insecure})
		}
	}
	var out []string
	for _, s := range srcs {
		r, err := sysregistriesv2.FindRegistry(sys, s.ref.Name())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, describe(s.ref.String(), s.insecure, r != nil && r.Blocked))
	}
	return out
}

// runtimeAllows asks the library's policy evaluator about an unsigned image
// named by the reference, through the docker transport's own scope naming.
func runtimeAllows(t *testing.T, pc *signature.PolicyContext, input string) bool {
	t.Helper()
	ref, err := dockerref.ParseNormalizedNamed(input)
	if err != nil {
		t.Fatal(err)
	}
	img := unsignedImage{ref: dockerTransportRef{dockerref.TagNameOnly(ref)}}
	ok, err := pc.IsRunningImageAllowed(context.Background(), img)
	if ok != (err == nil) {
		t.Fatalf("%s: IsRunningImageAllowed returned %v with error %v", input, ok, err)
	}
	var pre signature.PolicyRequirementError
	if err != nil && !errors.As(err, &pre) && !strings.Contains(err.Error(), "signature") {
		t.Logf("%s: %v", input, err)
	}
	return ok
}

// dockerTransportRef names an image in the "docker" transport the way the
// runtime's docker transport does, using its policyconfiguration package; it
// cannot open images, which policy evaluation never asks for.
type dockerTransportRef struct{ ref dockerref.Named }

func (r dockerTransportRef) Transport() types.ImageTransport  { return dockerTransport{} }
func (r dockerTransportRef) StringWithinTransport() string    { return "//" + r.ref.String() }
func (r dockerTransportRef) DockerReference() dockerref.Named { return r.ref }
func (r dockerTransportRef) PolicyConfigurationIdentity() string {
	s, _ := policyconfiguration.DockerReferenceIdentity(r.ref)
	return s
}
func (r dockerTransportRef) PolicyConfigurationNamespaces() []string {
	return policyconfiguration.DockerReferenceNamespaces(r.ref)
}
func (r dockerTransportRef) NewImage(context.Context, *types.SystemContext) (types.ImageCloser, error) {
	return nil, errors.New("not supported")
}
func (r dockerTransportRef) NewImageSource(context.Context, *types.SystemContext) (types.ImageSource, error) {
	return nil, errors.New("not supported")
}
func (r dockerTransportRef) NewImageDestination(context.Context, *types.SystemContext) (types.ImageDestination, error) {
	return nil, errors.New("not supported")
}
func (r dockerTransportRef) DeleteImage(context.Context, *types.SystemContext) error {
	return errors.New("not supported")
}

type dockerTransport struct{}

func (dockerTransport) Name() string { return "docker" }
func (dockerTransport) ParseReference(string) (types.ImageReference, error) {
	return nil, errors.New("not supported")
}
func (dockerTransport) ValidatePolicyConfigurationScope(string) error { return nil }

type unsignedImage struct{ ref types.ImageReference }

func (i unsignedImage) Reference() types.ImageReference { return i.ref }
func (i unsignedImage) Manifest(context.Context) ([]byte, string, error) {
	return []byte(`{"schemaVersion":2}`), "application/vnd.oci.image.manifest.v1+json", nil
}
func (i unsignedImage) Signatures(context.Context) ([][]byte, error) { return nil, nil }
