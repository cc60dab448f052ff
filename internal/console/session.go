package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
)

const cookieName = "berth_session"

// session is what the cookie says: a random id (the CSRF token is bound to
// it), who signed in (empty: nobody) and until when.
type session struct {
	ID    string `json:"i"`
	User  string `json:"u,omitempty"`
	Robot string `json:"r,omitempty"`
	Exp   int64  `json:"e"`
}

func newSessionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (h *Handler) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, h.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

func (h *Handler) encodeSession(s session) string {
	b, _ := json.Marshal(s)
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + base64.RawURLEncoding.EncodeToString(h.mac("session", p))
}

// decodeSession verifies the signature and the expiry.
func (h *Handler) decodeSession(v string, now time.Time) (session, bool) {
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return session{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, h.mac("session", p)) {
		return session{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return session{}, false
	}
	var s session
	if json.Unmarshal(b, &s) != nil || s.ID == "" || now.Unix() >= s.Exp {
		return session{}, false
	}
	return s, true
}

func (h *Handler) csrfToken(s session) string {
	return base64.RawURLEncoding.EncodeToString(h.mac("csrf", s.ID))
}

func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (h *Handler) setSession(w http.ResponseWriter, r *http.Request, s session) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    h.encodeSession(s),
		Path:     "/",
		Expires:  time.Unix(s.Exp, 0),
		HttpOnly: true,
		Secure:   secure(r),
		SameSite: http.SameSiteStrictMode,
	})
}

// viewer is who a request comes from, and what the API's live settings let
// that identity do.
type viewer struct {
	sess     session
	id       auth.Identity
	authz    *auth.Authorizer // nil: access control is off
	readOnly bool
}

func (v *viewer) may(repo string, act auth.Action) bool {
	return v.authz == nil || v.authz.Allowed(v.id, repo, act)
}

// viewer reads the session cookie (starting an anonymous session when there
// is none, so even the login form has a CSRF token) and resolves the
// identity against the current authorizer.
func (h *Handler) viewer(w http.ResponseWriter, r *http.Request) *viewer {
	live := h.api.Settings()
	v := &viewer{authz: live.Auth, readOnly: live.ReadOnly}
	now := h.now()
	if c, err := r.Cookie(cookieName); err == nil {
		if s, ok := h.decodeSession(c.Value, now); ok {
			v.sess = s
		}
	}
	if v.sess.ID == "" {
		v.sess = session{ID: newSessionID(), Exp: now.Add(h.lifetime).Unix()}
		h.setSession(w, r, v.sess)
	}
	if v.authz == nil || v.sess.User == "" {
		return v
	}
	id := v.authz.Identify(v.sess.User)
	if v.sess.Robot == "" && !v.authz.HasUser(v.sess.User) {
		// The user was removed from the htpasswd file (a reload) after
		// signing in: the session ends as a password check would fail.
		v.sess = session{ID: newSessionID(), Exp: now.Add(h.lifetime).Unix()}
		h.setSession(w, r, v.sess)
		return v
	}
	if v.sess.Robot != "" {
		// A robot token revoked after sign-in ends the session: an access
		// token issued for it no longer verifies.
		id.Robot = v.sess.Robot
		tok, err := v.authz.Issue(id, nil)
		if err == nil {
			_, err = v.authz.Bearer(tok.Token)
		}
		if err != nil {
			v.sess = session{ID: newSessionID(), Exp: now.Add(h.lifetime).Unix()}
			h.setSession(w, r, v.sess)
			return v
		}
	}
	v.id = id
	return v
}

// checkPost refuses a state-changing request without the session's CSRF
// token or from another site.
func (h *Handler) checkPost(r *http.Request, v *viewer) error {
	if r.Method != http.MethodPost {
		return &httpError{http.StatusMethodNotAllowed, "this address takes POST"}
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return &httpError{http.StatusForbidden, "refused: the request came from another site"}
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return &httpError{http.StatusForbidden, "refused: the request came from another origin"}
		}
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return &httpError{http.StatusBadRequest, "malformed form: " + err.Error()}
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(h.csrfToken(v.sess))) {
		return &httpError{http.StatusForbidden, "refused: the form's CSRF token is missing or stale; reload the page and try again"}
	}
	return nil
}
