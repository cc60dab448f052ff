package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/oci"
)

// TokenPath is where the registry issues bearer tokens when access control
// is on (Options.Auth); the challenge's realm points here.
const TokenPath = "/v2/token"

// principal is who a request comes from: an identity, and for a Bearer
// request the token whose claims decide.
type principal struct {
	id    auth.Identity
	token *auth.Token
}

// anonymous: no credentials at all (an anonymous token counts as having
// done the token dance).
func (p principal) anonymous() bool { return p.id.Anonymous() && p.token == nil }

func (p principal) may(a *auth.Authorizer, repo string, act auth.Action) bool {
	if p.token != nil {
		return p.token.Allows(repo, act)
	}
	return a.Allowed(p.id, repo, act)
}

type catalogIdentityKey struct{}

var errBadCredentials = oci.Errorf(oci.ErrUnauthorized, "authentication required: %s", auth.ErrBadCredentials)

// authenticate reads the Authorization header: none is the anonymous
// principal, Basic is a user (password or robot token), Bearer an access
// token from TokenPath.
func (h *Handler) authenticate(r *http.Request) (principal, *oci.Error) {
	hdr := r.Header.Get("Authorization")
	if hdr == "" {
		return principal{}, nil
	}
	a := h.authz()
	scheme, cred, _ := strings.Cut(hdr, " ")
	switch {
	case strings.EqualFold(scheme, "basic"):
		user, pass, ok := r.BasicAuth()
		if !ok {
			return principal{}, errBadCredentials
		}
		id, err := a.Basic(user, pass)
		if err != nil {
			return principal{}, errBadCredentials
		}
		return principal{id: id}, nil
	case strings.EqualFold(scheme, "bearer"):
		tok, err := a.Bearer(strings.TrimSpace(cred))
		if err != nil {
			return principal{}, oci.Errorf(oci.ErrUnauthorized, "authentication required: the bearer token is invalid or expired")
		}
		return principal{id: a.Identify(tok.Subject), token: tok}, nil
	}
	return principal{}, oci.Errorf(oci.ErrUnauthorized, "authentication required: unsupported authorization scheme %q", scheme)
}

// authorize applies access control to a classified request. It answers 401
// with a challenge when the client should (re)authenticate — no or bad
// credentials, or a token lacking a scope the identity could get — and 403
// DENIED when the identity's roles lack the action. It may return a
// narrowed request: the catalog carries the identity for filtering, and a
// cross-repository mount from a repository the client may not pull loses
// its from parameter, so it becomes an ordinary upload.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, rt Route) (*http.Request, error) {
	a := h.authz()
	p, aerr := h.authenticate(r)
	if aerr != nil {
		return r, h.challenge(w, r, rt, false, aerr)
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.user = p.id.Name
	}
	events.SetActor(r.Context(), p.id.Name)
	switch rt.Kind {
	case KindBase:
		if p.anonymous() {
			return r, h.challenge(w, r, rt, false, oci.Errorf(oci.ErrUnauthorized, "authentication required"))
		}
		return r, nil
	case KindCatalog:
		ok := a.CatalogAny(p.id)
		if p.token != nil {
			ok = p.token.AllowsCatalog()
		}
		if ok {
			return r.WithContext(context.WithValue(r.Context(), catalogIdentityKey{}, p.id)), nil
		}
		if p.id.Anonymous() || a.CatalogAny(p.id) {
			return r, h.challenge(w, r, rt, p.token != nil, oci.Errorf(oci.ErrUnauthorized, "authentication required"))
		}
		return r, denied()
	}
	act := auth.Action(rt.Action)
	if !p.may(a, rt.Repo, act) {
		if p.id.Anonymous() || (p.token != nil && a.Allowed(p.id, rt.Repo, act)) {
			return r, h.challenge(w, r, rt, p.token != nil, oci.Errorf(oci.ErrUnauthorized, "authentication required"))
		}
		return r, denied()
	}
	if rt.Kind == KindUploadStart {
		q := r.URL.Query()
		if from := q.Get("from"); from != "" && q.Get("mount") != "" && !p.may(a, from, auth.Pull) {
			q.Del("from")
			r = r.WithContext(r.Context()) // a copy, so the caller's URL stays
			u := *r.URL
			u.RawQuery = q.Encode()
			r.URL = &u
		}
	}
	return r, nil
}

func denied() error {
	return oci.Errorf(oci.ErrDenied, "requested access to the resource is denied")
}

// challenge sets the Bearer challenge for rt on w and returns e (a 401).
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request, rt Route, insufficientScope bool, e *oci.Error) error {
	var b strings.Builder
	b.WriteString(`Bearer realm="`)
	b.WriteString(h.realm(r))
	b.WriteString(`",service="` + auth.Service + `"`)
	if scope := challengeScope(rt); scope != "" {
		b.WriteString(`,scope="` + scope + `"`)
	}
	if insufficientScope {
		b.WriteString(`,error="insufficient_scope"`)
	}
	w.Header().Set("WWW-Authenticate", b.String())
	if rt.Repo != "" {
		e = e.WithStatus(0) // a copy: errBadCredentials is shared
		e.Detail = []map[string]string{{"Type": "repository", "Name": rt.Repo, "Action": string(rt.Action)}}
	}
	return e
}

