package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Service is the service name in challenges and the audience of access
// tokens.
const Service = "berth"

const (
	issuer        = "berth"
	robotAudience = "berth:robot"
	// leeway absorbs clock skew between replicas.
	leeway = 30 * time.Second
)

// ErrNoSecret means neither auth.tokenSecret nor httpSecret is set.
var ErrNoSecret = errors.New("no token signing secret: set auth.tokenSecret (or httpSecret)")

// SigningKey returns the HMAC key for tokens: tokenSecret itself, else a
// key derived from httpSecret, else nil.
func SigningKey(tokenSecret, httpSecret string) []byte {
	switch {
	case tokenSecret != "":
		return []byte(tokenSecret)
	case httpSecret != "":
		m := hmac.New(sha256.New, []byte(httpSecret))
		m.Write([]byte("berth auth token signing key v1"))
		return m.Sum(nil)
	}
	return nil
}

// Access is one entry of a token's access claim, and one requested scope.
type Access struct {
	// Type is "repository" or "registry" (for the catalog).
	Type string `json:"type"`
	// Name is the repository name, or "catalog".
	Name string `json:"name"`
	// Actions are pull, push, delete, or "*".
	Actions []string `json:"actions"`
}

// String renders the scope form, repository:team-a/app:pull,push.
func (a Access) String() string {
	return a.Type + ":" + a.Name + ":" + strings.Join(a.Actions, ",")
}

// CatalogScope is the scope a catalog request needs.
var CatalogScope = Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}

// ParseScope parses a scope, type:name:actions. The name may itself hold
// colons (a name with a registry port), so the type ends at the first colon
// and the actions start after the last. A resource class, as in
// repository(plugin), is dropped.
func ParseScope(s string) (Access, error) {
	i, j := strings.IndexByte(s, ':'), strings.LastIndexByte(s, ':')
	if i < 0 || i == j {
		return Access{}, fmt.Errorf("scope %q: want type:name:actions", s)
	}
	typ, name, acts := s[:i], s[i+1:j], s[j+1:]
	if k := strings.IndexByte(typ, '('); k > 0 && strings.HasSuffix(typ, ")") {
		typ = typ[:k]
	}
	if typ == "" || name == "" {
		return Access{}, fmt.Errorf("scope %q: want type:name:actions", s)
	}
	a := Access{Type: typ, Name: name}
	for _, x := range strings.Split(acts, ",") {
		if x = strings.TrimSpace(x); x != "" && !slices.Contains(a.Actions, x) {
			a.Actions = append(a.Actions, x)
		}
	}
	return a, nil
}

type claims struct {
	jwt.RegisteredClaims
	Access []Access `json:"access,omitempty"`
	// Robot is the id of the robot token an access token was issued
	// for, so revoking the robot token ends its access tokens too.
	Robot string `json:"robot,omitempty"`
}

// Token is a verified access token.
type Token struct {
	// Subject is the user name; empty for an anonymous token.
	Subject string
	// Access is what the token grants.
	Access []Access
	// Expires is when the token stops being valid.
	Expires time.Time
}

// Allows tells whether the token grants the action on the repository.
func (t *Token) Allows(repo string, act Action) bool {
	for _, a := range t.Access {
		if a.Type == "repository" && a.Name == repo && (slices.Contains(a.Actions, string(act)) || slices.Contains(a.Actions, "*")) {
			return true
		}
	}
	return false
}

// AllowsCatalog tells whether the token grants listing the catalog.
func (t *Token) AllowsCatalog() bool {
	for _, a := range t.Access {
		if a.Type == CatalogScope.Type && a.Name == CatalogScope.Name {
			return true
		}
	}
	return false
}

// Issued is a signed access token and what it grants.
type Issued struct {
	Token    string
	Access   []Access
	IssuedAt time.Time
	// ExpiresIn is the lifetime in whole seconds.
	ExpiresIn int
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sign(key []byte, c claims) (string, error) {
	if len(key) == 0 {
		return "", ErrNoSecret
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
}

func parse(key []byte, token, audience string, now func() time.Time) (*claims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
	)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Robot is a signed robot token and what an operator needs to list and
// revoke it.
type Robot struct {
	// Token is the JWT, the password the user logs in with.
	Token string
	// ID is the token's jti, the name revocation uses.
	ID string
	// User is the user the token authenticates as.
	User string
	// Created and Expires bound its validity (whole seconds, as in the JWT).
	Created, Expires time.Time
}

// NewRobot signs a robot token for user that is valid for ttl.
func NewRobot(key []byte, user string, ttl time.Duration, now time.Time) (Robot, error) {
	if user == "" || strings.ContainsAny(user, ": \t\n") {
		return Robot{}, fmt.Errorf("user name %q is empty or has a colon or blanks", user)
	}
	if ttl <= 0 {
		return Robot{}, fmt.Errorf("a robot token needs a positive lifetime, got %s", ttl)
	}
	r := Robot{ID: newID(), User: user, Created: now.Truncate(time.Second), Expires: now.Add(ttl).Truncate(time.Second)}
	tok, err := sign(key, claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    issuer,
		Subject:   user,
		Audience:  jwt.ClaimStrings{robotAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		ID:        r.ID,
	}})
	if err != nil {
		return Robot{}, err
	}
	r.Token = tok
	return r, nil
}

// NewRobotToken is NewRobot's token alone.
func NewRobotToken(key []byte, user string, ttl time.Duration, now time.Time) (string, error) {
	r, err := NewRobot(key, user, ttl, now)
	return r.Token, err
}

// looksLikeJWT is a cheap test before trying a password as a robot token.
func looksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}
