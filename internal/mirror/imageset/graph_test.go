package imageset

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// payload is a made-up release image pinned by a digest derived from its
// version and arch, so every test computes the same one.
func payload(version, arch string) string {
	return fmt.Sprintf("quay.io/openshift-release-dev/ocp-release@sha256:%x", sha256.Sum256([]byte(version+"-"+arch)))
}

// testGraph builds a graph of versions with edges given as "from>to".
func testGraph(arch string, versions []string, edges ...string) *Graph {
	g := &Graph{Edges: [][2]int{}}
	idx := map[string]int{}
	for i, v := range versions {
		idx[v] = i
		g.Nodes = append(g.Nodes, GraphNode{Version: v, Payload: payload(v, arch), Metadata: map[string]string{"io.openshift.upgrades.graph.release.manifestref": "sha256:x"}})
	}
	for _, e := range edges {
		from, to, _ := strings.Cut(e, ">")
		g.Edges = append(g.Edges, [2]int{idx[from], idx[to]})
	}
	return g
}

// graphServer is an update-graph service on loopback serving graphs by
// "channel/arch"; raw answers are served as they are.
type graphServer struct {
	*httptest.Server
	mu       sync.Mutex
	graphs   map[string]*Graph
	raw      map[string]string
	requests []string
}

func newGraphServer(t *testing.T) *graphServer {
	t.Helper()
	s := &graphServer{graphs: map[string]*Graph{}, raw: map[string]string{}}
	// Versions listed out of order: the service does not sort.
	s.graphs["stable-4.16/amd64"] = testGraph("amd64",
		[]string{"4.16.2", "4.16.0", "4.16.1", "4.16.4", "4.16.3", "4.16.5"},
		"4.16.0>4.16.1", "4.16.0>4.16.2", "4.16.1>4.16.3", "4.16.2>4.16.4", "4.16.3>4.16.4", "4.16.1>4.16.2")
	s.graphs["stable-4.16/multi"] = testGraph("multi", []string{"4.16.3", "4.16.4"}, "4.16.3>4.16.4")
	s.graphs["fast-4.16/amd64"] = testGraph("amd64", []string{"4.16.4", "4.16.5", "4.16.6"}, "4.16.4>4.16.5", "4.16.5>4.16.6")
	s.graphs["stable-4/amd64"] = testGraph("amd64", []string{"4.15.0-0.okd-2024-01-27-070424"})
	// eus-4.14 → eus-4.15 → eus-4.16, each holding the previous minor's
	// head, as the service's channels do.
	s.graphs["eus-4.14/amd64"] = testGraph("amd64", []string{"4.14.8", "4.14.9"}, "4.14.8>4.14.9")
	s.graphs["eus-4.15/amd64"] = testGraph("amd64", []string{"4.14.9", "4.15.0", "4.15.1"}, "4.14.9>4.15.0", "4.15.0>4.15.1", "4.14.9>4.15.1")
	s.graphs["eus-4.16/amd64"] = testGraph("amd64", []string{"4.15.1", "4.16.0", "4.16.1"}, "4.15.1>4.16.0", "4.16.0>4.16.1", "4.15.1>4.16.1")
	s.graphs["stable-4.14/amd64"] = testGraph("amd64", []string{"4.14.0", "4.14.1", "4.14.2", "4.14.3", "4.14.4"}, "4.14.0>4.14.1", "4.14.1>4.14.2", "4.14.2>4.14.3", "4.14.3>4.14.4")
	s.graphs["candidate-4.16/amd64"] = testGraph("amd64", []string{"4.15.1", "4.16.0", "4.16.1"}, "4.15.1>4.16.0", "4.16.0>4.16.1")
	s.graphs["gap-4.14/amd64"] = s.graphs["eus-4.14/amd64"]
	s.graphs["gap-4.16/amd64"] = s.graphs["eus-4.16/amd64"]
	s.raw["broken/amd64"] = `{"nodes":[{"version":"four","payload":"quay.io/x/y:tag"}],"edges":[[0,3]]}`
	s.raw["garbage/amd64"] = `<html>`
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.URL.Path+"?"+r.URL.RawQuery)
		s.mu.Unlock()
		if r.Header.Get("Accept") != "application/json" {
			http.Error(w, "want Accept: application/json", http.StatusNotAcceptable)
			return
		}
		q := r.URL.Query()
		key := q.Get("channel") + "/" + q.Get("arch")
		if q.Get("channel") == "unavailable" {
			http.Error(w, "upstream down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if raw, ok := s.raw[key]; ok {
			fmt.Fprint(w, raw)
			return
		}
		g, ok := s.graphs[key]
		if !ok {
			g = &Graph{Nodes: []GraphNode{}, Edges: [][2]int{}} // as the service answers an unknown channel
		}
		_ = json.NewEncoder(w).Encode(g)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *graphServer) client() *GraphClient {
	return &GraphClient{URL: s.URL + "/api/upgrades_info/v1/graph", OKDURL: s.URL + "/okd/graph", HTTP: s.Client()}
}

