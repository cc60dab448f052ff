package console

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/units"
	"github.com/opencontainers/go-digest"
)

// PageSize is how many repositories a page of the list shows.
const PageSize = 50

type reposData struct {
	Query  string
	Prefix bool
	Repos  []metadata.RepoSummary
	Next   string // the query string of the next page; empty on the last
	First  bool   // this is the first page
	Hidden bool   // access control is on and nobody is signed in
}

// repositories lists the repositories the viewer may pull, PageSize at a
// time after the keyset cursor. Filtering by the authorizer happens here, on
// names read in batches, so a viewer of one namespace among thousands still
// gets a full page.
func (h *Handler) repositories(w http.ResponseWriter, r *http.Request, v *viewer) error {
	q := r.URL.Query()
	d := reposData{Query: strings.TrimSpace(q.Get("q")), Prefix: q.Get("match") == "prefix", First: q.Get("after") == ""}
	f := metadata.RepoFilter{Match: d.Query, Prefix: d.Prefix, After: q.Get("after")}
	var names []string
	more := false
scan:
	for {
		batch, m, err := h.meta.ConsoleRepositories(r.Context(), f, 4*PageSize)
		if err != nil {
			return err
		}
		for _, n := range batch {
			if !v.may(n, auth.Pull) {
				continue
			}
			if len(names) == PageSize {
				more = true
				break scan
			}
			names = append(names, n)
		}
		if !m || len(batch) == 0 {
			break
		}
		f.After = batch[len(batch)-1]
	}
	repos, err := h.meta.RepoSummaries(r.Context(), names)
	if err != nil {
		return err
	}
	d.Repos = repos
	if more {
		nq := url.Values{"after": {names[len(names)-1]}}
		if d.Query != "" {
			nq.Set("q", d.Query)
		}
		if d.Prefix {
			nq.Set("match", "prefix")
		}
		d.Next = nq.Encode()
	}
	d.Hidden = v.authz != nil && v.sess.User == "" && len(repos) == 0
	return h.render(w, r, v, http.StatusOK, "repos.html", "Repositories", d)
}

// tagRow is one row of a repository's tag table.
type tagRow struct {
	metadata.TagInfo
	Total     int64
	Platforms []string
	Badges    []string // sig, att, sbom tags whose subject this is
	Ref       string   // host/repo:tag
	DigestRef string   // host/repo@digest
	platKey   string   // Platforms joined, the platforms sort key
}

type repoData struct {
	Repo      string
	Rows      []tagRow
	Hidden    int // signature tags not shown
	ShowAll   bool
	Sort, Dir string
	Sorts     []sortLink
	Deleted   string
	Pull      []pullCmd     // for the first row, as an example
	Count     int           // rows on every page
	From, To  int           // this page's rows, counted from 1
	After     bool          // this is not the first page
	Next      string        // the query of the next page; empty on the last
	FirstPage string        // the query of the first page
	Body      template.HTML // the rows, see tagRows
}

// TagPageSize is how many tags a page of a repository's tag table shows.
const TagPageSize = 100

// tagOrder is the order of the tag table for a sort key and direction: by
// the key, then by tag, so it is total and a keyset cursor (the last row's
// key and tag) names one place in it.
func tagOrder(key, dir string) func(a, b tagRow) int {
	by := map[string]func(a, b tagRow) int{
		"name":      func(a, b tagRow) int { return 0 },
		"pushed":    func(a, b tagRow) int { return a.Pushed.Compare(b.Pushed) },
		"size":      func(a, b tagRow) int { return cmp.Compare(a.Total, b.Total) },
		"platforms": func(a, b tagRow) int { return strings.Compare(a.platKey, b.platKey) },
	}[key]
	return func(a, b tagRow) int {
		c := by(a, b)
		if c == 0 {
			switch {
			case naturalLess(a.Tag, b.Tag):
				c = -1
			case naturalLess(b.Tag, a.Tag):
				c = 1
			default:
				c = strings.Compare(a.Tag, b.Tag)
			}
		}
		if dir == "desc" {
			return -c
		}
		return c
	}
}

