//go:build containers_image_openpgp

package nodeverify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"

	"github.com/berth-registry/berth/internal/noderoot"
	"github.com/berth-registry/berth/internal/policy"
)

// Options say which node is asked.
type Options struct {
	// Root is the node root (written by berth policy render).
	Root string
	// Namespace is the pod's namespace: its etc/crio/policies/NAMESPACE.json
	// is used instead of policy.json when it exists, as CRI-O does.
	Namespace string
	// AuthFile holds registry credentials (containers-auth.json format);
	// empty means the library's default lookup.
	AuthFile string
	// OS, Arch and Variant choose the instance of a manifest list, as the
	// node's platform would; empty OS means linux, empty Arch this
	// program's architecture.
	OS, Arch, Variant string
}

// Stage says where a refusal happened.
type Stage string

const (
	// StageReference: the reference does not parse.
	StageReference Stage = "reference"
	// StageFetch: no pull source served the manifest (unreachable, not
	// found, blocked by registries.conf).
	StageFetch Stage = "fetch"
	// StagePolicy: the manifest was fetched and the policy refused it.
	StagePolicy Stage = "policy"
)

// Verdict is what a node would do with one image reference.
type Verdict struct {
	// Reference is the reference as given.
	Reference string `json:"reference"`
	// Accepted: a node would pull and run it.
	Accepted bool `json:"accepted"`
	// Policy is the policy file that judged, relative to the root.
	Policy string `json:"policy"`
	// Digest is the manifest judged (the platform's instance of a list).
	Digest string `json:"digest,omitempty"`
	// Stage and Reason say why not, Reason in the runtime library's words.
	Stage  Stage  `json:"stage,omitempty"`
	Reason string `json:"reason,omitempty"`
}

var namespaceName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Verify judges each reference as a node with the given root would.
// An error is returned only when the root itself cannot be read; a refused
// image is a Verdict.
func Verify(ctx context.Context, o Options, refs []string) ([]Verdict, error) {
	if o.Namespace != "" && (len(o.Namespace) > 63 || !namespaceName.MatchString(o.Namespace)) {
		return nil, fmt.Errorf("namespace %q: not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit)", o.Namespace)
	}
	cacheDir, err := os.MkdirTemp("", "berth-verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(cacheDir)
	sys, err := systemContext(o, cacheDir)
	if err != nil {
		return nil, err
	}
	polRel := policy.PolicyJSONPath
	if o.Namespace != "" {
		if _, err := os.Stat(noderoot.NamespacePolicy(o.Root, o.Namespace)); err == nil {
			polRel = policy.CRIOPolicyPath(o.Namespace)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	polPath := noderoot.File(o.Root, polRel)
	pol, err := signature.NewPolicyFromFile(polPath)
	if err != nil {
		return nil, fmt.Errorf("the runtime library refuses %s: %w", polPath, err)
	}
	pc, err := signature.NewPolicyContext(pol)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", polPath, err)
	}
	defer pc.Destroy()

	// The library caches parsed registries.conf by path; a root re-rendered
	// in place must be read afresh.
	sysregistriesv2.InvalidateCache()

	out := make([]Verdict, 0, len(refs))
	for _, r := range refs {
		v := judge(ctx, sys, pc, r)
		v.Policy = polRel
		out = append(out, v)
	}
	return out, nil
}

func systemContext(o Options, cacheDir string) (*types.SystemContext, error) {
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(noderoot.File(root, policy.RegistriesConfPath)); err != nil {
		return nil, fmt.Errorf("%s is not a node root written by berth policy render: %w", o.Root, err)
	}
	osChoice, arch := o.OS, o.Arch
	if osChoice == "" {
		osChoice = "linux"
	}
	if arch == "" {
		arch = runtime.GOARCH
	}
	return &types.SystemContext{
		// certs.d (etc/docker/certs.d, etc/containers/certs.d) is found under
		// the root through the library's implicit absolute paths; every
		// other file is named explicitly, so no user-level override applies.
		RootForImplicitAbsolutePaths: root,
		SystemRegistriesConfPath:     noderoot.File(root, policy.RegistriesConfPath),
		SystemRegistriesConfDirPath:  noderoot.File(root, noderoot.RegistriesConfDir),
		RegistriesDirPath:            noderoot.File(root, policy.RegistriesDDir),
		SignaturePolicyPath:          noderoot.File(root, policy.PolicyJSONPath),
		AuthFilePath:                 o.AuthFile,
		OSChoice:                     osChoice,
		ArchitectureChoice:           arch,
		VariantChoice:                o.Variant,
		// Not under the root: verify must leave the root as render wrote it.
		BlobInfoCacheDir: cacheDir,
		// DockerInsecureSkipTLSVerify stays undefined, so each registries.conf
		// entry's insecure flag decides TLS and plain HTTP, as on the node.
	}, nil
}

// judge makes the checks copy.Image makes before it reads a layer: open the
// source (mirrors first), choose the platform's instance of a list, and
// ask the policy about that instance and its signatures.
func judge(ctx context.Context, sys *types.SystemContext, pc *signature.PolicyContext, r string) Verdict {
	v := Verdict{Reference: r}
	ref, err := docker.ParseReference("//" + strings.TrimPrefix(r, "docker://"))
	if err != nil {
		v.Stage, v.Reason = StageReference, err.Error()
		return v
	}
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		v.Stage, v.Reason = StageFetch, err.Error()
		return v
	}
	defer src.Close()
	unparsed := image.UnparsedInstance(src, nil)
	blob, mime, err := unparsed.Manifest(ctx)
	if err != nil {
		v.Stage, v.Reason = StageFetch, err.Error()
		return v
	}
	if manifest.MIMETypeIsMultiImage(mime) {
		list, err := manifest.ListFromBlob(blob, mime)
		if err != nil {
			v.Stage, v.Reason = StageFetch, err.Error()
			return v
		}
		inst, err := list.ChooseInstance(sys)
		if err != nil {
			v.Stage, v.Reason = StageFetch, err.Error()
			return v
		}
		v.Digest = inst.String()
		unparsed = image.UnparsedInstance(src, &inst)
	} else if d, err := manifest.Digest(blob); err == nil {
		v.Digest = d.String()
	}
	allowed, err := pc.IsRunningImageAllowed(ctx, unparsed)
	// Refused when either says so, as copy.Image is.
	if !allowed || err != nil {
		v.Stage = StagePolicy
		if err != nil {
			v.Reason = err.Error()
		} else {
			v.Reason = "rejected by policy"
		}
		return v
	}
	v.Accepted = true
	return v
}
