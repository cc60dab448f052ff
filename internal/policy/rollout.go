package policy

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// NodeAction is what a node does to apply a change, least disruptive first.
type NodeAction int

// The node actions, in increasing disruption.
const (
	ActionNone NodeAction = iota
	ActionReload
	ActionDrain
	ActionReboot
)

func (a NodeAction) String() string {
	return [...]string{"none", "reload (CRI-O reload, no drain)", "drain (cordon, drain, then apply)", "reboot"}[a]
}

// FileChange is one file's difference between the previous node root and the new one.
type FileChange struct {
	Path   string
	Status string // "added", "removed", "changed", "unchanged"
	Action NodeAction
	// Why explains the action, in the cluster's terms.
	Why []string
}

// Summary is what a render changed and what a node would do about it.
type Summary struct {
	Changes []FileChange
	Action  NodeAction
}

// Summarize compares the previous files of a node root with the new ones and
// classifies each change the way the cluster's node daemon does.
func Summarize(old, new map[string][]byte) Summary {
	paths := map[string]bool{}
	for p := range old {
		paths[p] = true
	}
	for p := range new {
		paths[p] = true
	}
	var s Summary
	for _, p := range sortedKeys(paths) {
		o, inOld := old[p]
		n, inNew := new[p]
		c := FileChange{Path: p}
		switch {
		case !inOld:
			c.Status = "added"
		case !inNew:
			c.Status = "removed"
		case bytes.Equal(o, n):
			c.Status = "unchanged"
		default:
			c.Status = "changed"
		}
		if c.Status != "unchanged" {
			c.Action, c.Why = classify(p, o, n)
		}
		if c.Action > s.Action {
			s.Action = c.Action
		}
		s.Changes = append(s.Changes, c)
	}
	return s
}

func classify(p string, old, new []byte) (NodeAction, []string) {
	switch {
	case p == RegistriesConfPath:
		return registriesConfAction(old, new)
	case p == PolicyJSONPath:
		return ActionReload, []string{"policy.json changes need only a CRI-O reload"}
	case strings.HasPrefix(p, DockerCertsDir+"/") || strings.HasPrefix(p, ContainersCertsDir+"/"):
		return ActionNone, []string{"registry CAs are written by the node daemon's certificate writer directly; no MachineConfig change"}
	case strings.HasPrefix(p, RegistriesDDir+"/"):
		return ActionReload, []string{"registries.d changes need only a CRI-O reload (the node daemon's policy for /etc/containers/registries.d); no drain: the runtime reads signature storage settings at each pull"}
	case strings.HasPrefix(p, CRIOPoliciesDir+"/"):
		return ActionReload, []string{"per-namespace signature policies need only a CRI-O reload (the node daemon's policy for /etc/crio/policies); no drain: CRI-O reads the namespace's policy at each pull, so running pods keep running and new pulls are judged by it"}
	case strings.HasPrefix(p, "etc/containers/registries.conf.d/"):
		return ActionReboot, []string{"the cluster's default node-disruption policy has no entry for registries.conf.d, so an unknown path means a reboot"}
	}
	return ActionReboot, []string{"not a path with a known disruption policy"}
}

// registriesConfAction is the cluster's isSafeContainerRegistryConfChanges:
// only additions of digest-only mirrors (or new entries whose mirrors are all
// digest-only) and search registries appended at the end avoid a drain.
func registriesConfAction(oldB, newB []byte) (NodeAction, []string) {
	if oldB == nil || newB == nil {
		return ActionDrain, []string{"registries.conf added or removed"}
	}
	oldC, err1 := ParseRegistriesConf("old", oldB)
	newC, err2 := ParseRegistriesConf("new", newB)
	if err1 != nil || err2 != nil {
		return ActionDrain, []string{"registries.conf could not be compared"}
	}
	if reflect.DeepEqual(oldC, newC) {
		return ActionReload, []string{"re-encoded; no setting changed"}
	}
	var why []string
	drain := func(format string, args ...any) { why = append(why, fmt.Sprintf(format, args...)) }
	os, ns := oldC.UnqualifiedSearchRegistries, newC.UnqualifiedSearchRegistries
	if len(ns) < len(os) || !equalStrings(ns[:len(os)], os) {
		drain("unqualified-search-registries removed or reordered")
	}
	if oldC.ShortNameMode != newC.ShortNameMode || !equalStrings(oldC.CredentialHelpers, newC.CredentialHelpers) || oldC.AdditionalLayerStoreAuthHelper != newC.AdditionalLayerStoreAuthHelper || fmt.Sprint(oldC.Aliases) != fmt.Sprint(newC.Aliases) {
		drain("global settings changed")
	}
	newBy := map[string]Registry{}
	for _, r := range newC.Registries {
		newBy[r.scope()] = r
	}
	oldBy := map[string]Registry{}
	for _, o := range oldC.Registries {
		oldBy[o.scope()] = o
		n, ok := newBy[o.scope()]
		if !ok {
			drain("registry %q removed", o.scope())
			continue
		}
		if o.Prefix != n.Prefix || o.Location != n.Location || o.Blocked != n.Blocked || o.Insecure != n.Insecure || o.MirrorByDigestOnly != n.MirrorByDigestOnly {
			drain("registry %q changed its location, blocked or insecure setting", o.scope())
		}
		for _, m := range o.Mirrors {
			if !hasEndpoint(n.Mirrors, m) {
				drain("mirror %q of %q removed or changed", m.Location, o.scope())
			}
		}
		for _, m := range n.Mirrors {
			if !hasEndpoint(o.Mirrors, m) && m.PullFromMirror != PullDigestOnly && !n.MirrorByDigestOnly {
				drain("mirror %q of %q added and is not digest-only", m.Location, o.scope())
			}
		}
	}
	for _, n := range newC.Registries {
		if _, ok := oldBy[n.scope()]; ok {
			continue
		}
		safe := len(n.Mirrors) > 0 && !n.Blocked && !n.Insecure
		for _, m := range n.Mirrors {
			if m.PullFromMirror != PullDigestOnly && !n.MirrorByDigestOnly {
				safe = false
			}
		}
		if !safe {
			drain("registry %q added and is not a new source with only digest-only mirrors", n.scope())
		}
	}
	if len(why) > 0 {
		sort.Strings(why)
		return ActionDrain, why
	}
	return ActionReload, []string{"only digest-only mirrors or appended search registries were added"}
}

func hasEndpoint(list []Endpoint, e Endpoint) bool {
	for _, x := range list {
		if x == e {
			return true
		}
	}
	return false
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// String renders the summary for people.
func (s Summary) String() string {
	var b strings.Builder
	for _, c := range s.Changes {
		if c.Status == "unchanged" {
			fmt.Fprintf(&b, "  %-9s %s\n", c.Status, c.Path)
			continue
		}
		fmt.Fprintf(&b, "  %-9s %s → %s\n", c.Status, c.Path, c.Action)
		for _, w := range c.Why {
			fmt.Fprintf(&b, "            %s\n", w)
		}
	}
	fmt.Fprintf(&b, "node action: %s\n", s.Action)
	return b.String()
}