// summarise fills a row's size and platforms from its manifest's summary.
func (h *Handler) summarise(ctx context.Context, repo string, t *tagRow) {
	sum := h.summary(ctx, repo, t.Digest)
	t.Total, t.Platforms, t.platKey = sum.size, sum.platforms, strings.Join(sum.platforms, ",")
}

type sortLink struct {
	Key, Label, Href, Aria string
}

// repository shows a repository's tags.
func (h *Handler) repository(w http.ResponseWriter, r *http.Request, v *viewer, repo string) error {
	if err := oci.ValidateName(repo); err != nil || !v.may(repo, auth.Pull) {
		// The same answer for "absent" and "not yours": a viewer learns
		// nothing of repositories it may not pull.
		return notFound("repository %s is not known, or you may not pull it", repo)
	}
	ok, err := h.meta.RepoExists(r.Context(), repo)
	if err != nil {
		return err
	}
	if !ok {
		return notFound("repository %s is not known, or you may not pull it", repo)
	}
	tags, err := h.meta.RepoTags(r.Context(), repo)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	d := repoData{Repo: repo, ShowAll: q.Get("all") == "1", Sort: q.Get("sort"), Dir: q.Get("dir"), Deleted: q.Get("deleted")}
	switch d.Sort {
	case "pushed", "size", "platforms":
	default:
		d.Sort = "name"
	}
	if d.Dir != "asc" && d.Dir != "desc" {
		d.Dir = "asc"
		if d.Sort == "pushed" || d.Sort == "size" {
			d.Dir = "desc"
		}
	}
	badges := map[digest.Digest][]string{}
	for _, t := range tags {
		if subj, kind, ok := signatureTag(t.Tag); ok {
			badges[subj] = append(badges[subj], kind)
		}
	}
	host := r.Host
	// Sorting by size or platforms needs every row's summary; by name or
	// push time only the page's rows need one (see below).
	summarised := d.Sort == "size" || d.Sort == "platforms"
	rows := make([]tagRow, 0, len(tags))
	for _, t := range tags {
		if _, _, ok := signatureTag(t.Tag); ok && !d.ShowAll {
			d.Hidden++
			continue
		}
		row := tagRow{TagInfo: t}
		if summarised {
			h.summarise(r.Context(), repo, &row)
		}
		rows = append(rows, row)
	}
	cmp := tagOrder(d.Sort, d.Dir)
	slices.SortFunc(rows, cmp)
	// Keyset pages: the cursor is the last row's sort key and tag, and a
	// page starts at the first row after it in this order, so tags pushed
	// or deleted meanwhile never shift a row onto two pages or none.
	start := 0
	if after := q.Get("after"); after != "" {
		cur := tagRow{TagInfo: metadata.TagInfo{Tag: after}}
		key := q.Get("key")
		n, _ := strconv.ParseInt(key, 10, 64)
		switch d.Sort {
		case "pushed":
			cur.Pushed = time.Unix(0, n)
		case "size":
			cur.Total = n
		case "platforms":
			cur.platKey = key
		}
		start, _ = slices.BinarySearchFunc(rows, cur, cmp)
		if start < len(rows) && cmp(rows[start], cur) == 0 {
			start++
		}
		d.After = true
	}
	d.Count = len(rows)
	page := rows[start:min(start+TagPageSize, len(rows))]
	for i := range page {
		if !summarised {
			h.summarise(r.Context(), repo, &page[i])
		}
		t := &page[i]
		t.Badges, t.Ref, t.DigestRef = badges[t.Digest], host+"/"+repo+":"+t.Tag, host+"/"+repo+"@"+string(t.Digest)
	}
	d.From, d.To = start+1, start+len(page)
	if start+len(page) < len(rows) {
		last := page[len(page)-1]
		nq := url.Values{"sort": {d.Sort}, "dir": {d.Dir}, "after": {last.Tag}}
		switch d.Sort {
		case "pushed":
			nq.Set("key", strconv.FormatInt(last.Pushed.UnixNano(), 10))
		case "size":
			nq.Set("key", strconv.FormatInt(last.Total, 10))
		case "platforms":
			nq.Set("key", last.platKey)
		}
		if d.ShowAll {
			nq.Set("all", "1")
		}
		d.Next = "?" + nq.Encode()
	}
	fq := url.Values{"sort": {d.Sort}, "dir": {d.Dir}}
	if d.ShowAll {
		fq.Set("all", "1")
	}
	d.FirstPage = "?" + fq.Encode()
	d.Rows = page
	for _, s := range []struct{ key, label string }{{"name", "Tag"}, {"pushed", "Pushed"}, {"size", "Size"}, {"platforms", "Platforms"}} {
		dir := "asc"
		if s.key == "pushed" || s.key == "size" {
			dir = "desc"
		}
		aria := "sort by " + strings.ToLower(s.label)
		if s.key == d.Sort {
			if d.Dir == "asc" {
				dir = "desc"
			} else {
				dir = "asc"
			}
			aria += ", now " + map[string]string{"asc": "ascending", "desc": "descending"}[d.Dir]
		}
		lq := url.Values{"sort": {s.key}, "dir": {dir}}
		if d.ShowAll {
			lq.Set("all", "1")
		}
		d.Sorts = append(d.Sorts, sortLink{Key: s.key, Label: s.label, Href: "?" + lq.Encode(), Aria: aria})
	}
	if len(d.Rows) > 0 {
		d.Pull = pullCommands(d.Rows[0].Ref, repo, d.Rows[0].Tag, !secure(r))
	}
	d.Body = tagRows(repo, d.Rows)
	d.Rows = nil
	return h.render(w, r, v, http.StatusOK, "repo.html", repo, d)
}

