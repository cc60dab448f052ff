package config

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Auth turns on access control; see internal/auth for the model. Without
// it (the default) the registry is anonymous and open.
type Auth struct {
	// Htpasswd is a file of users with bcrypt password hashes (htpasswd -B,
	// or berth admin htpasswd). Optional: robot tokens and the anonymous
	// role work without it.
	Htpasswd string `yaml:"htpasswd"`
	// TokenSecret signs bearer and robot tokens (HMAC-SHA256; at least 32
	// characters). Empty derives a key from httpSecret; with neither, serve
	// signs with a random per-process key and tokens die with the process.
	// Changing it revokes every token, robot tokens included.
	TokenSecret string `yaml:"tokenSecret"`
	// TokenLifetime of access tokens, a Go duration; default "5m".
	TokenLifetime PositiveDuration `yaml:"tokenLifetime"`
	// Realm overrides the token endpoint URL in challenges, for a proxy
	// that rewrites the host (default: https or http://<host>/v2/token as
	// the client addressed it).
	Realm string `yaml:"realm"`
	// Groups maps a group name to its users.
	Groups map[string][]string `yaml:"groups"`
	// RoleBindings grant roles on namespaces to users and groups.
	RoleBindings []RoleBinding `yaml:"roleBindings"`
	// Anonymous, when set, is what clients without credentials may do.
	Anonymous *AnonymousAccess `yaml:"anonymous"`
}

// RoleBinding grants Role on Namespace to Users and Groups.
type RoleBinding struct {
	// Role is registry-viewer (pull), registry-editor (pull, push) or
	// registry-admin (pull, push, delete, catalog).
	Role string `yaml:"role"`
	// Namespace is a repository prefix matched on path components (team-a,
	// team-a/apps), or "*" for every repository.
	Namespace string   `yaml:"namespace"`
	Users     []string `yaml:"users"`
	Groups    []string `yaml:"groups"`
}

// AnonymousAccess is the role of clients without credentials on some
// namespaces.
type AnonymousAccess struct {
	Role       string   `yaml:"role"`
	Namespaces []string `yaml:"namespaces"`
}

// authRoles are the role names internal/auth defines.
var authRoles = []string{"registry-viewer", "registry-editor", "registry-admin"}

func (a *Auth) defaults() {
	if a != nil && a.TokenLifetime == 0 {
		a.TokenLifetime = PositiveDuration(5 * time.Minute)
	}
}

// validate checks the structure; the namespaces, groups and htpasswd file
// are checked again when serve builds the authorizer.
func (a *Auth) validate() []error {
	if a == nil {
		return nil
	}
	var errs []error
	if a.TokenSecret != "" && len(a.TokenSecret) < 32 {
		errs = append(errs, errors.New("auth.tokenSecret: use at least 32 characters (for example: openssl rand -hex 32)"))
	}
	if a.TokenLifetime < 0 {
		errs = append(errs, fmt.Errorf("auth.tokenLifetime: %s is negative; use a positive duration like 5m", a.TokenLifetime))
	}
	for name := range a.Groups {
		if name == "" || name == "system:authenticated" {
			errs = append(errs, fmt.Errorf("auth.groups: %q is empty or reserved", name))
		}
	}
	for i, b := range a.RoleBindings {
		if !slices.Contains(authRoles, b.Role) {
			errs = append(errs, fmt.Errorf("auth.roleBindings[%d].role: %q is not one of %v", i, b.Role, authRoles))
		}
		if b.Namespace == "" {
			errs = append(errs, fmt.Errorf("auth.roleBindings[%d].namespace: required (a repository prefix, or \"*\")", i))
		}
		if len(b.Users) == 0 && len(b.Groups) == 0 {
			errs = append(errs, fmt.Errorf("auth.roleBindings[%d]: names no users and no groups", i))
		}
		for _, g := range b.Groups {
			if _, ok := a.Groups[g]; !ok && g != "system:authenticated" {
				errs = append(errs, fmt.Errorf("auth.roleBindings[%d].groups: %q is not defined in auth.groups", i, g))
			}
		}
	}
	if an := a.Anonymous; an != nil {
		if !slices.Contains(authRoles, an.Role) {
			errs = append(errs, fmt.Errorf("auth.anonymous.role: %q is not one of %v", an.Role, authRoles))
		}
		if len(an.Namespaces) == 0 {
			errs = append(errs, errors.New("auth.anonymous.namespaces: name at least one namespace (\"*\" for all)"))
		}
	}
	return errs
}
