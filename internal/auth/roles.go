package auth

import (
	"fmt"
	"slices"
	"strings"
)

// Action is what a request does to a repository.
type Action string

// The actions, as the api package classifies requests.
const (
	Pull    Action = "pull"
	Push    Action = "push"
	Delete  Action = "delete"
	Catalog Action = "catalog"
)

// actionSet is a set of actions as bits.
type actionSet uint8

const (
	setPull actionSet = 1 << iota
	setPush
	setDelete
	setCatalog
)

func (a Action) bit() actionSet {
	switch a {
	case Pull:
		return setPull
	case Push:
		return setPush
	case Delete:
		return setDelete
	case Catalog:
		return setCatalog
	}
	return 0
}

// Role names a set of actions.
type Role string

// The roles.
const (
	RoleViewer Role = "registry-viewer"
	RoleEditor Role = "registry-editor"
	RoleAdmin  Role = "registry-admin"
)

// Roles lists the known roles.
var Roles = []Role{RoleViewer, RoleEditor, RoleAdmin}

func (r Role) actions() (actionSet, bool) {
	switch r {
	case RoleViewer:
		return setPull, true
	case RoleEditor:
		return setPull | setPush, true
	case RoleAdmin:
		return setPull | setPush | setDelete | setCatalog, true
	}
	return 0, false
}

// AuthenticatedGroup holds every authenticated identity.
const AuthenticatedGroup = "system:authenticated"

// Binding grants Role on Namespace to Users and Groups.
type Binding struct {
	// Role is one of Roles.
	Role Role
	// Namespace is a repository prefix matched on path components, or "*"
	// for every repository.
	Namespace string
	// Users and Groups receive the role.
	Users, Groups []string
}

// Anonymous is the access of clients without credentials.
type Anonymous struct {
	// Role is one of Roles.
	Role Role
	// Namespaces the role applies to ("*" for all).
	Namespaces []string
}

// Identity is who a request comes from.
type Identity struct {
	// Name is the user name; empty for an anonymous client.
	Name string
	// Groups the user is in, including AuthenticatedGroup.
	Groups []string
	// Robot is the id of the robot token the user logged in with, if any.
	Robot string
}

// Anonymous tells whether the identity presented no credentials.
func (id Identity) Anonymous() bool { return id.Name == "" }

// grant is one namespace and the actions granted on it.
type grant struct {
	namespace string // "*" or a prefix without trailing slash
	actions   actionSet
}

func (g grant) covers(repo string) bool {
	return g.namespace == "*" || repo == g.namespace ||
		(len(repo) > len(g.namespace) && strings.HasPrefix(repo, g.namespace) && repo[len(g.namespace)] == '/')
}

// normalizeNamespace trims a trailing "/*" or "/" and checks what is left.
func normalizeNamespace(ns string) (string, error) {
	if ns == "*" {
		return ns, nil
	}
	n := strings.TrimSuffix(strings.TrimSuffix(ns, "/*"), "/")
	if n == "" || strings.ContainsAny(n, "*: ") || strings.Contains(n, "//") || strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("namespace %q: want \"*\" or a repository prefix like team-a or team-a/apps", ns)
	}
	return n, nil
}

// policy is the compiled role bindings.
type policy struct {
	byUser    map[string][]grant
	byGroup   map[string][]grant
	anonymous []grant
	members   map[string][]string // user → groups (config groups only)
}

func compilePolicy(groups map[string][]string, bindings []Binding, anon *Anonymous) (*policy, error) {
	p := &policy{byUser: map[string][]grant{}, byGroup: map[string][]grant{}, members: map[string][]string{}}
	var errs []string
	for g, users := range groups {
		if g == "" || g == AuthenticatedGroup {
			errs = append(errs, fmt.Sprintf("group %q: name is empty or reserved", g))
		}
		for _, u := range users {
			if !slices.Contains(p.members[u], g) {
				p.members[u] = append(p.members[u], g)
			}
		}
	}
	for u := range p.members {
		slices.Sort(p.members[u])
	}
	for i, b := range bindings {
		set, ok := b.Role.actions()
		if !ok {
			errs = append(errs, fmt.Sprintf("roleBindings[%d]: role %q is not one of %v", i, b.Role, Roles))
			continue
		}
		ns, err := normalizeNamespace(b.Namespace)
		if err != nil {
			errs = append(errs, fmt.Sprintf("roleBindings[%d]: %v", i, err))
			continue
		}
		if len(b.Users) == 0 && len(b.Groups) == 0 {
			errs = append(errs, fmt.Sprintf("roleBindings[%d]: names no users and no groups", i))
		}
		for _, u := range b.Users {
			p.byUser[u] = append(p.byUser[u], grant{ns, set})
		}
		for _, g := range b.Groups {
			if _, ok := groups[g]; !ok && g != AuthenticatedGroup {
				errs = append(errs, fmt.Sprintf("roleBindings[%d]: group %q is not defined in groups", i, g))
			}
			p.byGroup[g] = append(p.byGroup[g], grant{ns, set})
		}
	}
	if anon != nil {
		set, ok := anon.Role.actions()
		if !ok {
			errs = append(errs, fmt.Sprintf("anonymous: role %q is not one of %v", anon.Role, Roles))
		}
		for _, n := range anon.Namespaces {
			ns, err := normalizeNamespace(n)
			if err != nil {
				errs = append(errs, fmt.Sprintf("anonymous: %v", err))
				continue
			}
			p.anonymous = append(p.anonymous, grant{ns, set})
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("auth: %s", strings.Join(errs, "; "))
	}
	return p, nil
}

// identify returns the identity of an authenticated user.
func (p *policy) identify(name string) Identity {
	gs := make([]string, 0, len(p.members[name])+1)
	gs = append(gs, p.members[name]...)
	gs = append(gs, AuthenticatedGroup)
	return Identity{Name: name, Groups: gs}
}

// each calls fn for every grant the identity holds until fn returns true.
func (p *policy) each(id Identity, fn func(grant) bool) bool {
	// What anonymous clients may do, everyone may: logging in never
	// takes access away.
	for _, g := range p.anonymous {
		if fn(g) {
			return true
		}
	}
	if id.Anonymous() {
		return false
	}
	for _, g := range p.byUser[id.Name] {
		if fn(g) {
			return true
		}
	}
	for _, grp := range id.Groups {
		for _, g := range p.byGroup[grp] {
			if fn(g) {
				return true
			}
		}
	}
	return false
}

func (p *policy) allowed(id Identity, repo string, a Action) bool {
	bit := a.bit()
	if bit == 0 {
		return false
	}
	return p.each(id, func(g grant) bool { return g.actions&bit != 0 && g.covers(repo) })
}

// holdsAnywhere tells whether the identity holds the action on any namespace.
func (p *policy) holdsAnywhere(id Identity, a Action) bool {
	bit := a.bit()
	return p.each(id, func(g grant) bool { return g.actions&bit != 0 })
}

// holdsEverywhere tells whether the identity holds the action on "*".
func (p *policy) holdsEverywhere(id Identity, a Action) bool {
	bit := a.bit()
	return p.each(id, func(g grant) bool { return g.actions&bit != 0 && g.namespace == "*" })
}