// tagRows renders the rows of the tag table. A repository may have
// thousands of tags, and html/template's reflective walk costs tens of
// microseconds a row; this writes the same markup directly, every value
// through template.HTMLEscapeString (attributes are always quoted). Keep
// it in step with the table head in repo.html.
func tagRows(repo string, rows []tagRow) template.HTML {
	var b strings.Builder
	b.Grow(len(rows) * 1100)
	w := func(parts ...string) {
		for _, p := range parts {
			b.WriteString(p)
		}
	}
	e := template.HTMLEscapeString
	href := "/r/" + e(repo) + "@"
	var num [20]byte
	for _, t := range rows {
		tag, d := e(t.Tag), e(string(t.Digest))
		w(`<tr data-tag="`, tag, `" data-pushed="`, string(strconv.AppendInt(num[:0], t.Pushed.UnixNano(), 10)), "\">\n<td><a href=\"", href, d, `">`, tag, `</a>`)
		for _, k := range t.Badges {
			k = e(k)
			w(` <span class="badge badge-`, k, `" title="has a `, k, ` tag">`, k, `</span>`)
		}
		w("</td>\n<td><code title=\"", d, `">`, e(shortDigest(t.Digest)), `</code> <button type="button" class="copy" data-copy="`, d, `" aria-label="Copy the digest of `, tag, "\">Copy</button></td>\n")
		w(`<td><time datetime="`, t.Pushed.UTC().Format(time.RFC3339), `">`, fmtTime(t.Pushed), "</time></td>\n")
		w(`<td class="num" data-bytes="`, string(strconv.AppendInt(num[:0], t.Total, 10)), `">`, units.FormatBytes(t.Total), "</td>\n<td>")
		for i, p := range t.Platforms {
			if i > 0 {
				w(", ")
			}
			w(e(p))
		}
		w("</td>\n", `<td class="pullcell"><button type="button" class="copy pull-tag" data-ref="`, e(t.Ref), `" data-dir="`, tag, `" aria-label="Copy the pull command for `, tag,
			`">By tag</button> <button type="button" class="copy pull-digest" data-ref="`, e(t.DigestRef), `" aria-label="Copy the pull command for `, tag, " by digest\">By digest</button></td>\n</tr>\n")
	}
	return template.HTML(b.String())
}

