package server

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/berth-registry/berth/internal/config"
)

// tlsConfig loads the default certificate and the per-hostname ones, and
// picks by the name the client asks for (SNI): an exact name first, then a
// wildcard covering one label, then the default.
func tlsConfig(c config.TLS) (*tls.Config, error) {
	var def *tls.Certificate
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %s: %w", c.CertFile, err)
		}
		def = &cert
	}
	byName := map[string]*tls.Certificate{}
	for i, nc := range c.Certificates {
		cert, err := tls.LoadX509KeyPair(nc.CertFile, nc.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.certificates[%d]: %s: %w", i, nc.CertFile, err)
		}
		for _, h := range nc.Hostnames {
			byName[strings.ToLower(h)] = &cert
		}
	}
	if def == nil && len(c.Certificates) > 0 {
		def = byName[strings.ToLower(c.Certificates[0].Hostnames[0])]
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
			if cert, ok := byName[name]; ok {
				return cert, nil
			}
			if _, rest, ok := strings.Cut(name, "."); ok {
				if cert, ok := byName["*."+rest]; ok {
					return cert, nil
				}
			}
			return def, nil
		},
	}, nil
}
