package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Notifications sends registry events to webhooks, in the envelope CNCF
// Distribution's notifications use (application/vnd.docker.distribution.
// events.v1+json), so receivers written for it work unchanged. Each event
// is queued in the metadata store in the same transaction as the change it
// describes and delivered at least once, in order, to every endpoint that
// does not ignore it.
type Notifications struct {
	// Pulls also records pull events (manifest and blob GETs). Off by
	// default: each pull then writes to the metadata store.
	Pulls bool `yaml:"pulls"`
	// Endpoints are the webhooks, each with its own queue.
	Endpoints []Endpoint `yaml:"endpoints"`
}

// Endpoint is one webhook.
type Endpoint struct {
	// Name identifies the endpoint's queue (in metrics and logs); renaming
	// an endpoint leaves its undelivered events behind under the old name.
	Name string `yaml:"name"`
	// URL receives the events by POST (http or https).
	URL string `yaml:"url"`
	// Headers are sent with every POST, as in Distribution's config
	// (Authorization: [Bearer TOKEN]).
	Headers map[string][]string `yaml:"headers"`
	// HeadersFromEnv are headers whose value is an environment variable's
	// (header name: variable name), so a webhook's credentials stay out of
	// the file: Authorization: BERTH_HOOK_TOKEN sends the variable's value
	// (in a cluster, put it in the Secret NAME-private-configuration).
	// serve refuses to start when a named variable is unset.
	HeadersFromEnv map[string]string `yaml:"headersFromEnv"`
	// Timeout bounds one POST (default 5s).
	Timeout PositiveDuration `yaml:"timeout"`
	// Threshold is how many failed POSTs in a row are retried at once
	// before backing off (default 3).
	Threshold int `yaml:"threshold"`
	// Backoff is the first wait once Threshold failures happened in a
	// row; it doubles with each further failure up to 32 times itself
	// (default 1s).
	Backoff PositiveDuration `yaml:"backoff"`
	// IgnoredMediaTypes drops events whose target has one of these media
	// types (application/octet-stream: blob events), as Distribution's
	// ignoredmediatypes.
	IgnoredMediaTypes []string `yaml:"ignoredMediaTypes"`
	// Ignore drops events by target media type or by action.
	Ignore Ignore `yaml:"ignore"`
	// Disabled keeps the endpoint's configuration but queues nothing for
	// it (what is queued already stays).
	Disabled bool `yaml:"disabled"`
}

// Ignore drops events before they are queued for an endpoint.
type Ignore struct {
	// MediaTypes are target media types to drop (merged with
	// IgnoredMediaTypes).
	MediaTypes []string `yaml:"mediaTypes"`
	// Actions are actions to drop: push, pull, delete, mount.
	Actions []string `yaml:"actions"`
}

// Event actions, as Distribution names them.
var eventActions = []string{"push", "pull", "delete", "mount"}

// Defaults for endpoint fields left out.
const (
	DefaultEndpointTimeout   = 5 * time.Second
	DefaultEndpointThreshold = 3
	DefaultEndpointBackoff   = time.Second
)

func (n *Notifications) defaults() {
	for i := range n.Endpoints {
		e := &n.Endpoints[i]
		if e.Timeout == 0 {
			e.Timeout = PositiveDuration(DefaultEndpointTimeout)
		}
		if e.Threshold == 0 {
			e.Threshold = DefaultEndpointThreshold
		}
		if e.Backoff == 0 {
			e.Backoff = PositiveDuration(DefaultEndpointBackoff)
		}
	}
}

func (n *Notifications) validate() []error {
	var errs []error
	seen := map[string]int{}
	for i, e := range n.Endpoints {
		f := fmt.Sprintf("notifications.endpoints[%d]", i)
		switch {
		case e.Name == "":
			errs = append(errs, fmt.Errorf("%s.name: required (names the endpoint's queue in metrics and logs)", f))
		case strings.TrimSpace(e.Name) != e.Name || strings.ContainsAny(e.Name, "\n\t"):
			errs = append(errs, fmt.Errorf("%s.name: %q has surrounding or control whitespace", f, e.Name))
		default:
			if j, dup := seen[e.Name]; dup {
				errs = append(errs, fmt.Errorf("%s.name: %q is already the name of endpoints[%d]", f, e.Name, j))
			}
			seen[e.Name] = i
		}
		if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s.url: %q is not an http(s) URL like https://hooks.example.com/registry", f, e.URL))
		}
		if e.Threshold < 0 {
			errs = append(errs, fmt.Errorf("%s.threshold: %d must not be negative", f, e.Threshold))
		}
		for _, a := range e.Ignore.Actions {
			if !slices.Contains(eventActions, a) {
				errs = append(errs, fmt.Errorf("%s.ignore.actions: %q is not one of %s", f, a, strings.Join(eventActions, ", ")))
			}
		}
		for k := range e.Headers {
			if !headerNameRE.MatchString(k) {
				errs = append(errs, fmt.Errorf("%s.headers: %q is not a header name", f, k))
			}
		}
		for k, v := range e.HeadersFromEnv {
			switch {
			case !headerNameRE.MatchString(k):
				errs = append(errs, fmt.Errorf("%s.headersFromEnv: %q is not a header name", f, k))
			case !envNameRE.MatchString(v):
				errs = append(errs, fmt.Errorf("%s.headersFromEnv.%s: %q is not an environment variable name (letters, digits and _, not starting with a digit)", f, k, v))
			}
			for h := range e.Headers {
				if strings.EqualFold(h, k) {
					errs = append(errs, fmt.Errorf("%s.headersFromEnv.%s: the header is in headers too; give it in one of them", f, k))
				}
			}
		}
	}
	return errs
}

// Enabled tells whether any endpoint may receive events.
func (n *Notifications) Enabled() bool {
	for _, e := range n.Endpoints {
		if !e.Disabled {
			return true
		}
	}
	return false
}

var (
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// EndpointHeaders are endpoint i's headers with those of headersFromEnv
// read from the environment (Env.Vars, filled by ReadEnv); an unset or
// empty variable is an error naming the field and the variable.
func (c *Config) EndpointHeaders(i int) (map[string][]string, error) {
	e := c.Notifications.Endpoints[i]
	out := make(map[string][]string, len(e.Headers)+len(e.HeadersFromEnv))
	for k, v := range e.Headers {
		out[k] = v
	}
	var errs []error
	for k, name := range e.HeadersFromEnv {
		v := c.Env.Vars[name]
		if v == "" {
			errs = append(errs, fmt.Errorf("notifications.endpoints[%d].headersFromEnv.%s: the environment variable %s is not set", i, k, name))
			continue
		}
		out[k] = []string{v}
	}
	return out, errors.Join(errs...)
}

var errNoEndpoints = errors.New("notifications.pulls: no endpoint to send pull events to")