// pullCmd is one client's command to pull a reference.
type pullCmd struct {
	Tool, Cmd string
}

// pullCommands are the commands the console offers to copy; console.js
// builds the same ones (keep them in step). When the browser reached the
// registry over plain HTTP, the clients are told to skip TLS as well (docker
// has no such flag: its daemon must list the registry as insecure).
func pullCommands(ref, repo, tag string, plainHTTP bool) []pullCmd {
	base := path.Base(repo)
	dir := base
	if tag != "" {
		dir = base + "-" + tag
	}
	podman, skopeo, crane := "podman pull ", "skopeo copy ", "crane pull "
	if plainHTTP {
		podman, skopeo, crane = "podman pull --tls-verify=false ", "skopeo copy --src-tls-verify=false ", "crane pull --insecure "
	}
	return []pullCmd{
		{"podman", podman + ref},
		{"docker", "docker pull " + ref},
		{"skopeo", skopeo + "docker://" + ref + " oci:" + dir},
		{"crane", crane + "--format=oci " + ref + " " + dir},
	}
}

// summary returns what the tag table shows of a manifest: its platforms
// (os/arch[/variant] of an index's children, or of an image's config) and
// its total size (the manifest, its config and layers as their descriptors
// give them, and for an index the same of each child). All of it follows
// from the manifest's bytes, so it is worked out once per digest and cached.
func (h *Handler) summary(ctx context.Context, repo string, d digest.Digest) manifestSummary {
	if sum, ok := h.plat.get(d); ok {
		return sum
	}
	sum := manifestSummary{}
	m, raw, err := h.manifest(ctx, repo, d)
	if err != nil {
		return sum // not cached: it may be readable next time
	}
	sum.size = int64(len(raw))
	switch {
	case m.IsIndex():
		for _, c := range m.Manifests {
			if p := platformString(c.Platform); p != "" && p != "unknown/unknown" && !slices.Contains(sum.platforms, p) {
				sum.platforms = append(sum.platforms, p)
			}
			sum.size += c.Size
			if cm, _, err := h.manifest(ctx, repo, c.Digest); err == nil {
				sum.size += blobBytes(cm)
			}
		}
	default:
		sum.size += blobBytes(m)
		if m.Config != nil && isImageConfig(m.Config.MediaType) {
			if c, err := h.config(ctx, repo, m.Config.Digest); err == nil {
				if p := c.plat(); p != "" {
					sum.platforms = []string{p}
				}
			}
		}
	}
	h.plat.put(d, sum)
	return sum
}

func blobBytes(m *oci.Manifest) int64 {
	var n int64
	if m.Config != nil {
		n += m.Config.Size
	}
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func isImageConfig(mt string) bool {
	return mt == "application/vnd.oci.image.config.v1+json" || mt == "application/vnd.docker.container.image.v1+json"
}

type platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
}

