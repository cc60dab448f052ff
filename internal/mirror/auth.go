package mirror

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	credclient "github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/google/go-containerregistry/pkg/authn"
)

// AuthFiles returns the credential files in lookup order: explicit (the
// --authfile flag), then $REGISTRY_AUTH_FILE, then podman's
// ($XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json),
// then docker's ($DOCKER_CONFIG/config.json or ~/.docker/config.json).
// getenv is os.Getenv in production.
func AuthFiles(explicit string, getenv func(string) string) []string {
	var files []string
	add := func(p string) {
		if p != "" && !slices.Contains(files, p) {
			files = append(files, p)
		}
	}
	add(explicit)
	add(getenv("REGISTRY_AUTH_FILE"))
	if x := getenv("XDG_RUNTIME_DIR"); x != "" {
		add(filepath.Join(x, "containers", "auth.json"))
	}
	home := getenv("HOME")
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		add(filepath.Join(x, "containers", "auth.json"))
	} else if home != "" {
		add(filepath.Join(home, ".config", "containers", "auth.json"))
	}
	if d := getenv("DOCKER_CONFIG"); d != "" {
		add(filepath.Join(d, "config.json"))
	} else if home != "" {
		add(filepath.Join(home, ".docker", "config.json"))
	}
	return files
}

type authEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

// FileKeychain resolves credentials from auths-style JSON files (a pull
// secret, podman's auth.json, docker's config.json). For each registry the
// first file with a matching entry wins; within a file the longest matching
// key wins, so a "host/namespace" entry beats a "host" entry. When no file
// holds an entry, the docker credential helpers the files name are asked:
// credHelpers for that host, else credsStore (docker-credential-NAME on
// PATH, the protocol docker and podman use). It logs which file or helper
// supplied credentials for which host, never the secret.
type FileKeychain struct {
	files []string
	log   *slog.Logger

	once    sync.Once
	loadErr error
	auths   []fileAuths
	logged  sync.Map
	helped  sync.Map // host -> authn.Authenticator from a credential helper
}

type fileAuths struct {
	path  string
	auths map[string]authEntry
	// helpers (credHelpers) names a credential helper per registry host;
	// store (credsStore) is the helper for every other host.
	helpers map[string]string
	store   string
}

// has says whether the entry carries credentials: docker writes empty
// entries for hosts whose secret lives in its credsStore.
func (e authEntry) has() bool {
	return e.Auth != "" || e.Username != "" || e.Password != "" || e.IdentityToken != ""
}

var _ authn.Keychain = (*FileKeychain)(nil)

// NewFileKeychain reads files lazily; a missing file other than the first
// (explicit) one is ignored.
func NewFileKeychain(files []string, explicit bool, log *slog.Logger) *FileKeychain {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &FileKeychain{files: files, log: log}
	k.once.Do(func() { k.loadErr = k.load(explicit) })
	return k
}

// Err reports a problem reading an explicitly named file.
func (k *FileKeychain) Err() error { return k.loadErr }

