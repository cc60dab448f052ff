package server

import (
	"crypto/tls"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/internal/config"
)

// certSet is the certificates a TLS config names, loaded. The server keeps
// the current one behind an atomic pointer that its GetCertificate reads,
// so a reload or a rotation on disk reaches the next handshake while
// connections already open keep theirs.
type certSet struct {
	def    *tls.Certificate
	byName map[string]*tls.Certificate
}

// loadCerts loads the default certificate and the per-hostname ones.
func loadCerts(c config.TLS) (*certSet, error) {
	cs := &certSet{byName: map[string]*tls.Certificate{}}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %s: %w", c.CertFile, err)
		}
		cs.def = &cert
	}
	for i, nc := range c.Certificates {
		cert, err := tls.LoadX509KeyPair(nc.CertFile, nc.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.certificates[%d]: %s: %w", i, nc.CertFile, err)
		}
		for _, h := range nc.Hostnames {
			cs.byName[strings.ToLower(h)] = &cert
		}
	}
	if cs.def == nil && len(c.Certificates) > 0 {
		cs.def = cs.byName[strings.ToLower(c.Certificates[0].Hostnames[0])]
	}
	return cs, nil
}

// pick chooses by the name the client asks for (SNI): an exact name first,
// then a wildcard covering one label, then the default.
func (cs *certSet) pick(hello *tls.ClientHelloInfo) *tls.Certificate {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if cert, ok := cs.byName[name]; ok {
		return cert
	}
	if _, rest, ok := strings.Cut(name, "."); ok {
		if cert, ok := cs.byName["*."+rest]; ok {
			return cert
		}
	}
	return cs.def
}

// tlsFiles are the certificate and key files c names.
func tlsFiles(c config.TLS) []string {
	var files []string
	if c.CertFile != "" {
		files = append(files, c.CertFile, c.KeyFile)
	}
	for _, nc := range c.Certificates {
		files = append(files, nc.CertFile, nc.KeyFile)
	}
	return files
}

// tlsStamp identifies the current contents of c's files by path, size and
// modification time (through symlinks, so a Kubernetes secret volume's
// atomic swap counts); a missing file stamps as missing.
func tlsStamp(c config.TLS) string {
	var b strings.Builder
	for _, f := range tlsFiles(c) {
		b.WriteString(f)
		if fi, err := os.Stat(f); err == nil {
			b.WriteString(" " + strconv.FormatInt(fi.Size(), 10) + " " + strconv.FormatInt(fi.ModTime().UnixNano(), 10))
		} else {
			b.WriteString(" missing")
		}
		b.WriteByte('\n')
	}
	return b.String()
}