func (p platform) String() string {
	if p.OS == "" && p.Architecture == "" {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func platformString(raw json.RawMessage) string {
	var p platform
	if len(raw) == 0 || json.Unmarshal(raw, &p) != nil {
		return ""
	}
	return p.String()
}

func (h *Handler) manifest(ctx context.Context, repo string, d digest.Digest) (*oci.Manifest, []byte, error) {
	info, raw, err := h.reg.GetManifest(ctx, repo, string(d))
	if err != nil {
		return nil, nil, err
	}
	m, err := oci.ParseManifest(info.MediaType, raw)
	return m, raw, err
}

// imageConfig is the part of an image config the console shows.
type imageConfig struct {
	platform
	Created *time.Time `json:"created"`
	Config  struct {
		User       string            `json:"User"`
		Env        []string          `json:"Env"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		WorkingDir string            `json:"WorkingDir"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
}

func (c *imageConfig) plat() string { return c.platform.String() }

// maxConfigSize bounds what is read of a config blob; real ones are a few
// KiB, and a page must not read a huge blob someone labelled a config.
const maxConfigSize = 4 << 20

func (h *Handler) config(ctx context.Context, repo string, d digest.Digest) (*imageConfig, error) {
	b, n, err := h.reg.OpenBlob(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if n > maxConfigSize {
		return nil, errors.New("config blob too large to show")
	}
	raw, err := io.ReadAll(io.LimitReader(b, maxConfigSize))
	if err != nil {
		return nil, err
	}
	var c imageConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// imagePart is one image manifest of the page: the image itself, or one
// platform of an index.
type imagePart struct {
	Platform   string
	Digest     digest.Digest
	MediaType  string
	Layers     []oci.Descriptor
	LayerBytes int64
	Config     *imageConfig
	ConfigErr  string
	Labels     [][2]string
	Artifact   string // artifactType or config media type of a non-image
}

type referrerGroup struct {
	Name  string
	Items []metadata.Manifest
}

type imageData struct {
	Repo       string
	Digest     digest.Digest
	MediaType  string
	Size       int64
	Index      bool
	Parts      []imagePart
	Tags       []string
	SigTags    []string
	Referrers  []referrerGroup
	History    []historyRow
	Pull       []pullCmd
	TagPulls   []tagPull
	Subject    digest.Digest
	Annotation [][2]string
	CanDelete  bool
	Confirm    bool
	Delete     string    // why deleting is not offered, when it is not
	CanTag     bool      // the viewer may push here: restore and retag are offered
	Upstream   *Upstream // the pull-through upstream this was cached from
	Cached     time.Time // when it was cached (the manifest's record)
	Tagged     string    // the tag just pointed here
}

// historyRow is one move of the tag history; Restore offers to point the
// tag back at the row's digest (it points elsewhere now, and the manifest
// is still in the repository).
type historyRow struct {
	metadata.TagMove
	Restore bool
}

type tagPull struct {
	Tag  string
	Cmds []pullCmd
}

// image shows one manifest or index.
func (h *Handler) image(w http.ResponseWriter, r *http.Request, v *viewer, repo string, d digest.Digest) error {
	if err := oci.ValidateName(repo); err != nil || !v.may(repo, auth.Pull) {
		return notFound("repository %s is not known, or you may not pull it", repo)
	}
	ctx := r.Context()
	rec, err := h.meta.GetManifest(ctx, repo, d)
	if errors.Is(err, metadata.ErrNotFound) {
		return notFound("manifest %s is not in repository %s", d, repo)
	}
	if err != nil {
		return err
	}
	m, _, err := h.manifest(ctx, repo, d)
	if err != nil {
		if _, ok := oci.AsError(err); ok {
			return notFound("manifest %s is not in repository %s", d, repo)
		}
		return err
	}
	data := imageData{Repo: repo, Digest: d, MediaType: rec.MediaType, Size: rec.Size, Index: m.IsIndex(), Subject: rec.Subject, Confirm: r.URL.Query().Get("delete") == "confirm"}
	for k, val := range m.Annotations {
		data.Annotation = append(data.Annotation, [2]string{k, val})
	}
	sort.Slice(data.Annotation, func(i, j int) bool { return data.Annotation[i][0] < data.Annotation[j][0] })
	if m.IsIndex() {
		for _, c := range m.Manifests {
			part := imagePart{Platform: platformString(c.Platform), Digest: c.Digest, MediaType: c.MediaType}
			if cm, _, err := h.manifest(ctx, repo, c.Digest); err == nil {
				h.fillPart(ctx, repo, &part, cm)
			} else {
				part.ConfigErr = "this child manifest is not in the repository"
			}
			data.Parts = append(data.Parts, part)
		}
	} else {
		part := imagePart{Digest: d, MediaType: rec.MediaType}
		h.fillPart(ctx, repo, &part, m)
		data.Parts = append(data.Parts, part)
	}
	tags, err := h.meta.RepoTags(ctx, repo)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if t.Digest == d {
			data.Tags = append(data.Tags, t.Tag)
		}
		if subj, _, ok := signatureTag(t.Tag); ok && subj == d {
			data.SigTags = append(data.SigTags, t.Tag)
		}
	}
	slices.SortFunc(data.Tags, func(a, b string) int {
		if naturalLess(a, b) {
			return -1
		}
		return 1
	})
	refs, err := h.meta.Referrers(ctx, repo, d)
	if err != nil {
		return err
	}
	groups := map[string]*referrerGroup{}
	for _, ref := range refs {
		g := artifactGroup(ref.ArtifactType)
		if groups[g] == nil {
			groups[g] = &referrerGroup{Name: g}
		}
		groups[g].Items = append(groups[g].Items, ref)
	}
	for _, name := range []string{"Signatures", "SBOMs", "Attestations", "Other artifacts"} {
		if g := groups[name]; g != nil {
			data.Referrers = append(data.Referrers, *g)
		}
	}
	// Pushes and deletes under a cache prefix are refused (the API's
	// PullThrough.Refuse), so what a repository there holds came from the
	// upstream: its record's creation is when it was cached.
	if u, ok := h.upstreamOf(repo); ok {
		data.Upstream, data.Cached = &u, rec.Created
	}
	moves, err := h.meta.ManifestTagHistory(ctx, repo, d)
	if err != nil {
		return err
	}
	_, cached := h.upstreamOf(repo)
	data.CanTag = !v.readOnly && !cached && v.may(repo, auth.Push) // the API refuses pushes under a cache prefix
	current := map[string]digest.Digest{}
	for _, t := range tags {
		current[t.Tag] = t.Digest
	}
	present := map[digest.Digest]bool{d: true}
	offered := map[metadata.TagMove]bool{}
	data.History = make([]historyRow, len(moves))
	// Newest first, so the one restore offered per tag and digest is on
	// its latest move.
	for i := len(moves) - 1; i >= 0; i-- {
		m := moves[i]
		row := historyRow{TagMove: m}
		key := metadata.TagMove{Tag: m.Tag, Digest: m.Digest}
		if data.CanTag && current[m.Tag] != m.Digest && !offered[key] {
			ok, seen := present[m.Digest]
			if !seen {
				_, err := h.meta.GetManifest(ctx, repo, m.Digest)
				if err != nil && !errors.Is(err, metadata.ErrNotFound) {
					return err
				}
				ok = err == nil
				present[m.Digest] = ok
			}
			row.Restore, offered[key] = ok, ok
		}
		data.History[i] = row
	}
	data.Tagged = r.URL.Query().Get("tagged")
	if current[data.Tagged] != d {
		data.Tagged = ""
	}
	host := r.Host
	data.Pull = pullCommands(host+"/"+repo+"@"+string(d), repo, "", !secure(r))
	for _, t := range data.Tags {
		data.TagPulls = append(data.TagPulls, tagPull{t, pullCommands(host+"/"+repo+":"+t, repo, t, !secure(r))})
	}
	switch {
	case h.opts.DisableDelete:
		data.Delete = "deletes are disabled on this registry"
	case v.readOnly:
		data.Delete = "the registry is read-only"
	case !v.may(repo, auth.Delete):
		if v.authz != nil && v.sess.User == "" {
			data.Delete = "sign in as an admin of this repository to delete"
		}
	default:
		data.CanDelete = true
	}
	title := repo + "@" + shortDigest(d)
	return h.render(w, r, v, http.StatusOK, "image.html", title, data)
}

func (h *Handler) fillPart(ctx context.Context, repo string, part *imagePart, m *oci.Manifest) {
	part.Layers = m.Layers
	for _, l := range m.Layers {
		part.LayerBytes += l.Size
	}
	if m.Config == nil {
		return
	}
	if !isImageConfig(m.Config.MediaType) {
		part.Artifact = m.ReferrerArtifactType()
		return
	}
	c, err := h.config(ctx, repo, m.Config.Digest)
	if err != nil {
		part.ConfigErr = "the config could not be read: " + err.Error()
		return
	}
	part.Config = c
	if part.Platform == "" {
		part.Platform = c.plat()
	}
	for k, val := range c.Config.Labels {
		part.Labels = append(part.Labels, [2]string{k, val})
	}
	sort.Slice(part.Labels, func(i, j int) bool { return part.Labels[i][0] < part.Labels[j][0] })
}

// delete deletes a manifest by digest through the API handler, with an
// access token the authorizer issues for the viewer: whatever the API would
// refuse this identity (a role without delete, read-only, disabled deletes,
// a pull-through repository) is refused here with the API's own message.
func (h *Handler) delete(w http.ResponseWriter, r *http.Request, v *viewer) error {
	if err := h.checkPost(r, v); err != nil {
		return err
	}
	repo, ref := r.PostForm.Get("repo"), r.PostForm.Get("digest")
	d, err := digest.Parse(ref)
	if err != nil || oci.ValidateName(repo) != nil {
		return &httpError{http.StatusBadRequest, "the form names no valid repository and digest"}
	}
	if err := h.throughAPI(r, v, http.MethodDelete, repo, string(d), "", nil, auth.Delete, "delete"); err != nil {
		return err
	}
	http.Redirect(w, r, "/r/"+repo+"?"+url.Values{"deleted": {string(d)}}.Encode(), http.StatusSeeOther)
	return nil
}

// throughAPI sends a manifest request (a DELETE, or a PUT of body as
// ctype) for repo's ref to the API handler in-process, with an access token
// the authorizer issues the viewer for action: whatever the API would refuse
// this identity, it refuses here, with its own message, and whatever it
// does on a client's request (notifications included) it does here too.
func (h *Handler) throughAPI(r *http.Request, v *viewer, method, repo, ref, ctype string, body []byte, action auth.Action, what string) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, "/v2/"+repo+"/manifests/"+ref, rd)
	if err != nil {
		return err
	}
	req.Host, req.RemoteAddr = r.Host, r.RemoteAddr
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if v.authz != nil {
		tok, err := v.authz.Issue(v.id, []auth.Access{{Type: "repository", Name: repo, Actions: []string{string(auth.Pull), string(action)}}})
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok.Token)
	}
	rec := &recorder{header: http.Header{}}
	h.api.ServeHTTP(rec, req)
	if rec.status/100 != 2 {
		msg := "the registry refused the " + what
		var env struct {
			Errors []struct{ Code, Message string } `json:"errors"`
		}
		if json.Unmarshal([]byte(rec.body.String()), &env) == nil && len(env.Errors) > 0 {
			msg += ": " + env.Errors[0].Code + ": " + env.Errors[0].Message
		}
		status := rec.status
		if status == http.StatusUnauthorized {
			status = http.StatusForbidden // the console's own sign-in is the way, not a challenge
		}
		return &httpError{status, msg}
	}
	return nil
}

// tag points a tag at a manifest of the repository — "restore this
// revision" from the tag history, or "tag this manifest as" — by a PUT of
// the manifest's stored bytes under the tag through the API, as a client
// retags (crane tag does the same), so the API's rules apply: a role
// without push, read-only mode and pull-through repositories are refused.
func (h *Handler) tag(w http.ResponseWriter, r *http.Request, v *viewer) error {
	if err := h.checkPost(r, v); err != nil {
		return err
	}
	repo, ref, tag := r.PostForm.Get("repo"), r.PostForm.Get("digest"), strings.TrimSpace(r.PostForm.Get("tag"))
	d, err := digest.Parse(ref)
	if err != nil || oci.ValidateName(repo) != nil {
		return &httpError{http.StatusBadRequest, "the form names no valid repository and digest"}
	}
	if err := oci.ValidateTag(tag); err != nil {
		return &httpError{http.StatusBadRequest, fmt.Sprintf("%q is not a valid tag: up to 128 letters, digits, _, . and -, not starting with . or -", tag)}
	}
	// The same answer for "absent" and "not yours", as on the pages.
	if !v.may(repo, auth.Pull) {
		return notFound("manifest %s is not in repository %s, or you may not pull it", d, repo)
	}
	info, raw, err := h.reg.GetManifest(r.Context(), repo, string(d))
	if err != nil {
		if _, ok := oci.AsError(err); ok {
			return notFound("manifest %s is not in repository %s, or you may not pull it", d, repo)
		}
		return err
	}
	if err := h.throughAPI(r, v, http.MethodPut, repo, tag, info.MediaType, raw, auth.Push, "tag"); err != nil {
		return err
	}
	http.Redirect(w, r, "/r/"+repo+"@"+string(d)+"?"+url.Values{"tagged": {tag}}.Encode(), http.StatusSeeOther)
	return nil
}

// recorder captures the API's answer to an in-process request.
type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (c *recorder) Header() http.Header { return c.header }
func (c *recorder) WriteHeader(s int) {
	if c.status == 0 {
		c.status = s
	}
}
func (c *recorder) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.body.Len() < 64<<10 {
		c.body.Write(b)
	}
	return len(b), nil
}

