package auth

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Htpasswd is a set of users with bcrypt password hashes.
type Htpasswd struct {
	hashes map[string][]byte
}

// LoadHtpasswd reads an htpasswd file.
func LoadHtpasswd(path string) (*Htpasswd, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	defer f.Close()
	return ParseHtpasswd(f, path)
}

// ParseHtpasswd reads "user:hash" lines; blank lines and lines starting
// with # are skipped. Only bcrypt hashes are accepted; every bad line is
// reported, each with source and line number.
func ParseHtpasswd(r io.Reader, source string) (*Htpasswd, error) {
	h := &Htpasswd{hashes: map[string][]byte{}}
	var errs []error
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: %s", source, n, fmt.Sprintf(format, args...)))
		}
		user, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok:
			bad("want user:bcrypt-hash")
		case user == "" || strings.ContainsAny(user, " \t"):
			bad("user name %q is empty or has blanks", user)
		case !strings.HasPrefix(hash, "$2y$") && !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$"):
			bad("user %q: only bcrypt entries ($2y$…) are supported, not %s; write one with `htpasswd -B` or `berth admin htpasswd %s`", user, scheme(hash), user)
		case h.hashes[user] != nil:
			bad("user %q appears twice", user)
		default:
			if _, err := bcrypt.Cost([]byte(hash)); err != nil {
				bad("user %q: malformed bcrypt hash: %v", user, err)
				continue
			}
			h.hashes[user] = []byte(hash)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", source, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return h, nil
}

// scheme names a non-bcrypt htpasswd hash for error messages.
func scheme(hash string) string {
	switch {
	case strings.HasPrefix(hash, "{SHA}"):
		return "SHA-1 ({SHA})"
	case strings.HasPrefix(hash, "$apr1$"):
		return "MD5 ($apr1$)"
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		return "SHA-crypt"
	case hash == "":
		return "an empty hash"
	}
	return "crypt or plain text"
}

// HashPassword returns an htpasswd line for user with a bcrypt hash.
func HashPassword(user, password string) (string, error) {
	if user == "" || strings.ContainsAny(user, ": \t\n") {
		return "", fmt.Errorf("user name %q is empty or has a colon or blanks", user)
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", err
	}
	return user + ":" + string(b), nil
}

// Len is the number of users.
func (h *Htpasswd) Len() int { return len(h.hashes) }

// Has tells whether name is a user of the file.
func (h *Htpasswd) Has(name string) bool {
	if h == nil {
		return false
	}
	_, ok := h.hashes[name]
	return ok
}

// dummyHash keeps a check for an unknown user as slow as one for a known
// user, so timing does not tell which user names exist.
var dummyHash = sync.OnceValue(func() []byte {
	b, _ := bcrypt.GenerateFromPassword([]byte("berth: no such user"), bcrypt.DefaultCost)
	return b
})

// CredentialCacheTTL is how long a successful password check is remembered.
const CredentialCacheTTL = 10 * time.Minute

// maxCachedCredentials bounds the cache; when full it starts afresh.
const maxCachedCredentials = 4096

// credCache remembers successful bcrypt verifications.
type credCache struct {
	mu sync.Mutex
	m  map[[32]byte]time.Time
}

func credKey(user, password string, hash []byte) [32]byte {
	s := sha256.New()
	for _, p := range [][]byte{[]byte(user), []byte(password), hash} {
		s.Write([]byte{byte(len(p) >> 24), byte(len(p) >> 16), byte(len(p) >> 8), byte(len(p))})
		s.Write(p)
	}
	var k [32]byte
	copy(k[:], s.Sum(nil))
	return k
}

// verify checks user's password, with the cache in front of bcrypt.
func (h *Htpasswd) verify(c *credCache, user, password string, now time.Time) bool {
	hash, ok := h.hashes[user]
	if !ok {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return false
	}
	key := credKey(user, password, hash)
	c.mu.Lock()
	exp, hit := c.m[key]
	c.mu.Unlock()
	if hit && now.Before(exp) {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedCredentials {
		c.m = map[[32]byte]time.Time{}
	}
	c.m[key] = now.Add(CredentialCacheTTL)
	c.mu.Unlock()
	return true
}
