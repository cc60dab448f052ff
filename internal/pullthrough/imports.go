package pullthrough

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/opencontainers/go-digest"
)

// ImportSpec is one tag import: tags of an upstream repository copied into
// a local repository through the registry's push path, so each move is
// kept in the tag's history.
type ImportSpec struct {
	Upstream *mirror.Upstream
	// Repo is the upstream repository.
	Repo string
	// Tags selects the tags (matched in full); nil with Tag set imports
	// only Tag.
	Tags *regexp.Regexp
	Tag  string
	// To is the local repository.
	To string
	// PreserveOriginal imports a manifest list with every image in it;
	// otherwise (Legacy) only its linux/amd64 image (or its first).
	PreserveOriginal bool
}

// ImportedTag is one tag an import looked at.
type ImportedTag struct {
	Tag    string        `json:"tag"`
	Digest digest.Digest `json:"digest"`
	// Changed is false when the local tag already pointed at Digest.
	Changed bool `json:"changed"`
}

// Import runs spec once and reports every tag it looked at.
func Import(ctx context.Context, reg *registry.Registry, spec ImportSpec, log *slog.Logger) ([]ImportedTag, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tags := []string{spec.Tag}
	if spec.Tags != nil {
		all, err := spec.Upstream.Tags(ctx, spec.Repo)
		if err != nil {
			return nil, fmt.Errorf("tags of %s/%s: %w", spec.Upstream.Host(), spec.Repo, err)
		}
		tags = tags[:0]
		for _, t := range all {
			if spec.Tags.MatchString(t) {
				tags = append(tags, t)
			}
		}
	}
	var out []ImportedTag
	for _, tag := range tags {
		if tag == "" {
			continue
		}
		it, err := importTag(ctx, reg, spec, tag)
		if err != nil {
			return out, fmt.Errorf("import %s/%s:%s into %s: %w", spec.Upstream.Host(), spec.Repo, tag, spec.To, err)
		}
		if it.Changed {
			log.Info("import: tag moved", "from", spec.Upstream.Host()+"/"+spec.Repo, "to", spec.To, "tag", tag, "digest", it.Digest)
		}
		out = append(out, it)
	}
	return out, nil
}

func importTag(ctx context.Context, reg *registry.Registry, spec ImportSpec, tag string) (ImportedTag, error) {
	m, err := spec.Upstream.GetManifest(ctx, spec.Repo, tag)
	if err != nil {
		return ImportedTag{}, err
	}
	parsed, err := oci.ParseManifest(m.MediaType, m.Raw)
	if err != nil {
		return ImportedTag{}, err
	}
	if parsed.IsIndex() && !spec.PreserveOriginal {
		child, err := pickPlatform(parsed)
		if err != nil {
			return ImportedTag{}, err
		}
		if m, err = spec.Upstream.GetManifest(ctx, spec.Repo, string(child)); err != nil {
			return ImportedTag{}, err
		}
		if parsed, err = oci.ParseManifest(m.MediaType, m.Raw); err != nil {
			return ImportedTag{}, err
		}
	}
	d := digest.Digest(m.Digest)
	if cur, err := reg.StatManifest(ctx, spec.To, tag); err == nil && cur.Digest == d {
		return ImportedTag{Tag: tag, Digest: d}, nil
	}
	if parsed.IsIndex() {
		for _, c := range parsed.Manifests {
			cm, err := spec.Upstream.GetManifest(ctx, spec.Repo, string(c.Digest))
			if err != nil {
				return ImportedTag{}, err
			}
			if err := copyImage(ctx, reg, spec, cm, string(c.Digest)); err != nil {
				return ImportedTag{}, err
			}
		}
	}
	if err := copyImage(ctx, reg, spec, m, tag); err != nil {
		return ImportedTag{}, err
	}
	return ImportedTag{Tag: tag, Digest: d, Changed: true}, nil
}

// copyImage copies m's blobs (those To lacks) and then m under ref.
func copyImage(ctx context.Context, reg *registry.Registry, spec ImportSpec, m *mirror.UpstreamManifest, ref string) error {
	parsed, err := oci.ParseManifest(m.MediaType, m.Raw)
	if err != nil {
		return err
	}
	for _, b := range parsed.Blobs() {
		if b.Foreign() {
			continue
		}
		if _, err := reg.StatBlob(ctx, spec.To, b.Digest); err == nil {
			continue
		}
		if ok, _ := reg.BlobCommitted(ctx, b.Digest); ok {
			if err := reg.LinkCommittedBlob(ctx, spec.To, b.Digest); err == nil {
				continue
			}
		}
		body, _, err := spec.Upstream.GetBlob(ctx, spec.Repo, string(b.Digest))
		if err != nil {
			return err
		}
		err = reg.PutBlob(ctx, spec.To, b.Digest, body)
		body.Close()
		if err != nil {
			return err
		}
	}
	_, _, err = reg.PutManifest(ctx, spec.To, ref, m.MediaType, bytes.NewReader(m.Raw))
	return err
}

// pickPlatform is the linux/amd64 image of an index, else its first.
func pickPlatform(m *oci.Manifest) (digest.Digest, error) {
	if len(m.Manifests) == 0 {
		return "", fmt.Errorf("the manifest list is empty")
	}
	for _, c := range m.Manifests {
		var p struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
		}
		if len(c.Platform) > 0 && json.Unmarshal(c.Platform, &p) == nil && p.OS == "linux" && p.Architecture == "amd64" {
			return c.Digest, nil
		}
	}
	return m.Manifests[0].Digest, nil
}

// NewImportSpec builds the spec of a configured import.
func NewImportSpec(from, to, tags, mode, authFile, caFile string, insecure bool, timeout time.Duration, log *slog.Logger) (ImportSpec, error) {
	host, repo, tag, err := config.SplitImportSource(from)
	if err != nil {
		return ImportSpec{}, err
	}
	scheme := "https://"
	if insecure {
		scheme = "http://"
	}
	up, err := mirror.NewUpstream(mirror.UpstreamOptions{URL: scheme + host, AuthFile: authFile, CAFile: caFile, Insecure: insecure, Timeout: timeout, Log: log})
	if err != nil {
		return ImportSpec{}, err
	}
	spec := ImportSpec{Upstream: up, Repo: repo, Tag: tag, To: to, PreserveOriginal: mode == "PreserveOriginal"}
	if tags != "" || tag == "" {
		if tags == "" {
			tags = ".*"
		}
		if spec.Tags, err = regexp.Compile("^(?:" + tags + ")$"); err != nil {
			return ImportSpec{}, fmt.Errorf("tags: %w", err)
		}
	}
	return spec, nil
}