type statusData struct {
	Storage  string
	Usage    metadata.Usage
	ReadOnly bool
	Delete   bool
	Version  string
	Auth     bool
	Runs     []maintenanceRun
	Queues   []metadata.QueueStatus
}

// maintenanceRun is one line of the status page's gc and prune record.
type maintenanceRun struct {
	Name string // "Garbage collection", "Prune"
	Kind string
	Last *metadata.MaintenanceRun // nil: never run
	Took string
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request, v *viewer) error {
	u, err := h.meta.Usage(r.Context())
	if err != nil {
		return err
	}
	version := h.opts.Version
	if version == "" {
		version = "unknown (built without version information)"
	}
	d := statusData{Storage: h.opts.Storage, Usage: u, ReadOnly: v.readOnly, Delete: !h.opts.DisableDelete, Version: version, Auth: v.authz != nil}
	for _, k := range []struct{ kind, name string }{{metadata.RunGC, "Garbage collection"}, {metadata.RunPrune, "Prune"}} {
		run := maintenanceRun{Name: k.name, Kind: k.kind}
		last, err := h.meta.LastRun(r.Context(), k.kind)
		switch {
		case errors.Is(err, metadata.ErrNotFound):
		case err != nil:
			return err
		default:
			run.Last, run.Took = last, fmtDuration(last.Duration())
		}
		d.Runs = append(d.Runs, run)
	}
	if d.Queues, err = h.meta.EventQueues(r.Context(), h.opts.Endpoints); err != nil {
		return err
	}
	return h.render(w, r, v, http.StatusOK, "status.html", "Status", d)
}

