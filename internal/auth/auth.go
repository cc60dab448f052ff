package auth

import (
	"errors"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultTokenLifetime is how long an access token lives unless configured.
const DefaultTokenLifetime = 5 * time.Minute

// ErrBadCredentials means a user name and password (or token) did not
// verify; the message never says which part was wrong.
var ErrBadCredentials = errors.New("invalid username or password")

// Config is access control's configuration.
type Config struct {
	// HtpasswdFile holds the users; empty means none (robot tokens and the
	// anonymous role still work).
	HtpasswdFile string
	// Groups maps a group name to its users.
	Groups map[string][]string
	// Bindings grant roles on namespaces.
	Bindings []Binding
	// Anonymous, when set, is what clients without credentials may do.
	Anonymous *Anonymous
	// SigningKey signs and verifies tokens (see SigningKey).
	SigningKey []byte
	// TokenLifetime of access tokens; zero means DefaultTokenLifetime.
	TokenLifetime time.Duration
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// Revoked, when set, holds the ids of revoked robot tokens: such a
	// token no longer authenticates, nor do access tokens issued for it.
	Revoked *RevocationSet
}

// Authorizer authenticates clients, answers whether an identity may do an
// action on a repository, and issues tokens.
type Authorizer struct {
	users    *Htpasswd
	pol      *policy
	key      []byte
	lifetime time.Duration
	now      func() time.Time
	cache    credCache
	revoked  *RevocationSet
}

// New builds an Authorizer, reading the htpasswd file.
func New(c Config) (*Authorizer, error) {
	if len(c.SigningKey) == 0 {
		return nil, ErrNoSecret
	}
	a := &Authorizer{users: &Htpasswd{hashes: map[string][]byte{}}, key: c.SigningKey, lifetime: c.TokenLifetime, now: c.Now, revoked: c.Revoked}
	if a.lifetime <= 0 {
		a.lifetime = DefaultTokenLifetime
	}
	if a.now == nil {
		a.now = time.Now
	}
	var errs []error
	if c.HtpasswdFile != "" {
		u, err := LoadHtpasswd(c.HtpasswdFile)
		if err != nil {
			errs = append(errs, err)
		} else {
			a.users = u
		}
	}
	p, err := compilePolicy(c.Groups, c.Bindings, c.Anonymous)
	if err != nil {
		errs = append(errs, err)
	}
	a.pol = p
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

// Users is the number of htpasswd users.
func (a *Authorizer) Users() int { return a.users.Len() }

// HasUser tells whether name is an htpasswd user now: a session that
// signed in with a password ends when a reload removes its user.
func (a *Authorizer) HasUser(name string) bool { return a.users.Has(name) }

// Identify returns the identity of an authenticated user name, with its
// groups; the empty name is the anonymous identity.
func (a *Authorizer) Identify(name string) Identity {
	if name == "" {
		return Identity{}
	}
	return a.pol.identify(name)
}

// Allowed tells whether id may do act on repo.
func (a *Authorizer) Allowed(id Identity, repo string, act Action) bool {
	return a.pol.allowed(id, repo, act)
}

// CatalogAny tells whether id may list some part of the catalog.
func (a *Authorizer) CatalogAny(id Identity) bool { return a.pol.holdsAnywhere(id, Catalog) }

// CatalogAll tells whether id may list the whole catalog unfiltered.
func (a *Authorizer) CatalogAll(id Identity) bool { return a.pol.holdsEverywhere(id, Catalog) }

// Basic authenticates a user name and password: an htpasswd entry, or a
// robot token issued to that user as the password.
func (a *Authorizer) Basic(user, password string) (Identity, error) {
	if user == "" {
		return Identity{}, ErrBadCredentials
	}
	if looksLikeJWT(password) {
		if c, err := parse(a.key, password, robotAudience, a.now); err == nil {
			if c.Subject != user || a.revoked.Revoked(c.ID) {
				return Identity{}, ErrBadCredentials
			}
			id := a.pol.identify(user)
			id.Robot = c.ID
			return id, nil
		}
	}
	if a.users.verify(&a.cache, user, password, a.now()) {
		return a.pol.identify(user), nil
	}
	return Identity{}, ErrBadCredentials
}

// Bearer verifies an access token.
func (a *Authorizer) Bearer(token string) (*Token, error) {
	c, err := parse(a.key, token, Service, a.now)
	if err != nil {
		return nil, err
	}
	if c.Robot != "" && a.revoked.Revoked(c.Robot) {
		return nil, ErrBadCredentials
	}
	t := &Token{Subject: c.Subject, Access: c.Access}
	if c.ExpiresAt != nil {
		t.Expires = c.ExpiresAt.Time
	}
	return t, nil
}

// Issue signs an access token for id granting the requested scopes,
// narrowed to what id's roles allow: actions it lacks are dropped, and so
// are scopes left with none (and unknown scope types).
func (a *Authorizer) Issue(id Identity, scopes []Access) (Issued, error) {
	var granted []Access
	add := func(typ, name, act string) {
		for i := range granted {
			if granted[i].Type == typ && granted[i].Name == name {
				if !slices.Contains(granted[i].Actions, act) {
					granted[i].Actions = append(granted[i].Actions, act)
				}
				return
			}
		}
		granted = append(granted, Access{Type: typ, Name: name, Actions: []string{act}})
	}
	for _, s := range scopes {
		switch {
		case s.Type == "repository":
			for _, act := range s.Actions {
				acts := []Action{Action(act)}
				if act == "*" {
					acts = []Action{Pull, Push, Delete}
				}
				for _, x := range acts {
					if x != Catalog && a.Allowed(id, s.Name, x) {
						add(s.Type, s.Name, string(x))
					}
				}
			}
		case s.Type == CatalogScope.Type && s.Name == CatalogScope.Name:
			if a.CatalogAny(id) {
				add(s.Type, s.Name, "*")
			}
		}
	}
	now := a.now()
	tok, err := sign(a.key, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   id.Name,
			Audience:  jwt.ClaimStrings{Service},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(a.lifetime)),
			ID:        newID(),
		},
		Access: granted,
		Robot:  id.Robot,
	})
	if err != nil {
		return Issued{}, err
	}
	return Issued{Token: tok, Access: granted, IssuedAt: now, ExpiresIn: int(a.lifetime / time.Second)}, nil
}
