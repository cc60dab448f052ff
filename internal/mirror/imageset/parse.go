package imageset

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// legacyHints explain fields that other versions of the format have.
var legacyHints = map[string]string{
	"storageConfig": "that is oc-mirror v1 (mirror.openshift.io/v1alpha2); v2alpha1 keeps no storage config: remove it",
	"bundles":       "that is oc-mirror v1 (v1alpha2); in v2alpha1 select bundles with minVersion/maxVersion",
	"headsOnly":     "that is oc-mirror v1 (v1alpha2); in v2alpha1 heads are the default and full: true takes everything",
	"metadata":      "an ImageSetConfiguration has no metadata (oc-mirror refuses it too): remove it",
	"imageURL":      "that is oc-mirror v1 (v1alpha2) storage config: remove it",
}

// ReadImageSetConfiguration reads and parses the ImageSetConfiguration file
// at path.
func ReadImageSetConfiguration(path string) (*ImageSetConfiguration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseImageSetConfiguration(path, data)
}

// ReadDeleteImageSetConfiguration reads and parses the
// DeleteImageSetConfiguration file at path.
func ReadDeleteImageSetConfiguration(path string) (*DeleteImageSetConfiguration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseDeleteImageSetConfiguration(path, data)
}

// ParseImageSetConfiguration parses and validates an ImageSetConfiguration
// read from file (the name is used in messages). Every problem is
// returned at once, joined; each is a *Problem naming file, line, column
// and field (see Problems).
func ParseImageSetConfiguration(file string, data []byte) (*ImageSetConfiguration, error) {
	c := &ImageSetConfiguration{}
	d, err := parseInto(file, data, KindImageSetConfiguration, c, "mirror", "delete")
	if err != nil {
		return nil, err
	}
	c.src = d.src
	if err := errors.Join(append(toErrs(d.problems), toErrs(c.validate(d.bad))...)...); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks c as ParseImageSetConfiguration does, for a
// configuration built in code; every problem at once.
func (c *ImageSetConfiguration) Validate() error {
	return errors.Join(toErrs(c.validate(nil))...)
}

func (c *ImageSetConfiguration) validate(bad map[string]bool) []*Problem {
	v := &validator{src: c.src, bad: bad}
	v.mirror("mirror", &c.Mirror, true)
	if c.ArchiveSize < 0 {
		v.add("archiveSize", "must not be negative (it is in GiB; 0 or absent means the default)")
	}
	return v.problems
}

// ParseDeleteImageSetConfiguration parses and validates a
// DeleteImageSetConfiguration, as ParseImageSetConfiguration does. Channels
// without architectures default to amd64, as oc-mirror completes them.
func ParseDeleteImageSetConfiguration(file string, data []byte) (*DeleteImageSetConfiguration, error) {
	c := &DeleteImageSetConfiguration{}
	d, err := parseInto(file, data, KindDeleteImageSetConfiguration, c, "delete", "mirror")
	if err != nil {
		return nil, err
	}
	c.src = d.src
	if err := errors.Join(append(toErrs(d.problems), toErrs(c.validate(d.bad))...)...); err != nil {
		return nil, err
	}
	if len(c.Delete.Platform.Channels) > 0 && len(c.Delete.Platform.Architectures) == 0 {
		c.Delete.Platform.Architectures = []string{DefaultArchitecture}
	}
	return c, nil
}

// Validate checks c as ParseDeleteImageSetConfiguration does, for a
// configuration built in code.
func (c *DeleteImageSetConfiguration) Validate() error {
	return errors.Join(toErrs(c.validate(nil))...)
}

func (c *DeleteImageSetConfiguration) validate(bad map[string]bool) []*Problem {
	v := &validator{src: c.src, bad: bad}
	m := Mirror{Platform: c.Delete.Platform, Operators: c.Delete.Operators, AdditionalImages: c.Delete.AdditionalImages, Helm: c.Delete.Helm, Samples: c.Delete.Samples}
	v.mirror("delete", &m, false)
	return v.problems
}

func toErrs(ps []*Problem) []error {
	out := make([]error, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

// parseInto reads the one YAML document of data into out (a pointer to an
// ImageSetConfiguration or DeleteImageSetConfiguration), checking the
// envelope: apiVersion, kind, the required stanza and the other kind's
// stanza. Problems of the envelope stop before the body is decoded;
// problems of the body are returned in the decoder.
func parseInto(file string, data []byte, kind string, out any, stanza, otherStanza string) (*decoder, error) {
	docs, err := documents(file, data)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, &Problem{File: file, Line: 1, Message: fmt.Sprintf("no YAML document: want a %s %s", APIVersion, kind)}
	}
	if len(docs) > 1 {
		var errs []error
		for i, n := range docs[1:] {
			errs = append(errs, &Problem{File: file, Doc: i + 1, Line: n.Line, Column: n.Column,
				Message: fmt.Sprintf("one %s per file: this is another YAML document", kind)})
		}
		return nil, errors.Join(errs...)
	}
	root := docs[0]
	d := newDecoder(file, 0)
	d.hints = legacyHints
	if root.Kind != yaml.MappingNode {
		d.fail(root, "", "want a %s (a mapping), got %s", kind, kindName(root))
		return nil, errors.Join(toErrs(d.problems)...)
	}
	top := map[string]*yaml.Node{}
	keys := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode {
			if _, dup := top[k.Value]; !dup {
				top[k.Value], keys[k.Value] = root.Content[i+1], k
			}
		}
	}
	scalar := func(key string) (string, *yaml.Node) {
		n := top[key]
		if n == nil || n.Kind != yaml.ScalarNode {
			return "", n
		}
		return n.Value, n
	}
	gotKind, kn := scalar("kind")
	gotAPI, an := scalar("apiVersion")
	switch {
	case kn == nil:
		d.fail(root, "kind", "missing: want kind: %s", kind)
	case gotKind != kind:
		msg := fmt.Sprintf("is %q, want %s", gotKind, kind)
		if gotKind == KindImageSetConfiguration || gotKind == KindDeleteImageSetConfiguration {
			msg += fmt.Sprintf(" (a %s is for `berth mirror %s`)", gotKind, map[string]string{KindImageSetConfiguration: "apply", KindDeleteImageSetConfiguration: "delete"}[gotKind])
		}
		d.fail(kn, "kind", "%s", msg)
	}
	switch {
	case an == nil:
		d.fail(root, "apiVersion", "missing: want apiVersion: %s", APIVersion)
	case gotAPI != APIVersion:
		d.fail(an, "apiVersion", "is %q, want %s", gotAPI, APIVersion)
	}
	if len(d.problems) > 0 {
		return nil, errors.Join(toErrs(d.problems)...)
	}
	if _, ok := top[stanza]; !ok {
		d.fail(root, stanza, "missing: a %s needs a %s: stanza", kind, stanza)
	}
	if k, ok := keys[otherStanza]; ok {
		d.fail(k, otherStanza, "is not allowed in a %s", kind)
	}
	if len(d.problems) > 0 {
		return nil, errors.Join(toErrs(d.problems)...)
	}
	d.value(root, "", reflect.ValueOf(out).Elem(), 0)
	return d, nil
}

// documents splits data into its non-empty YAML documents.
func documents(file string, data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*yaml.Node
	for i := 0; ; i++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, syntaxProblem(file, i, err)
		}
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 && !isNull(n.Content[0]) {
			out = append(out, n.Content[0])
		}
	}
}

// Where returns "file:line:col" of a field path of the parsed file (e.g.
// "mirror.platform.channels[1]"), for messages about it.
func (c *ImageSetConfiguration) Where(path string) string { return c.src.where(path) }

// Where returns "file:line:col" of a field path of the parsed file.
func (c *DeleteImageSetConfiguration) Where(path string) string { return c.src.where(path) }

// File is the name the configuration was parsed under.
func (c *ImageSetConfiguration) File() string {
	if c.src == nil {
		return ""
	}
	return c.src.file
}
