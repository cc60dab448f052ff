//go:build containers_image_openpgp

package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"math/bits"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	dockerref "go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"
)

// The runtime library judges the signature parts of every vector: it must
// load each rendered policy.json and CRI-O namespace policy, marshal them
// back byte for byte (the cluster writes the library's marshalled form), and
// for every probe reference choose the same scope as explain and give the
// same verdict on an unsigned image.
func TestPolicyRuntimeLibraryAgreesOnSignatures(t *testing.T) {
	probed := 0
	for _, v := range loadVectors(t) {
		r, errText := renderVector(v)
		if errText != "" {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			node := loadRendered(t, r.Files)
			policies := map[string]string{"": PolicyJSONPath} // namespace → file
			for ns := range node.Namespaces {
				policies[ns] = CRIOPolicyPath(ns)
			}
			for _, ns := range sortedKeys(policies) {
				file := policies[ns]
				data := r.Files[file]
				pol, err := signature.NewPolicyFromBytes(data)
				if err != nil {
					t.Fatalf("the runtime refuses %s: %v", file, err)
				}
				again, err := json.MarshalIndent(pol, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(append(again, '\n'), data) && len(v.in.ClusterImagePolicies)+len(v.in.ImagePolicies) > 0 {
					t.Errorf("%s differs from the runtime's own marshalling of it (-berth +runtime):\n%s", file, cmp.Diff(string(data), string(again)+"\n"))
				}
				pc, err := signature.NewPolicyContext(pol)
				if err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				for _, ref := range vectorRefs(v.in) {
					e, err := node.ExplainWith(ref, ExplainOptions{Namespace: ns})
					if err != nil {
						t.Fatal(err)
					}
					verdict, rules := e.Policy, e.Signatures
					if ns != "" {
						verdict, rules = e.Namespace.Policy, e.Namespace.Signatures
					}
					if got := runtimeScope(t, data, ref); got != verdict.Scope {
						t.Errorf("%s %s: explain says scope %q decides, the runtime chose %q", file, ref, verdict.Scope, got)
					}
					allowed, err := runtimeVerdict(pc, ref)
					if allowed != verdict.Allowed {
						t.Errorf("%s %s: explain says allowed=%v, the runtime %v (%v)", file, ref, verdict.Allowed, allowed, err)
					}
					needsSig := len(rules) > 0 && !slices.Contains(verdict.Requirements, "reject")
					if needsSig && (err == nil || !strings.Contains(err.Error(), "A signature was required, but no signature exists")) {
						t.Errorf("%s %s: explain names signature rules %v, but the runtime refuses an unsigned image with %v", file, ref, rules, err)
					}
					probed++
				}
				pc.Destroy()
			}
		})
	}
	if probed < 200 {
		t.Fatalf("only %d reference/policy pairs probed", probed)
	}
}