func (k *FileKeychain) load(explicit bool) error {
	for i, p := range k.files {
		raw, err := os.ReadFile(p)
		if err != nil {
			if i == 0 && explicit {
				return fmt.Errorf("--authfile %s: %w", p, err)
			}
			if !errors.Is(err, fs.ErrNotExist) {
				k.log.Warn("ignoring credentials file", "file", p, "error", err)
			}
			continue
		}
		var doc struct {
			Auths       map[string]authEntry `json:"auths"`
			CredHelpers map[string]string    `json:"credHelpers"`
			CredsStore  string               `json:"credsStore"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			if i == 0 && explicit {
				return fmt.Errorf("--authfile %s: not an auths JSON file: %w", p, err)
			}
			k.log.Warn("ignoring credentials file", "file", p, "error", err)
			continue
		}
		norm := map[string]authEntry{}
		for key, e := range doc.Auths {
			if e.has() {
				norm[normalizeAuthKey(key)] = e
			}
		}
		helpers := map[string]string{}
		for key, h := range doc.CredHelpers {
			helpers[normalizeAuthKey(key)] = h
		}
		k.auths = append(k.auths, fileAuths{path: p, auths: norm, helpers: helpers, store: doc.CredsStore})
	}
	return nil
}

func normalizeAuthKey(k string) string {
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	k = strings.TrimSuffix(strings.TrimSuffix(k, "/v1/"), "/v2/")
	k = strings.TrimSuffix(k, "/")
	switch k {
	case "index.docker.io", "registry-1.docker.io":
		k = "docker.io"
	}
	return k
}

// Resolve implements authn.Keychain. target.String() is "host/repo" for a
// repository and "host" for a registry.
func (k *FileKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	host := normalizeAuthKey(target.RegistryStr())
	full := target.String()
	if host == "docker.io" {
		full = "docker.io/" + strings.TrimPrefix(strings.TrimPrefix(full, target.RegistryStr()), "/")
	}
	for _, f := range k.auths {
		best, bestLen := authEntry{}, -1
		for key, e := range f.auths {
			if (key == host || full == key || strings.HasPrefix(full, key+"/")) && len(key) > bestLen {
				best, bestLen = e, len(key)
			}
		}
		if bestLen < 0 {
			continue
		}
		cfg := authn.AuthConfig{Username: best.Username, Password: best.Password, IdentityToken: best.IdentityToken}
		if best.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(best.Auth)
			if err != nil {
				return nil, fmt.Errorf("%s: credentials for %s are not base64", f.path, host)
			}
			user, pass, ok := strings.Cut(string(dec), ":")
			if !ok {
				return nil, fmt.Errorf("%s: credentials for %s are not user:password", f.path, host)
			}
			cfg.Username, cfg.Password = user, pass
		}
		if _, seen := k.logged.LoadOrStore(host+"\x00"+f.path, true); !seen {
			k.log.Info("using credentials", "registry", host, "file", f.path, "user", cfg.Username)
		}
		return authn.FromConfig(cfg), nil
	}
	return k.fromHelper(host)
}

// fromHelper asks the credential helper that serves host, after every
// file's auths: a credHelpers entry for the host in any file, else the
// first file's credsStore. Answers are cached for the run.
func (k *FileKeychain) fromHelper(host string) (authn.Authenticator, error) {
	helper, file := "", ""
	for _, f := range k.auths {
		if h := f.helpers[host]; h != "" {
			helper, file = h, f.path
			break
		}
	}
	if helper == "" {
		for _, f := range k.auths {
			if f.store != "" {
				helper, file = f.store, f.path
				break
			}
		}
	}
	if helper == "" {
		return authn.Anonymous, nil
	}
	if v, ok := k.helped.Load(host); ok {
		return v.(authn.Authenticator), nil
	}
	prog := "docker-credential-" + helper
	if _, err := exec.LookPath(prog); err != nil {
		// As podman does: a helper named but not installed leaves the
		// registry anonymous rather than failing every pull.
		k.log.Warn("credential helper not found; going anonymous", "registry", host, "helper", prog, "file", file)
		k.helped.Store(host, authn.Anonymous)
		return authn.Anonymous, nil
	}
	server := host
	if host == "docker.io" {
		server = "https://index.docker.io/v1/"
	}
	creds, err := credclient.Get(credclient.NewShellProgramFunc(prog), server)
	var a authn.Authenticator = authn.Anonymous
	switch {
	case credentials.IsErrCredentialsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("credential helper %s (from %s) for %s: %w", prog, file, host, err)
	case creds.Username == "<token>":
		a = authn.FromConfig(authn.AuthConfig{IdentityToken: creds.Secret})
	default:
		a = authn.FromConfig(authn.AuthConfig{Username: creds.Username, Password: creds.Secret})
	}
	if a != authn.Anonymous {
		k.log.Info("using credentials", "registry", host, "helper", prog, "file", file)
	}
	k.helped.Store(host, a)
	return a, nil
}