func TestGraphClient(t *testing.T) {
	s := newGraphServer(t)
	c := s.client()
	ctx := context.Background()
	cases := []struct {
		name, typ, channel, arch string
		nodes                    int
		err                      string
		path                     string
	}{
		{name: "ocp channel", typ: ChannelOCP, channel: "stable-4.16", arch: "amd64", nodes: 6, path: "/api/upgrades_info/v1/graph?arch=amd64&channel=stable-4.16"},
		{name: "multi", typ: ChannelOCP, channel: "stable-4.16", arch: "multi", nodes: 2, path: "/api/upgrades_info/v1/graph?arch=multi&channel=stable-4.16"},
		{name: "okd goes to the okd service", typ: ChannelOKD, channel: "stable-4", arch: "amd64", nodes: 1, path: "/okd/graph?arch=amd64&channel=stable-4"},
		{name: "unknown channel is an empty graph", typ: ChannelOCP, channel: "stable-4.99", arch: "amd64", nodes: 0},
		{name: "service error", typ: ChannelOCP, channel: "unavailable", arch: "amd64", err: "503 Service Unavailable: upstream down"},
		{name: "not JSON", typ: ChannelOCP, channel: "garbage", arch: "amd64", err: "not an update graph"},
		{name: "invalid graph, every problem", typ: ChannelOCP, channel: "broken", arch: "amd64", err: `nodes[0]: version "four"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.requests)
			g, err := c.Graph(ctx, tc.typ, tc.channel, tc.arch)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Nodes) != tc.nodes {
				t.Errorf("%d nodes, want %d", len(g.Nodes), tc.nodes)
			}
			if tc.path != "" && s.requests[before] != tc.path {
				t.Errorf("asked %s, want %s", s.requests[before], tc.path)
			}
		})
	}
	t.Run("cached per run", func(t *testing.T) {
		before := len(s.requests)
		for i := 0; i < 3; i++ {
			if _, err := c.Graph(ctx, ChannelOCP, "stable-4.16", "amd64"); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(s.requests) - before; n != 0 {
			t.Errorf("%d more requests for a graph already fetched", n)
		}
	})
	t.Run("broken graph names every problem", func(t *testing.T) {
		_, err := c.Graph(ctx, ChannelOCP, "broken", "amd64")
		for _, want := range []string{`version "four"`, "not pinned by digest", "edges[0]: [0, 3]"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to contain %q", err, want)
			}
		}
	})
	t.Run("bad URL", func(t *testing.T) {
		_, err := (&GraphClient{URL: "ftp://x"}).Graph(ctx, ChannelOCP, "stable-4.16", "amd64")
		if err == nil || !strings.Contains(err.Error(), "want an http(s) URL") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestSelectReleases(t *testing.T) {
	g := testGraph("amd64",
		[]string{"4.16.2", "4.16.0", "4.16.1", "4.16.4", "4.16.3", "4.16.5", "4.16.6"},
		"4.16.0>4.16.1", "4.16.0>4.16.2", "4.16.1>4.16.3", "4.16.2>4.16.4", "4.16.3>4.16.4", "4.16.1>4.16.2", "4.16.4>4.16.5")
	cases := []struct {
		name string
		ch   ReleaseChannel
		want []string
		err  string
	}{
		{"head by default", ReleaseChannel{}, []string{"4.16.6"}, ""},
		{"range, inclusive", ReleaseChannel{MinVersion: "4.16.1", MaxVersion: "4.16.3"}, []string{"4.16.1", "4.16.2", "4.16.3"}, ""},
		{"min only: up to the head", ReleaseChannel{MinVersion: "4.16.4"}, []string{"4.16.4", "4.16.5", "4.16.6"}, ""},
		{"max only: from the lowest, as oc-mirror", ReleaseChannel{MaxVersion: "4.16.1"}, []string{"4.16.0", "4.16.1"}, ""},
		{"full: everything", ReleaseChannel{Full: true}, []string{"4.16.0", "4.16.1", "4.16.2", "4.16.3", "4.16.4", "4.16.5", "4.16.6"}, ""},
		{"full from min", ReleaseChannel{Full: true, MinVersion: "4.16.5"}, []string{"4.16.5", "4.16.6"}, ""},
		{"one version", ReleaseChannel{MinVersion: "4.16.0", MaxVersion: "4.16.0"}, []string{"4.16.0"}, ""},
		{"shortest path takes the short way", ReleaseChannel{ShortestPath: true, MinVersion: "4.16.0", MaxVersion: "4.16.4"}, []string{"4.16.0", "4.16.2", "4.16.4"}, ""},
		{"shortest path to itself", ReleaseChannel{ShortestPath: true, MinVersion: "4.16.3", MaxVersion: "4.16.3"}, []string{"4.16.3"}, ""},
		{"shortest path with no edge", ReleaseChannel{ShortestPath: true, MinVersion: "4.16.0", MaxVersion: "4.16.6"}, nil, `channel "stable-4.16" (amd64): no update path from 4.16.0 to 4.16.6`},
		{"version above the channel", ReleaseChannel{MaxVersion: "4.16.9"}, nil, "holds 4.16.0 to 4.16.6: maxVersion 4.16.9 is outside it"},
		{"version below the channel", ReleaseChannel{MinVersion: "4.15.9"}, nil, "minVersion 4.15.9 is outside it"},
		{"min above max", ReleaseChannel{MinVersion: "4.16.5", MaxVersion: "4.16.1"}, nil, "above maxVersion"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.ch.Name = "stable-4.16"
			sel, err := g.SelectReleases(tc.ch, "amd64")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, i := range sel {
				got = append(got, g.Nodes[i].Version)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("versions (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("empty channel", func(t *testing.T) {
		_, err := (&Graph{}).SelectReleases(ReleaseChannel{Name: "stable-4.99"}, "arm64")
		if err == nil || !strings.Contains(err.Error(), `channel "stable-4.99" has no releases for architecture arm64`) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("a graph nobody checked", func(t *testing.T) {
		bad := &Graph{Nodes: []GraphNode{{Version: "x", Payload: "quay.io/a/b:1"}}, Edges: [][2]int{{0, 5}}}
		_, err := bad.SelectReleases(ReleaseChannel{Name: "c"}, "amd64")
		if err == nil || !strings.Contains(err.Error(), "the update graph is not valid") {
			t.Errorf("err = %v", err)
		}
		if p := bad.ShortestPath(0, 5); p != nil {
			t.Errorf("ShortestPath to a node that does not exist = %v", p)
		}
	})
	t.Run("shortest path needs releases of the channel", func(t *testing.T) {
		g := testGraph("amd64", []string{"4.16.0", "4.16.3"}, "4.16.0>4.16.3")
		_, err := g.SelectReleases(ReleaseChannel{Name: "c", ShortestPath: true, MinVersion: "4.16.1", MaxVersion: "4.16.3"}, "amd64")
		if err == nil || !strings.Contains(err.Error(), "minVersion 4.16.1 is not a release of the channel") {
			t.Errorf("err = %v", err)
		}
	})
}
