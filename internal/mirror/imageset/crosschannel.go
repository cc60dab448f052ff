package imageset

import (
	"context"
	"fmt"
	"strings"

	"github.com/blang/semver/v4"
)

// channelSpan is the versions one listed OCP channel selected.
type channelSpan struct {
	channel  string
	min, max semver.Version
}

type pathNode struct {
	node    GraphNode
	channel string
}

// crossChannelPath is what oc-mirror v2 adds when two or more OCP channels
// are listed: the shortest update path from the lowest selected version
// (in its channel) to the highest (in its channel), walking the channels
// in between by name (stable-4.15 → stable-4.16 → stable-4.17: the prefix
// of the lower channel, the minor version counted up). When the path
// cannot enter the next channel (the version it reached is not in it) it
// stops there with a note, as oc-mirror does; the listed channels' own
// selections stand either way.
func crossChannelPath(ctx context.Context, graphs GraphSource, arch string, spans []channelSpan) ([]pathNode, []string, error) {
	if len(spans) < 2 {
		return nil, nil, nil
	}
	first, last := spans[0], spans[0]
	for _, s := range spans[1:] {
		if s.min.LT(first.min) {
			first = s
		}
		if s.max.GT(last.max) {
			last = s
		}
	}
	if first.channel == last.channel {
		nodes, _, err := pathIn(ctx, graphs, first.channel, arch, first.min, last.max)
		return nodes, nil, err
	}
	prefix, from, err := channelMinor(first.channel)
	if err != nil {
		return nil, nil, err
	}
	_, to, err := channelMinor(last.channel)
	if err != nil {
		return nil, nil, err
	}
	blocked := func(ch string, v semver.Version) []string {
		return []string{fmt.Sprintf("%s: no update path from %s into channel %s (%s is not in it): the update path between the listed channels stops there", arch, v, ch, v)}
	}
	switch {
	case from.EQ(to):
		nodes, missing, err := pathIn(ctx, graphs, last.channel, arch, first.min, last.max)
		if missing {
			return nil, blocked(last.channel, first.min), nil
		}
		return nodes, nil, err
	case from.Major != to.Major || from.GT(to):
		return nil, nil, fmt.Errorf("no update path from channel %s (lowest version %s) to channel %s (highest version %s): the minor versions must count up", first.channel, first.min, last.channel, last.max)
	}
	head, err := channelHead(ctx, graphs, first.channel, arch)
	if err != nil {
		return nil, nil, err
	}
	out, _, err := pathIn(ctx, graphs, first.channel, arch, first.min, head)
	if err != nil {
		return nil, nil, err
	}
	start := head
	for minor := from.Minor + 1; minor <= to.Minor; minor++ {
		ch, target := fmt.Sprintf("%s-%d.%d", prefix, from.Major, minor), last.max
		if minor == to.Minor {
			ch = last.channel
		} else if target, err = channelHead(ctx, graphs, ch, arch); err != nil {
			return nil, nil, err
		}
		nodes, missing, err := pathIn(ctx, graphs, ch, arch, start, target)
		if err != nil {
			return nil, nil, err
		}
		if missing {
			return out, blocked(ch, start), nil
		}
		out = append(out, nodes...)
		start = target
	}
	return out, nil, nil
}

// channelMinor splits PREFIX-MAJOR.MINOR.
func channelMinor(ch string) (string, semver.Version, error) {
	i := strings.LastIndex(ch, "-")
	if i <= 0 {
		return "", semver.Version{}, fmt.Errorf("channel %q: want PREFIX-MAJOR.MINOR (e.g. stable-4.16) to find the update path between channels", ch)
	}
	v, err := semver.Parse(ch[i+1:] + ".0")
	if err != nil {
		return "", semver.Version{}, fmt.Errorf("channel %q: want PREFIX-MAJOR.MINOR (e.g. stable-4.16) to find the update path between channels", ch)
	}
	return ch[:i], v, nil
}

// checkedGraph is the graph of an OCP channel, checked.
func checkedGraph(ctx context.Context, graphs GraphSource, ch, arch string) (*Graph, error) {
	g, err := graphs.Graph(ctx, ChannelOCP, ch, arch)
	if err == nil {
		err = g.Check()
	}
	if err != nil {
		return nil, fmt.Errorf("channel %q (%s): %w", ch, arch, err)
	}
	return g, nil
}

func channelHead(ctx context.Context, graphs GraphSource, ch, arch string) (semver.Version, error) {
	g, err := checkedGraph(ctx, graphs, ch, arch)
	if err != nil {
		return semver.Version{}, err
	}
	if len(g.Nodes) == 0 {
		return semver.Version{}, fmt.Errorf("channel %q (%s), on the update path between the listed channels, has no releases", ch, arch)
	}
	o := g.sorted()
	return g.version(o[len(o)-1]), nil
}

// pathIn is the shortest update path from one version to another inside a
// channel; missing says from is not in the channel.
func pathIn(ctx context.Context, graphs GraphSource, ch, arch string, from, to semver.Version) (nodes []pathNode, missing bool, err error) {
	g, err := checkedGraph(ctx, graphs, ch, arch)
	if err != nil {
		return nil, false, err
	}
	fi, ti := g.find(from), g.find(to)
	if fi < 0 {
		return nil, true, nil
	}
	if ti < 0 {
		return nil, false, fmt.Errorf("channel %q (%s): %s is not a release of it", ch, arch, to)
	}
	path := g.ShortestPath(fi, ti)
	if path == nil {
		return nil, false, fmt.Errorf("channel %q (%s): no update path from %s to %s", ch, arch, from, to)
	}
	for _, i := range path {
		nodes = append(nodes, pathNode{node: g.Nodes[i], channel: ch})
	}
	return nodes, false, nil
}
