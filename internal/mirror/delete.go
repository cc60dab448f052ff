package mirror

import (
	"context"
	"net/http"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DeleteManifest deletes repo's manifest d (and so every tag naming it).
// A manifest that is already gone is not an error: a rerun of an
// interrupted delete goes on where it stopped.
func (r *Registry) DeleteManifest(ctx context.Context, repo string, d v1.Hash) error {
	req, _ := http.NewRequest(http.MethodDelete, r.url(repo, "manifests", d.String()), nil)
	resp, err := r.do(ctx, repo, true, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusOK, http.StatusNoContent, http.StatusNotFound:
		return nil
	}
	return httpError(resp)
}
