package events

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"
)

// EnvelopeMediaType is the Content-Type of every POST, Distribution's.
const EnvelopeMediaType = "application/vnd.docker.distribution.events.v1+json"

// BlobMediaType is the media type of a blob event's target, as
// Distribution reports blobs (it does not know what a blob holds).
const BlobMediaType = "application/octet-stream"

// The actions.
const (
	Push   = "push"
	Pull   = "pull"
	Delete = "delete"
	Mount  = "mount"
)

// Envelope is the body of a POST.
type Envelope struct {
	Events []Event `json:"events"`
}

// Event is one notification, field for field Distribution's.
type Event struct {
	// ID is unique per event; a receiver that sees an ID again is seeing
	// a redelivery.
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	Action    string    `json:"action"`
	Target    Target    `json:"target"`
	Request   Request   `json:"request"`
	Actor     Actor     `json:"actor"`
	Source    Source    `json:"source"`
}

// Target is what the event is about.
type Target struct {
	MediaType string        `json:"mediaType,omitempty"`
	Size      int64         `json:"size,omitempty"`
	Digest    digest.Digest `json:"digest,omitempty"`
	// Length is Size again, for receivers of Distribution's older form.
	Length         int64  `json:"length,omitempty"`
	Repository     string `json:"repository"`
	FromRepository string `json:"fromRepository,omitempty"`
	URL            string `json:"url,omitempty"`
	Tag            string `json:"tag,omitempty"`
}

// Request is the HTTP request that made the change.
type Request struct {
	// ID names the request; WithRequest leaves it empty and the first
	// event of the request sets it, shared by its other events.
	ID        string `json:"id"`
	Addr      string `json:"addr,omitempty"`
	Host      string `json:"host,omitempty"`
	Method    string `json:"method"`
	UserAgent string `json:"useragent"`
	// scheme builds Target.URL; not sent.
	scheme string
	// actor is the authenticated user, set once access control decided.
	actor string
}

// Actor is who made the change (empty when anonymous).
type Actor struct {
	Name string `json:"name,omitempty"`
}

// Source is the berth serve process that recorded the event.
type Source struct {
	Addr       string `json:"addr,omitempty"`
	InstanceID string `json:"instanceID,omitempty"`
}

type requestKey struct{}

// WithRequest returns ctx carrying the request an event will name. The
// scheme (http or https) completes the target URL.
func WithRequest(ctx context.Context, r Request, scheme string) context.Context {
	r.scheme = scheme
	return context.WithValue(ctx, requestKey{}, &r)
}

// SetActor records who the request is from, once access control knows.
func SetActor(ctx context.Context, name string) {
	if r, ok := ctx.Value(requestKey{}).(*Request); ok {
		r.actor = name
	}
}

// Change is what happened, in the registry's words.
type Change struct {
	Action    string
	Repo      string
	Digest    digest.Digest
	MediaType string
	Size      int64
	// Tag is the tag pushed or deleted, if any.
	Tag string
	// From is the repository a mounted blob came from.
	From string
}

// Notifier turns changes into queued events for the endpoints that want
// them; its zero value (nil) wants none.
type Notifier struct {
	endpoints []*endpoint
	pulls     bool
	source    Source
	metrics   *metrics

	// wake tells the delivery loops that this process queued events.
	mu   sync.Mutex
	wake []chan struct{}
}

// New builds the notifier for cfg's endpoints. addr is the serve
// process's listen address, named as the events' source.
func New(cfg config.Notifications, addr string, m *Metrics) *Notifier {
	n := &Notifier{pulls: cfg.Pulls, source: Source{Addr: sourceAddr(addr), InstanceID: uuid.NewString()}}
	if m != nil {
		n.metrics = m.m
	}
	for _, e := range cfg.Endpoints {
		ep := &endpoint{Endpoint: e}
		for _, mt := range append(slices.Clone(e.IgnoredMediaTypes), e.Ignore.MediaTypes...) {
			ep.ignoreMedia = append(ep.ignoreMedia, strings.ToLower(mt))
		}
		n.endpoints = append(n.endpoints, ep)
	}
	return n
}

// sourceAddr is host:port of the serving process, the host being this
// machine's name when addr leaves it out (":5000").
func sourceAddr(addr string) string {
	if strings.HasPrefix(addr, ":") {
		if h, err := os.Hostname(); err == nil {
			return h + addr
		}
	}
	return addr
}

type endpoint struct {
	config.Endpoint
	ignoreMedia []string
}

func (e *endpoint) wants(c Change) bool {
	if e.Disabled || slices.Contains(e.Ignore.Actions, c.Action) {
		return false
	}
	return c.MediaType == "" || !slices.Contains(e.ignoreMedia, strings.ToLower(c.MediaType))
}

// Pulls tells whether pull events are recorded at all, so a pull costs
// nothing when they are not.
func (n *Notifier) Pulls() bool { return n != nil && n.pulls }

// Events are the queue rows describing c, one per endpoint that wants it;
// none for a nil Notifier.
func (n *Notifier) Events(ctx context.Context, c Change) []metadata.Event {
	if n == nil || (c.Action == Pull && !n.pulls) {
		return nil
	}
	var out []metadata.Event
	var body []byte
	for _, e := range n.endpoints {
		if !e.wants(c) {
			continue
		}
		if body == nil {
			body = n.encode(ctx, c)
		}
		out = append(out, metadata.Event{Endpoint: e.Name, Repo: c.Repo, Body: body})
	}
	return out
}

// encode is the event's JSON; every endpoint gets the same event (one id).
func (n *Notifier) encode(ctx context.Context, c Change) []byte {
	ev := Event{
		ID:        uuid.NewString(),
		Timestamp: time.Now().UTC(),
		Action:    c.Action,
		Target: Target{
			MediaType: c.MediaType, Size: c.Size, Length: c.Size, Digest: c.Digest,
			Repository: c.Repo, FromRepository: c.From, Tag: c.Tag,
		},
		Source: n.source,
	}
	if r, ok := ctx.Value(requestKey{}).(*Request); ok {
		if r.ID == "" {
			// Made when the request's first event is: most requests
			// (pulls, HEADs) queue none and need no id.
			r.ID = uuid.NewString()
		}
		ev.Request = *r
		ev.Actor.Name = r.actor
		if r.Host != "" && c.Digest != "" {
			kind := "manifests"
			if c.MediaType == BlobMediaType {
				kind = "blobs"
			}
			ev.Target.URL = r.scheme + "://" + r.Host + "/v2/" + c.Repo + "/" + kind + "/" + c.Digest.String()
		}
	}
	b, _ := json.Marshal(ev) // plain strings and numbers: cannot fail
	return b
}

// Queued tells the notifier that evs, describing a change of action, were
// just committed: they are counted, and the delivery loops deliver now
// instead of at their next poll. Events of a change that was refused are
// never committed, so never counted.
func (n *Notifier) Queued(action string, evs []metadata.Event) {
	if n == nil {
		return
	}
	for _, e := range evs {
		n.metrics.incoming(e.Endpoint, action)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, w := range n.wake {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}
