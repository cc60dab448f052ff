package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Import is a scheduled tag import, as an image stream's scheduled import
// does: every Schedule the upstream tags matching Tags are read and, when
// one moved, its image is copied into To under the same tag, the move kept
// in the tag's history.
type Import struct {
	// From is the upstream repository, HOST[:PORT]/REPOSITORY, optionally
	// with a :TAG (then only that tag is imported, unless Tags is set).
	From string `yaml:"from"`
	// To is the local repository the tags are imported into.
	To string `yaml:"to"`
	// Schedule is the time between imports; default 15m.
	Schedule Duration `yaml:"schedule"`
	// Tags is a regular expression the imported tags match in full
	// (default: From's tag, or every tag).
	Tags string `yaml:"tags"`
	// ImportMode is Legacy (default: of a manifest list, only the
	// linux/amd64 image) or PreserveOriginal (the list and every image in
	// it, digest kept).
	ImportMode string `yaml:"importMode"`
	// AuthFile, CAFile and Insecure reach the upstream as for pullThrough
	// upstreams.
	AuthFile string `yaml:"authFile"`
	CAFile   string `yaml:"caFile"`
	Insecure bool   `yaml:"insecure"`
}

// DefaultImportSchedule is the time between scheduled imports.
const DefaultImportSchedule = 15 * time.Minute

// ImportModes are the importMode values.
var ImportModes = []string{"Legacy", "PreserveOriginal"}

// SplitImportSource splits HOST[:PORT]/REPOSITORY[:TAG].
func SplitImportSource(from string) (host, repo, tag string, err error) {
	host, rest, ok := strings.Cut(from, "/")
	if !ok || rest == "" || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		return "", "", "", fmt.Errorf("%q is not HOST[:PORT]/REPOSITORY[:TAG] with an explicit registry host", from)
	}
	repo = rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		repo, tag = rest[:i], rest[i+1:]
	}
	if !prefixRE.MatchString(repo) {
		return "", "", "", fmt.Errorf("%q: %q is not a repository name", from, repo)
	}
	return host, repo, tag, nil
}

func (im *Import) defaults() {
	if im.Schedule == 0 {
		im.Schedule = Duration(DefaultImportSchedule)
	}
	if im.ImportMode == "" {
		im.ImportMode = "Legacy"
	}
}

func validateImports(list []Import) []error {
	var errs []error
	for i, im := range list {
		f := fmt.Sprintf("imports[%d]", i)
		if _, _, _, err := SplitImportSource(im.From); err != nil {
			errs = append(errs, fmt.Errorf("%s.from: %w", f, err))
		}
		if !prefixRE.MatchString(im.To) {
			errs = append(errs, fmt.Errorf("%s.to: %q is not a repository name", f, im.To))
		}
		if im.Schedule < 0 {
			errs = append(errs, fmt.Errorf("%s.schedule: must not be negative", f))
		}
		if im.Tags != "" {
			if _, err := regexp.Compile("^(?:" + im.Tags + ")$"); err != nil {
				errs = append(errs, fmt.Errorf("%s.tags: %v", f, err))
			}
		}
		if im.ImportMode != "" && im.ImportMode != "Legacy" && im.ImportMode != "PreserveOriginal" {
			errs = append(errs, fmt.Errorf("%s.importMode: %q is not Legacy or PreserveOriginal", f, im.ImportMode))
		}
	}
	return errs
}