// challengeScope is the scope a client should ask for to make rt: a push
// asks for pull too, as clients and Distribution do.
func challengeScope(rt Route) string {
	switch rt.Action {
	case ActionCatalog:
		return auth.CatalogScope.String()
	case ActionPush:
		return "repository:" + rt.Repo + ":pull,push"
	case ActionPull, ActionDelete:
		return "repository:" + rt.Repo + ":" + string(rt.Action)
	}
	return ""
}

// realm is Options.AuthRealm, or the token endpoint on the host the client
// addressed (https when the connection, or a proxy in front, used TLS).
func (h *Handler) realm(r *http.Request) string {
	if realm := h.live.Load().AuthRealm; realm != "" {
		return realm
	}
	return scheme(r) + "://" + r.Host + TokenPath
}

// scheme is how the client reached us: https when the connection, or a
// proxy in front, used TLS.
func scheme(r *http.Request) string {
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return "https"
	}
	return "http"
}

// remoteAddr is the client's address as Distribution reports it in
// events: the first X-Forwarded-For hop, else X-Real-Ip, else the
// connection's peer.
func remoteAddr(r *http.Request) string {
	if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
		first, _, _ := strings.Cut(fwd, ",")
		if first = strings.TrimSpace(first); first != "" {
			return first
		}
	}
	if real := strings.TrimSpace(r.Header.Get("X-Real-Ip")); real != "" {
		return real
	}
	return r.RemoteAddr
}

// token serves TokenPath: GET with optional Basic credentials and scope
// parameters (the Docker token flow), or POST with an OAuth2 password
// grant. Scopes the identity may not have are dropped, not refused.
func (h *Handler) token(w http.ResponseWriter, r *http.Request) error {
	a := h.authz()
	var form map[string][]string
	id := auth.Identity{}
	switch r.Method {
	case http.MethodGet:
		form = r.URL.Query()
		if hdr := r.Header.Get("Authorization"); hdr != "" {
			user, pass, ok := r.BasicAuth()
			if !ok {
				return tokenUnauthorized(w, errors.New("the token endpoint takes Basic credentials"))
			}
			var err error
			if id, err = a.Basic(user, pass); err != nil {
				return tokenUnauthorized(w, err)
			}
		}
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			return oci.Errorf(oci.ErrUnsupported, "malformed token request: %v", err).WithStatus(http.StatusBadRequest)
		}
		form = r.PostForm
		if gt := r.PostForm.Get("grant_type"); gt != "password" {
			return oci.Errorf(oci.ErrUnsupported, "grant_type %q is not supported; use password, or GET with Basic credentials", gt).WithStatus(http.StatusBadRequest)
		}
		var err error
		if id, err = a.Basic(r.PostForm.Get("username"), r.PostForm.Get("password")); err != nil {
			return tokenUnauthorized(w, err)
		}
	default:
		return methodNotAllowed(r)
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.user = id.Name
	}
	for _, svc := range form["service"] {
		if svc != auth.Service {
			return oci.Errorf(oci.ErrUnsupported, "unknown service %q; this registry is %q", svc, auth.Service).WithStatus(http.StatusBadRequest)
		}
	}
	var scopes []auth.Access
	for _, v := range form["scope"] {
		for _, s := range strings.Fields(v) {
			sc, err := auth.ParseScope(s)
			if err != nil {
				return oci.Errorf(oci.ErrUnsupported, "%v", err).WithStatus(http.StatusBadRequest)
			}
			scopes = append(scopes, sc)
		}
	}
	tok, err := a.Issue(id, scopes)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, "application/json", struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}{tok.Token, tok.Token, tok.ExpiresIn, tok.IssuedAt.UTC().Format(time.RFC3339)})
}

func tokenUnauthorized(w http.ResponseWriter, err error) error {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+auth.Service+`"`)
	return oci.Errorf(oci.ErrUnauthorized, "%v", err)
}

// filteredCatalog lists the repositories under the namespaces where id may
// list the catalog, paging through the registry's list until n are found.
func (h *Handler) filteredCatalog(w http.ResponseWriter, r *http.Request, id auth.Identity) error {
	n, last, err := pageParams(r)
	if err != nil {
		return err
	}
	const page = 1000
	names := []string{}
	more := false
	cursor := last
scan:
	for {
		batch, m, err := h.reg.Catalog(r.Context(), cursor, page)
		if err != nil {
			return err
		}
		for _, name := range batch {
			if !h.authz().Allowed(id, name, auth.Catalog) {
				continue
			}
			if n >= 0 && len(names) == n {
				more = true
				break scan
			}
			names = append(names, name)
		}
		if !m || len(batch) == 0 {
			break
		}
		cursor = batch[len(batch)-1]
	}
	if more && len(names) > 0 {
		w.Header().Set("Link", nextLink(r.URL.Path, names[len(names)-1], n))
	}
	return writeJSON(w, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{names})
}
