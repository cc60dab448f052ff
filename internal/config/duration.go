package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as a Go duration string ("90s",
// "720h") in the file. It is parsed once, while the file is decoded; a
// value that does not parse is reported with its line together with every
// other problem of the file (see Parse), and ranges are checked in Validate.
// Zero means "not set": Defaults fills it where a field has a default.
type Duration time.Duration

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String is the Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses a Go duration string. The error is a *yaml.TypeError
// so the decoder carries on and reports the file's other problems as well.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		// Parse turns the position into the field's name (fieldNames).
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d, column %d: %q is not a duration like 30s, 5m or 720h", n.Line, n.Column, s)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// PositiveDuration is a Duration that must be more than zero where it is
// written: an interval, a grace period or a timeout of "0s" has no meaning,
// and quietly replacing it with the default would hide the mistake, so the
// decoder reports it with its line like any other bad value. Leaving the
// field out still gives its default.
type PositiveDuration Duration

// D is the duration as a time.Duration.
func (d PositiveDuration) D() time.Duration { return time.Duration(d) }

// String is the Go duration string.
func (d PositiveDuration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses a Go duration string that must be positive.
func (d *PositiveDuration) UnmarshalYAML(n *yaml.Node) error {
	var v Duration
	if err := v.UnmarshalYAML(n); err != nil {
		return err
	}
	if v <= 0 {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d, column %d: %q is not a positive duration like 30s, 5m or 24h (leave the field out for its default)", n.Line, n.Column, n.Value)}}
	}
	*d = PositiveDuration(v)
	return nil
}

// MarshalYAML writes the Go duration string.
func (d PositiveDuration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// positioned matches the position UnmarshalYAML puts in its messages.
var positioned = regexp.MustCompile(`line (\d+), column (\d+): `)

// nameFields rewrites "line L, column C: " in msg to "line L: FIELD: ",
// naming the field whose value sits there in the document raw (the
// operator object's "spec." dropped, as the other messages do).
func nameFields(raw []byte, msg string) string {
	if !positioned.MatchString(msg) {
		return msg
	}
	var root yaml.Node
	_ = yaml.Unmarshal(raw, &root)
	names := map[[2]int]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, path+"["+strconv.Itoa(i)+"]")
			}
		case yaml.ScalarNode:
			names[[2]int{n.Line, n.Column}] = strings.TrimPrefix(path, "spec.")
		}
	}
	walk(&root, "")
	return positioned.ReplaceAllStringFunc(msg, func(m string) string {
		g := positioned.FindStringSubmatch(m)
		line, _ := strconv.Atoi(g[1])
		col, _ := strconv.Atoi(g[2])
		if name, ok := names[[2]int{line, col}]; ok {
			return "line " + g[1] + ": " + name + ": "
		}
		return "line " + g[1] + ": "
	})
}
