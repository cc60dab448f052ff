package imageset

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with an input file: where it is, which field,
// and what would be valid.
type Problem struct {
	File string
	// Doc is the 0-based YAML document index (printed only when not 0).
	Doc int
	// Line and Column are 1-based; Line is at least 1.
	Line, Column int
	// Field is the YAML path, e.g. mirror.platform.channels[0].minVersion.
	Field   string
	Message string
}

func (p *Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		fmt.Fprintf(&b, "%s:%d", p.File, p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
		if p.Doc > 0 {
			fmt.Fprintf(&b, " (document %d)", p.Doc)
		}
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems lists every *Problem in err (one joined by errors.Join, or a
// single one).
func Problems(err error) []*Problem {
	var out []*Problem
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if p, ok := e.(*Problem); ok {
			out = append(out, p)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		walk(errors.Unwrap(e))
	}
	walk(err)
	return out
}

// source remembers where each value of a parsed document was, so that
// problems found after parsing (validation, planning) can point at it.
type source struct {
	file string
	doc  int
	pos  map[string]position
}

type position struct{ line, col int }

// at makes a Problem for path, placed at the path's value or, when the path
// was not written (a missing field), at its nearest written parent.
func (s *source) at(path, format string, args ...any) *Problem {
	p := &Problem{Field: path, Message: fmt.Sprintf(format, args...), Line: 1}
	if s == nil {
		return p
	}
	p.File, p.Doc = s.file, s.doc
	for q := path; ; q = parentPath(q) {
		if pos, ok := s.pos[q]; ok {
			p.Line, p.Column = pos.line, pos.col
			break
		}
		if q == "" {
			break
		}
	}
	return p
}

// where is "file:line:col" of a field path, for messages that name the
// input (e.g. "mirror.platform.channels[1]"); "" for a configuration that
// was not parsed from a file.
func (s *source) where(path string) string {
	if s == nil {
		return ""
	}
	p := s.at(path, "")
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

func parentPath(p string) string {
	if p == "" {
		return ""
	}
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndex(p, "["); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}

// decoder fills Go values from a YAML node tree strictly: an unknown or
// duplicate field, or a value of the wrong type, is a Problem, and decoding
// goes on so that every problem is reported at once. A field whose value is
// wrong keeps its zero value; its path is marked bad so validation does not
// report it a second time.
type decoder struct {
	src      *source
	problems []*Problem
	bad      map[string]bool
	// budget bounds the work on one document, aliases included, so a
	// small file cannot expand into an enormous one.
	budget int
	// hints explain unknown fields users carry over from elsewhere.
	hints map[string]string
}

const decodeBudget = 200_000

func newDecoder(file string, doc int) *decoder {
	return &decoder{
		src:    &source{file: file, doc: doc, pos: map[string]position{}},
		bad:    map[string]bool{},
		budget: decodeBudget,
	}
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	p := &Problem{File: d.src.file, Doc: d.src.doc, Line: 1, Field: path, Message: fmt.Sprintf(format, args...)}
	if n != nil && n.Line > 0 {
		p.Line, p.Column = n.Line, n.Column
	}
	d.problems = append(d.problems, p)
	d.bad[path] = true
}

// The scalar styles that make a value a string whatever it looks like.
const quoted = yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle

// yaml11Bools are the plain words YAML 1.1 (which oc-mirror's YAML reader
// speaks) reads as booleans.
var yaml11Bools = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true, "true": true, "True": true, "TRUE": true,
	"n": false, "N": false, "no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false, "false": false, "False": false, "FALSE": false,
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected YAML node"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// value decodes n into v (settable) at path.
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value, depth int) {
	d.budget--
	if d.budget == 0 {
		d.fail(n, path, "document too large (more than %d values, aliases expanded)", decodeBudget)
	}
	if d.budget <= 0 {
		return
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil || depth > 64 {
			d.fail(n, path, "alias nested too deeply")
			return
		}
		n = n.Alias
		depth++
	}
	if depth > 100 {
		d.fail(n, path, "nested too deeply")
		return
	}
	if _, ok := d.src.pos[path]; !ok {
		d.src.pos[path] = position{n.Line, n.Column}
	}
	if isNull(n) {
		return // as JSON null: the zero value
	}
	switch v.Kind() {
	case reflect.Struct:
		d.object(n, path, v, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			d.value(e, fmt.Sprintf("%s[%d]", path, i), s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, got %s", kindName(n))
			return
		}
		// oc-mirror's YAML 1.1 reader keeps a plain timestamp as a string;
		// everything else not a string to YAML is refused, as there.
		if tag := n.ShortTag(); n.Style&quoted == 0 && tag != "!!timestamp" {
			if _, isBool := yaml11Bools[n.Value]; isBool || tag != "!!str" {
				d.fail(n, path, "want a string, got %s (YAML reads it so); quote it: %q", kindName(n), n.Value)
				return
			}
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, ok := yaml11Bools[n.Value]
		if n.Kind != yaml.ScalarNode || n.Style&quoted != 0 || !ok {
			d.fail(n, path, "want true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Style&quoted != 0 || n.ShortTag() != "!!int" {
			d.fail(n, path, "want a whole number, got %s", kindName(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil {
			d.fail(n, path, "want a whole number, got %s", kindName(n))
			return
		}
		v.SetInt(i)
	default:
		// Only the kinds above occur in the types of this package.
		d.fail(n, path, "internal error: no decoder for %s", v.Type())
	}
}

func (d *decoder) object(n *yaml.Node, path string, v reflect.Value, depth int) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		for k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "want field names, got %s as a key", kindName(k))
			continue
		}
		if k.Value == "<<" && k.Style&quoted == 0 {
			d.fail(k, path, "merge keys (<<) are not supported; write the fields out")
			continue
		}
		p := join(path, k.Value)
		if seen[k.Value] {
			d.fail(k, p, "field given twice")
			continue
		}
		seen[k.Value] = true
		idx, ok := fields.byName[k.Value]
		if !ok {
			d.fail(k, p, "%s", d.unknown(k.Value, fields))
			continue
		}
		d.src.pos[p] = position{k.Line, k.Column}
		d.value(val, p, v.Field(idx), depth+1)
	}
}

func (d *decoder) unknown(key string, fields *structFields) string {
	msg := fmt.Sprintf("unknown field %q", key)
	for _, n := range fields.names {
		if strings.EqualFold(n, key) {
			return msg + fmt.Sprintf(" (field names are case-sensitive: did you mean %q?)", n)
		}
	}
	if h := d.hints[key]; h != "" {
		return msg + ": " + h
	}
	return msg + "; valid fields here: " + strings.Join(fields.names, ", ")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

type structFields struct {
	byName map[string]int
	names  []string // sorted
}

var fieldCache sync.Map // reflect.Type → *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{byName: map[string]int{}}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" || name == "" {
			continue
		}
		f.byName[name] = i
		f.names = append(f.names, name)
	}
	sort.Strings(f.names)
	fieldCache.Store(t, f)
	return f
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// syntaxProblem turns a YAML parser error into a Problem at its line.
func syntaxProblem(file string, doc int, err error) *Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := &Problem{File: file, Doc: doc, Line: 1, Message: "not valid YAML: " + msg}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		if l, err := strconv.Atoi(m[1]); err == nil && l > 0 {
			p.Line = l
		}
	}
	return p
}