// runtimeScope finds which scope the library picks for ref: it evaluates
// rewritten copies of the policy where the scopes whose index has bit k set
// reject and the others accept, and reads the index back from the verdicts.
// Index 0 is the global default; the docker transport's scopes follow.
func runtimeScope(t *testing.T, data []byte, ref string) string {
	t.Helper()
	var p PolicyFile
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	scopes := []string{"default"}
	docker := sortedKeys(p.Transports["docker"])
	scopes = append(scopes, docker...)
	n := bits.Len(uint(len(scopes)))
	idx := 0
	for k := 0; k < n; k++ {
		req := func(i int) json.RawMessage {
			if i&(1<<k) != 0 {
				return reqReject
			}
			return reqAccept
		}
		q := PolicyFile{Default: []json.RawMessage{req(0)}, Transports: map[string]map[string][]json.RawMessage{"docker": {}}}
		for i, s := range docker {
			q.Transports["docker"][s] = []json.RawMessage{req(i + 1)}
		}
		pol, err := signature.NewPolicyFromBytes(q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		pc, err := signature.NewPolicyContext(pol)
		if err != nil {
			t.Fatal(err)
		}
		ok, _ := runtimeVerdict(pc, ref)
		pc.Destroy()
		if !ok {
			idx |= 1 << k
		}
	}
	if idx >= len(scopes) {
		t.Fatalf("%s: scope index %d out of range", ref, idx)
	}
	return scopes[idx]
}

func runtimeVerdict(pc *signature.PolicyContext, input string) (bool, error) {
	ref, err := dockerref.ParseNormalizedNamed(input)
	if err != nil {
		return false, err
	}
	img := unsignedImage{ref: dockerTransportRef{dockerref.TagNameOnly(ref)}}
	return pc.IsRunningImageAllowed(context.Background(), img)
}

// The cluster builds each requirement with the library's constructors
// (policyItemFromSpec); Berth's JSON must be what they marshal to.
func TestPolicySigstoreRequirementMatchesLibraryConstructors(t *testing.T) {
	n := 0
	for _, v := range loadVectors(t) {
		if len(v.problems) > 0 || len(Validate(v.in)) > 0 {
			continue
		}
		for _, o := range signatureObjects(v.in) {
			want := libraryRequirement(t, &o.spec.Policy)
			got := sigstoreRequirement(&o.spec.Policy)
			if !bytes.Equal(want, got) {
				t.Errorf("%s %s: requirement differs (-library +berth):\n%s", v.name, o, cmp.Diff(string(want), string(got)))
			}
			n++
		}
	}
	if n < 12 {
		t.Fatalf("only %d policies compared", n)
	}
}

func libraryRequirement(t *testing.T, p *SignaturePolicy) []byte {
	t.Helper()
	var opts []signature.PRSigstoreSignedOption
	rt := p.RootOfTrust
	switch rt.PolicyType {
	case PolicyTypePublicKey:
		opts = append(opts, signature.PRSigstoreSignedWithKeyData(unb64(rt.PublicKey.KeyData)))
		if rt.PublicKey.RekorKeyData != "" {
			opts = append(opts, signature.PRSigstoreSignedWithRekorPublicKeyData(unb64(rt.PublicKey.RekorKeyData)))
		}
	case PolicyTypeFulcioCAWithRekor:
		f := rt.FulcioCAWithRekor
		fulcio, err := signature.NewPRSigstoreSignedFulcio(
			signature.PRSigstoreSignedFulcioWithCAData(unb64(f.FulcioCAData)),
			signature.PRSigstoreSignedFulcioWithOIDCIssuer(f.FulcioSubject.OIDCIssuer),
			signature.PRSigstoreSignedFulcioWithSubjectEmail(f.FulcioSubject.SignedEmail))
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, signature.PRSigstoreSignedWithFulcio(fulcio), signature.PRSigstoreSignedWithRekorPublicKeyData(unb64(f.RekorKeyData)))
	case PolicyTypePKI:
		k := rt.PKI
		popts := []signature.PRSigstoreSignedPKIOption{signature.PRSigstoreSignedPKIWithCARootsData(unb64(k.CARootsData))}
		if k.CAIntermediatesData != "" {
			popts = append(popts, signature.PRSigstoreSignedPKIWithCAIntermediatesData(unb64(k.CAIntermediatesData)))
		}
		if k.PKICertificateSubject.Email != "" {
			popts = append(popts, signature.PRSigstoreSignedPKIWithSubjectEmail(k.PKICertificateSubject.Email))
		}
		if k.PKICertificateSubject.Hostname != "" {
			popts = append(popts, signature.PRSigstoreSignedPKIWithSubjectHostname(k.PKICertificateSubject.Hostname))
		}
		pki, err := signature.NewPRSigstoreSignedPKI(popts...)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, signature.PRSigstoreSignedWithPKI(pki))
	}
	var id signature.PolicyReferenceMatch = signature.NewPRMMatchRepoDigestOrExact()
	var err error
	if s := p.SignedIdentity; s != nil {
		switch s.MatchPolicy {
		case MatchRepository:
			id = signature.NewPRMMatchRepository()
		case ExactRepository:
			id, err = signature.NewPRMExactRepository(s.ExactRepository.Repository)
		case RemapIdentity:
			id, err = signature.NewPRMRemapIdentity(s.RemapIdentity.Prefix, s.RemapIdentity.SignedPrefix)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	opts = append(opts, signature.PRSigstoreSignedWithSignedIdentity(id))
	req, err := signature.NewPRSigstoreSigned(opts...)
	if err != nil {
		t.Fatalf("the library refuses the policy: %v", err)
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Malformed signature policy files are refused by the runtime as by Berth's
// loader, so explain never describes a file a node would not load.
func TestPolicyCRIOPolicyLoadErrors(t *testing.T) {
	for _, c := range []struct{ name, data string }{
		{"etc/crio/policies/x.json", `{"default":[{"type":"reject"}],"transports":{"docker":{"quay.io":[{"typo":"x"}]}}}`},
		{"etc/crio/policies/x.json", `{"default":[]}`},
		{"etc/crio/policies/x.json", `{`},
	} {
		_, libErr := signature.NewPolicyFromBytes([]byte(c.data))
		n := &Node{}
		berthErr := n.LoadSignatureFiles(nil, []NamedFile{{c.name, []byte(c.data)}})
		if (libErr == nil) != (berthErr == nil) {
			t.Errorf("%s: the runtime says %v, Berth says %v", c.data, libErr, berthErr)
		}
	}
}
