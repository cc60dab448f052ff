package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseAuth(t *testing.T) {
	c, err := Parse(strings.NewReader(`
auth:
  htpasswd: /etc/berth/htpasswd
  tokenSecret: 0123456789abcdef0123456789abcdef
  groups:
    devs: [alice, bob]
  roleBindings:
  - {role: registry-editor, namespace: team-a, users: [carol], groups: [devs]}
  - {role: registry-admin, namespace: "*", users: [root]}
  - {role: registry-viewer, namespace: shared, groups: ["system:authenticated"]}
  anonymous: {role: registry-viewer, namespaces: [public]}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Auth
	if a == nil || a.Htpasswd != "/etc/berth/htpasswd" || a.TokenLifetime.D() != 5*time.Minute || len(a.RoleBindings) != 3 ||
		a.RoleBindings[0].Groups[0] != "devs" || a.Anonymous.Namespaces[0] != "public" || len(a.Groups["devs"]) != 2 {
		t.Fatalf("auth = %+v", a)
	}
	if c, err := Parse(strings.NewReader("readOnly: true\n")); err != nil || c.Auth != nil {
		t.Fatalf("auth is on without an auth block: %+v %v", c, err)
	}

	for name, tc := range map[string]struct{ in, want string }{
		"unknown key":        {"auth:\n  htpassword: x\n", "field htpassword not found in auth"},
		"unknown in binding": {"auth:\n  roleBindings:\n  - {role: registry-viewer, namespace: a, user: [x]}\n", "field user not found in auth.roleBindings"},
		"short secret":       {"auth:\n  tokenSecret: short\n", "auth.tokenSecret: use at least 32"},
		"bad lifetime":       {"auth:\n  tokenLifetime: soon\n", "auth.tokenLifetime"},
		"unknown role":       {"auth:\n  roleBindings:\n  - {role: owner, namespace: a, users: [x]}\n", `auth.roleBindings[0].role: "owner"`},
		"no namespace":       {"auth:\n  roleBindings:\n  - {role: registry-viewer, users: [x]}\n", "auth.roleBindings[0].namespace: required"},
		"nobody bound":       {"auth:\n  roleBindings:\n  - {role: registry-viewer, namespace: a}\n", "names no users and no groups"},
		"undefined group":    {"auth:\n  roleBindings:\n  - {role: registry-viewer, namespace: a, groups: [ops]}\n", `"ops" is not defined in auth.groups`},
		"reserved group":     {"auth:\n  groups:\n    system:authenticated: [x]\n", "reserved"},
		"anonymous role":     {"auth:\n  anonymous: {role: guest, namespaces: [a]}\n", "auth.anonymous.role"},
		"anonymous nowhere":  {"auth:\n  anonymous: {role: registry-viewer}\n", "auth.anonymous.namespaces"},
	} {
		_, err := Parse(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
}