type loginData struct {
	Error string
	Next  string
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request, v *viewer, msg string, status int) error {
	if v.authz == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	next := r.FormValue("next")
	return h.render(w, r, v, status, "login.html", "Sign in", loginData{Error: msg, Next: localPath(next)})
}

// localPath keeps a redirect target on this site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.Contains(p, "\\") {
		return "/"
	}
	return p
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request, v *viewer) error {
	if err := h.checkPost(r, v); err != nil {
		return err
	}
	if v.authz == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	id, err := v.authz.Basic(r.PostForm.Get("username"), r.PostForm.Get("password"))
	if err != nil {
		return h.loginForm(w, r, v, "Invalid username or password (or robot token).", http.StatusUnauthorized)
	}
	// A new session id at sign-in, so a token planted before it is void.
	s := session{ID: newSessionID(), User: id.Name, Robot: id.Robot, Exp: h.now().Add(h.lifetime).Unix()}
	h.setSession(w, r, s)
	http.Redirect(w, r, localPath(r.PostForm.Get("next")), http.StatusSeeOther)
	return nil
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, v *viewer) error {
	if err := h.checkPost(r, v); err != nil {
		return err
	}
	h.setSession(w, r, session{ID: newSessionID(), Exp: h.now().Add(h.lifetime).Unix()})
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

// fmtDuration prints a run's duration to a useful precision: milliseconds
// for short runs, seconds for long ones.
func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "—"
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
