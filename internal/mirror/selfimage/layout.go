package selfimage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
)

const refNameAnnotation = "org.opencontainers.image.ref.name"

// WriteLayout writes img into the OCI image layout at dir (created when
// missing) under the name refName ("berth:VERSION"), replacing an image of
// that name, and returns its digest. skopeo, podman, crane and berth mirror
// read the layout as oci:DIR:NAME.
func WriteLayout(dir string, img v1.Image, refName string) (v1.Hash, error) {
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("selfimage: %w", err)
	}
	p, err := layout.FromPath(dir)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return v1.Hash{}, fmt.Errorf("selfimage: %w", err)
		}
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return v1.Hash{}, fmt.Errorf("selfimage: %s: %w", dir, err)
		}
	default:
		return v1.Hash{}, fmt.Errorf("selfimage: %s: %w", dir, err)
	}
	anns := map[string]string{refNameAnnotation: refName}
	if err := p.ReplaceImage(img, match.Annotation(refNameAnnotation, refName), layout.WithAnnotations(anns)); err != nil {
		return v1.Hash{}, fmt.Errorf("selfimage: write %s: %w", dir, err)
	}
	return digest, nil
}

// Push copies the image with this digest from the layout at dir to dst
// (HOST/REPO[:TAG]) with the mirror engine, so registry credentials, TLS and
// retries work as for berth mirror. It returns the engine's result.
func Push(ctx context.Context, dir string, digest v1.Hash, dst string, opts mirror.RegistryOptions, log *slog.Logger) (*mirror.Result, error) {
	var nopts []name.Option
	if opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(dst, nopts...)
	if err != nil {
		return nil, fmt.Errorf("selfimage: destination %q: %w", dst, err)
	}
	tag, to := "", ref.Context().String()+"@"+digest.String()
	if t, ok := ref.(name.Tag); ok {
		tag, to = t.TagStr(), t.String()
	} else if ref.Identifier() != digest.String() {
		return nil, fmt.Errorf("selfimage: destination %q names digest %s, but the image is %s", dst, ref.Identifier(), digest)
	}
	src, err := mirror.OpenLayout(dir, false)
	if err != nil {
		return nil, fmt.Errorf("selfimage: %w", err)
	}
	reg, err := mirror.NewRegistry(ref.Context().RegistryStr(), opts)
	if err != nil {
		return nil, fmt.Errorf("selfimage: %w", err)
	}
	res := mirror.NewCopier(mirror.Options{NoReferrers: true, Log: log}).Copy(ctx, mirror.Job{
		Source:  src,
		SrcRef:  digest.String(),
		Target:  reg,
		DstRepo: ref.Context().RepositoryStr(),
		DstTag:  tag,
		From:    "oci:" + dir + "@" + digest.String(),
		To:      to,
	})
	if res.Error != "" {
		return res, fmt.Errorf("selfimage: push to %s: %s", dst, res.Error)
	}
	return res, nil
}
