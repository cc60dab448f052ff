package api

import (
	"net/http"
	"strings"

	"github.com/berth-registry/berth/internal/oci"
)

// Kind is what a /v2/ path addresses.
type Kind int

// The kinds of route.
const (
	KindBase        Kind = iota + 1 // /v2/
	KindCatalog                     // /v2/_catalog
	KindTags                        // /v2/<name>/tags/list
	KindManifest                    // /v2/<name>/manifests/<reference>
	KindBlob                        // /v2/<name>/blobs/<digest>
	KindUploadStart                 // /v2/<name>/blobs/uploads/
	KindUpload                      // /v2/<name>/blobs/uploads/<id>
	KindReferrers                   // /v2/<name>/referrers/<digest>
)

// Action is what a request does to its repository; access control and
// request limits decide on (Repo, Action).
type Action string

// The actions.
const (
	ActionPull    Action = "pull"
	ActionPush    Action = "push"
	ActionDelete  Action = "delete"
	ActionCatalog Action = "catalog"
	ActionNone    Action = "" // the base endpoint
)

// Route is a parsed request path.
type Route struct {
	Kind Kind
	Repo string
	// Ref is the manifest reference, blob or subject digest, or upload id.
	Ref    string
	Action Action
}

// ParseRoute parses a request path and method. The repository name may have
// many components, so the path is read from its end, where the grammar is
// fixed. A malformed repository name is NAME_INVALID; a path that is no
// route at all is reported with ok == false.
func ParseRoute(method, path string) (rt Route, ok bool, err error) {
	if path == "/v2" || path == "/v2/" {
		return Route{Kind: KindBase}, true, nil
	}
	rest, found := strings.CutPrefix(path, "/v2/")
	if !found {
		return Route{}, false, nil
	}
	if rest == "_catalog" {
		return Route{Kind: KindCatalog, Action: ActionCatalog}, true, nil
	}
	seg := strings.Split(rest, "/")
	n := len(seg)
	var name []string
	switch {
	case n >= 3 && seg[n-2] == "tags" && seg[n-1] == "list":
		rt, name = Route{Kind: KindTags}, seg[:n-2]
	case n >= 3 && seg[n-2] == "manifests" && seg[n-1] != "":
		rt, name = Route{Kind: KindManifest, Ref: seg[n-1]}, seg[:n-2]
	case n >= 3 && seg[n-2] == "referrers" && seg[n-1] != "":
		rt, name = Route{Kind: KindReferrers, Ref: seg[n-1]}, seg[:n-2]
	case n >= 4 && seg[n-3] == "blobs" && seg[n-2] == "uploads" && seg[n-1] == "":
		rt, name = Route{Kind: KindUploadStart}, seg[:n-3]
	case n >= 3 && seg[n-2] == "blobs" && seg[n-1] == "uploads":
		rt, name = Route{Kind: KindUploadStart}, seg[:n-2]
	case n >= 4 && seg[n-3] == "blobs" && seg[n-2] == "uploads" && seg[n-1] != "":
		rt, name = Route{Kind: KindUpload, Ref: seg[n-1]}, seg[:n-3]
	case n >= 3 && seg[n-2] == "blobs" && seg[n-1] != "":
		rt, name = Route{Kind: KindBlob, Ref: seg[n-1]}, seg[:n-2]
	default:
		return Route{}, false, nil
	}
	rt.Repo = strings.Join(name, "/")
	if err := oci.ValidateName(rt.Repo); err != nil {
		return Route{}, true, err
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		rt.Action = ActionPull
	case http.MethodDelete:
		rt.Action = ActionDelete
		if rt.Kind == KindUpload {
			rt.Action = ActionPush // cancelling an upload is part of pushing
		}
	default:
		rt.Action = ActionPush
	}
	return rt, true, nil
}
