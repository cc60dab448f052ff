package imageset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/blang/semver/v4"
	"github.com/google/go-containerregistry/pkg/name"
)

// The public update-graph services, as oc-mirror v2 queries them.
const (
	DefaultOCPGraphURL = "https://api.openshift.com/api/upgrades_info/v1/graph"
	DefaultOKDGraphURL = "https://origin-release.ci.openshift.org/graph"
)

// Graph is one channel's update graph for one architecture, as the
// update-graph (Cincinnati) service answers it.
type Graph struct {
	Nodes []GraphNode `json:"nodes"`
	// Edges are [from, to] indexes into Nodes: from can update to to.
	Edges [][2]int `json:"edges"`

	vers []semver.Version
}

// GraphNode is one release in a graph.
type GraphNode struct {
	Version string `json:"version"`
	// Payload is the release image, pinned by digest.
	Payload  string            `json:"payload"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// GraphSource answers the update graph of a channel. typ is ChannelOCP or
// ChannelOKD; arch is an update-graph architecture (amd64, arm64, multi…).
type GraphSource interface {
	Graph(ctx context.Context, typ, channel, arch string) (*Graph, error)
}

// GraphClient is the update-graph service client. Its zero value queries
// the public services.
type GraphClient struct {
	// URL is the OCP service (default DefaultOCPGraphURL); berth's
	// --update-service sets it.
	URL string
	// OKDURL is the service for channels of type okd (default
	// DefaultOKDGraphURL).
	OKDURL string
	// HTTP is the client (nil: a plain http.Client).
	HTTP *http.Client

	mu    sync.Mutex
	cache map[string]*Graph
}

var _ GraphSource = (*GraphClient)(nil)

// maxGraphBytes bounds a graph response; the public OCP graphs are a few MB.
const maxGraphBytes = 64 << 20

// Graph fetches (once per run) and checks the graph of channel for arch.
func (c *GraphClient) Graph(ctx context.Context, typ, channel, arch string) (*Graph, error) {
	base := c.URL
	if base == "" {
		base = DefaultOCPGraphURL
	}
	if typ == ChannelOKD {
		base = c.OKDURL
		if base == "" {
			base = DefaultOKDGraphURL
		}
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("update service %q: want an http(s) URL", base)
	}
	q := u.Query()
	q.Set("channel", channel)
	q.Set("arch", arch)
	u.RawQuery = q.Encode()
	key := u.String()

	c.mu.Lock()
	if g, ok := c.cache[key]; ok {
		c.mu.Unlock()
		return g, nil
	}
	c.mu.Unlock()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, key, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("update service: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxGraphBytes+1))
	if err != nil {
		return nil, fmt.Errorf("update service %s: %w", key, err)
	}
	if resp.StatusCode != http.StatusOK {
		snippet := strings.TrimSpace(string(body))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "…"
		}
		return nil, fmt.Errorf("update service %s: %s: %s", key, resp.Status, snippet)
	}
	if len(body) > maxGraphBytes {
		return nil, fmt.Errorf("update service %s: response over %d bytes", key, maxGraphBytes)
	}
	g, err := ParseGraph(body)
	if err != nil {
		return nil, fmt.Errorf("update service %s: %w", key, err)
	}
	c.mu.Lock()
	if c.cache == nil {
		c.cache = map[string]*Graph{}
	}
	c.cache[key] = g
	c.mu.Unlock()
	return g, nil
}

// ParseGraph reads a graph and checks it (see Check).
func ParseGraph(data []byte) (*Graph, error) {
	var g Graph
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("not an update graph: %w", err)
	}
	if err := g.Check(); err != nil {
		return nil, err
	}
	if len(g.Nodes) > 0 {
		g.version(0) // parse every version now, before the graph is shared
	}
	return &g, nil
}

// Check says what is wrong with a graph, all at once: every version a
// semantic version and unique, every payload pinned by digest, every edge
// between existing nodes. SelectReleases checks first, so a GraphSource
// may hand over a graph it did not check.
func (g *Graph) Check() error {
	var errs []error
	seen := map[string]int{}
	for i, n := range g.Nodes {
		v, err := semver.Parse(n.Version)
		if err != nil {
			errs = append(errs, fmt.Errorf("nodes[%d]: version %q: %v", i, n.Version, err))
		} else if j, dup := seen[v.String()]; dup {
			errs = append(errs, fmt.Errorf("nodes[%d]: version %s is also nodes[%d]", i, n.Version, j))
		} else {
			seen[v.String()] = i
		}
		if _, err := name.NewDigest(n.Payload); err != nil {
			errs = append(errs, fmt.Errorf("nodes[%d] (%s): payload %q is not pinned by digest: %v", i, n.Version, n.Payload, err))
		}
	}
	for i, e := range g.Edges {
		if !g.validEdge(e) {
			errs = append(errs, fmt.Errorf("edges[%d]: [%d, %d] names a node that does not exist (%d nodes)", i, e[0], e[1], len(g.Nodes)))
		}
	}
	return errors.Join(errs...)
}

func (g *Graph) validEdge(e [2]int) bool {
	return e[0] >= 0 && e[0] < len(g.Nodes) && e[1] >= 0 && e[1] < len(g.Nodes)
}

// version of node i (the zero version if it does not parse; Check
// reports those), parsed once: by ParseGraph for the graphs GraphClient
// shares, on first use for a graph built elsewhere.
func (g *Graph) version(i int) semver.Version {
	if len(g.vers) != len(g.Nodes) {
		g.vers = make([]semver.Version, len(g.Nodes))
		for j, n := range g.Nodes {
			g.vers[j], _ = semver.Parse(n.Version)
		}
	}
	return g.vers[i]
}

// sorted returns node indexes by ascending version.
func (g *Graph) sorted() []int {
	idx := make([]int, len(g.Nodes))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return g.version(idx[a]).LT(g.version(idx[b])) })
	return idx
}

func (g *Graph) find(v semver.Version) int {
	for i := range g.Nodes {
		if g.version(i).EQ(v) {
			return i
		}
	}
	return -1
}

// ShortestPath is the shortest update path from version from to version to
// over the edges (breadth first; among equally short paths the one through
// higher versions, as oc-mirror picks), as node indexes, or nil when there
// is none.
func (g *Graph) ShortestPath(from, to int) []int {
	if from < 0 || from >= len(g.Nodes) || to < 0 || to >= len(g.Nodes) {
		return nil
	}
	next := map[int][]int{}
	for _, e := range g.Edges {
		if g.validEdge(e) {
			next[e[0]] = append(next[e[0]], e[1])
		}
	}
	for k := range next {
		ns := next[k]
		sort.Slice(ns, func(a, b int) bool { return g.version(ns[a]).GT(g.version(ns[b])) })
	}
	prev := map[int]int{from: -1}
	queue := []int{from}
	for len(queue) > 0 && queue[0] != to {
		n := queue[0]
		queue = queue[1:]
		for _, m := range next[n] {
			if _, ok := prev[m]; !ok {
				prev[m] = n
				queue = append(queue, m)
			}
		}
	}
	if _, ok := prev[to]; !ok {
		return nil
	}
	var path []int
	for n := to; n != -1; n = prev[n] {
		path = append(path, n)
	}
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return path
}

// SelectReleases picks the channel's nodes that c asks for, in ascending
// version order:
//   - neither bound and not full: the channel head (highest version);
//   - full: every version from MinVersion (or the lowest) up to MaxVersion
//     (or the head);
//   - bounds: every version in [MinVersion, MaxVersion], a missing
//     MinVersion being the lowest and a missing MaxVersion the head, as
//     oc-mirror resolves them;
//   - shortestPath: only the nodes on the shortest update path from
//     MinVersion to MaxVersion, which must then be releases of the channel.
//
// A bound outside the channel's versions is an error naming the channel's
// range; so is an empty channel (usually a misspelled name).
func (g *Graph) SelectReleases(c ReleaseChannel, arch string) ([]int, error) {
	if err := g.Check(); err != nil {
		return nil, fmt.Errorf("channel %q (%s): the update graph is not valid: %w", c.Name, arch, err)
	}
	if len(g.Nodes) == 0 {
		return nil, fmt.Errorf("channel %q has no releases for architecture %s: is the channel name right?", c.Name, arch)
	}
	order := g.sorted()
	lowest, head := g.version(order[0]), g.version(order[len(order)-1])
	bound := func(field, s string, def semver.Version) (semver.Version, error) {
		if s == "" {
			return def, nil
		}
		v, err := semver.Parse(s)
		if err != nil {
			return v, fmt.Errorf("channel %q: %s %q: %v", c.Name, field, s, err)
		}
		if v.LT(lowest) || v.GT(head) {
			return v, fmt.Errorf("channel %q (%s) holds %s to %s: %s %s is outside it", c.Name, arch, lowest, head, field, s)
		}
		return v, nil
	}
	maxV, err := bound("maxVersion", c.MaxVersion, head)
	if err != nil {
		return nil, err
	}
	minDefault := lowest
	if c.MinVersion == "" && c.MaxVersion == "" && !c.Full {
		minDefault = head
	}
	minV, err := bound("minVersion", c.MinVersion, minDefault)
	if err != nil {
		return nil, err
	}
	if minV.GT(maxV) {
		return nil, fmt.Errorf("channel %q: minVersion %s is above maxVersion %s", c.Name, minV, maxV)
	}
	if c.ShortestPath {
		from, to := g.find(minV), g.find(maxV)
		switch {
		case from < 0:
			return nil, fmt.Errorf("channel %q (%s): minVersion %s is not a release of the channel; a shortest path starts at one", c.Name, arch, minV)
		case to < 0:
			return nil, fmt.Errorf("channel %q (%s): maxVersion %s is not a release of the channel; a shortest path ends at one", c.Name, arch, maxV)
		}
		path := g.ShortestPath(from, to)
		if path == nil {
			return nil, fmt.Errorf("channel %q (%s): no update path from %s to %s", c.Name, arch, minV, maxV)
		}
		sort.Slice(path, func(a, b int) bool { return g.version(path[a]).LT(g.version(path[b])) })
		return path, nil
	}
	var out []int
	for _, i := range order {
		if v := g.version(i); v.GTE(minV) && v.LTE(maxV) {
			out = append(out, i)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("channel %q (%s): no release between %s and %s", c.Name, arch, minV, maxV)
	}
	return out, nil
}
