package imageset

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// WriteDryRun prints the whole plan, one "source -> destination" line per
// image, grouped by kind, in the plan's order (which does not depend on map
// order or timing: the same configuration and graph print the same text).
func (p *Plan) WriteDryRun(w io.Writer) error {
	b := bufio.NewWriter(w)
	target := p.Target
	if target == "" {
		target = "(a directory: repository paths inside it)"
	}
	if p.Delete {
		fmt.Fprintf(b, "delete from: %s\n", target)
	} else {
		fmt.Fprintf(b, "target: %s\n", target)
	}
	fmt.Fprintf(b, "releases: %d\n", len(p.Releases))
	for _, r := range p.Releases {
		what := r.Version + " " + r.Arch
		if r.Version == "" {
			what = "version and arch from the payload"
		}
		dst := r.Destination
		if dst == "" {
			dst = p.dest(ReleaseImagesRepository, "<version>-<arch>")
		}
		why := strings.Join(r.Channels, ", ")
		if r.UpgradePath {
			why += "; on the update path between the listed channels"
		}
		fmt.Fprintf(b, "  %s (%s): %s -> %s\n", what, why, r.Source, dst)
		tagBase := dst[strings.LastIndex(dst, ":")+1:]
		fmt.Fprintf(b, "    components -> %s:%s-<component>\n", r.Components, tagBase)
	}
	if p.Graph != nil {
		fmt.Fprintf(b, "graph-data image:\n  %s -> %s\n  UpdateService releases: %s\n", p.Graph.Source, p.Graph.Destination, p.Graph.Releases)
	}
	fmt.Fprintf(b, "additional images: %d\n", len(p.Images))
	for _, im := range p.Images {
		fmt.Fprintf(b, "  %s -> %s", im.Source, im.Destination)
		if len(im.Platforms) > 0 {
			fmt.Fprintf(b, " (platforms %s)", strings.Join(im.Platforms, ", "))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "catalogs: %d\n", len(p.Catalogs))
	for _, c := range p.Catalogs {
		if p.Delete {
			fmt.Fprintf(b, "  %s -> %s\n", c.Source, c.Destination)
		} else {
			fmt.Fprintf(b, "  %s -> %s (filtered and rebuilt)\n", c.Source, c.Destination)
		}
		fmt.Fprintf(b, "    %s\n", describeOperator(c.Operator))
	}
	fmt.Fprintf(b, "blocked: %d\n", len(p.Blocked))
	for _, x := range p.Blocked {
		if x.Destination != "" {
			fmt.Fprintf(b, "  %s -> %s: blocked by %s\n", x.Source, x.Destination, x.Reason)
		} else {
			fmt.Fprintf(b, "  %s: blocked by %s\n", x.Source, x.Reason)
		}
	}
	if len(p.Notes) > 0 {
		fmt.Fprintf(b, "notes:\n")
		for _, n := range p.Notes {
			fmt.Fprintf(b, "  %s\n", n)
		}
	}
	return b.Flush()
}

// describeOperator is the catalog filter as one line.
func describeOperator(o Operator) string {
	var opts []string
	opts = append(opts, fmt.Sprintf("full: %t", o.Full))
	if o.SkipDependencies {
		opts = append(opts, "skipDependencies: true")
	}
	if len(o.Platforms) > 0 {
		var ps []string
		for _, p := range o.Platforms {
			ps = append(ps, p.String())
		}
		opts = append(opts, "platforms "+strings.Join(ps, ", "))
	}
	if len(o.Packages) == 0 {
		return "every package; " + strings.Join(opts, "; ")
	}
	var pkgs []string
	for _, p := range o.Packages {
		s := p.Name + bounds(p.MinVersion, p.MaxVersion)
		if p.DefaultChannel != "" {
			s += " default " + p.DefaultChannel
		}
		var chs []string
		for _, c := range p.Channels {
			chs = append(chs, c.Name+bounds(c.MinVersion, c.MaxVersion))
		}
		if len(chs) > 0 {
			s += " channels " + strings.Join(chs, ", ")
		}
		pkgs = append(pkgs, s)
	}
	return "packages: " + strings.Join(pkgs, "; ") + "; " + strings.Join(opts, "; ")
}

func bounds(min, max string) string {
	switch {
	case min != "" && max != "":
		return " [" + min + ", " + max + "]"
	case min != "":
		return " [" + min + ", head]"
	case max != "":
		return " [lowest, " + max + "]"
	}
	return ""
}
