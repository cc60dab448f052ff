package policy

import "sort"

// mergedSet is every mirror of one source, merged across objects.
type mergedSet struct {
	source  string
	mirrors []string
	never   bool // mirrorSourcePolicy: NeverContactSource
}

// mergeMirrorSets merges entries of one kind per source, as the cluster does:
// entries whose mirrors only repeat the source are ignored (and so is their
// mirrorSourcePolicy); each entry (m1…mk) orders m1 before m2 … before mk
// before the source unless the source is listed; the union is sorted
// topologically with ties broken by name, and a trailing source is dropped
// because the runtime tries the source last anyway. Sources come out sorted.
func mergeMirrorSets(entries []mirrorEntry, kind string) []mergedSet {
	bySource := map[string][]MirrorSet{}
	for _, e := range entries {
		if e.kind != kind || !hasRealMirror(e.set) {
			continue
		}
		bySource[e.set.Source] = append(bySource[e.set.Source], e.set)
	}
	sources := sortedKeys(bySource)
	out := make([]mergedSet, 0, len(sources))
	for _, src := range sources {
		g := newTopoGraph()
		never := false
		for _, s := range bySource[src] {
			if s.MirrorSourcePolicy == NeverContactSource {
				never = true
			}
			for i := 0; i+1 < len(s.Mirrors); i++ {
				g.addEdge(s.Mirrors[i], s.Mirrors[i+1])
			}
			g.addNode(s.Mirrors[len(s.Mirrors)-1])
			listed := false
			for _, m := range s.Mirrors {
				if m == src {
					listed = true
				}
			}
			if !listed {
				g.addEdge(s.Mirrors[len(s.Mirrors)-1], src)
			}
		}
		sorted := g.sorted()
		if len(sorted) > 0 && sorted[len(sorted)-1] == src {
			sorted = sorted[:len(sorted)-1]
		}
		out = append(out, mergedSet{source: src, mirrors: sorted, never: never})
	}
	return out
}

func hasRealMirror(s MirrorSet) bool {
	for _, m := range s.Mirrors {
		if m != s.Source {
			return true
		}
	}
	return false
}

// topoGraph orders mirrors: an edge a→b means a is tried before b.
type topoGraph struct {
	out map[string]map[string]bool
	in  map[string]int
}

func newTopoGraph() *topoGraph {
	return &topoGraph{out: map[string]map[string]bool{}, in: map[string]int{}}
}

func (g *topoGraph) addNode(n string) {
	if _, ok := g.out[n]; !ok {
		g.out[n] = map[string]bool{}
		g.in[n] += 0
	}
}

func (g *topoGraph) addEdge(a, b string) {
	g.addNode(a)
	g.addNode(b)
	if a == b || g.out[a][b] {
		return
	}
	g.out[a][b] = true
	g.in[b]++
}

// sorted is Kahn's algorithm taking the smallest name among the ready nodes.
// A cycle is broken by taking, among the remaining nodes, the one with the
// fewest unprocessed predecessors, smallest name first — so the order is
// deterministic whatever order the objects were listed in.
func (g *topoGraph) sorted() []string {
	in := map[string]int{}
	for n, d := range g.in {
		in[n] = d
	}
	var res []string
	for len(in) > 0 {
		names := sortedKeys(in)
		pick := ""
		for _, n := range names {
			if in[n] == 0 {
				pick = n
				break
			}
		}
		if pick == "" {
			sort.SliceStable(names, func(i, j int) bool { return in[names[i]] < in[names[j]] })
			pick = names[0]
		}
		res = append(res, pick)
		delete(in, pick)
		for b := range g.out[pick] {
			if _, ok := in[b]; ok {
				in[b]--
			}
		}
	}
	return res
}
