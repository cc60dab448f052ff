// Package server wires berth serve together: it builds the stores, the
// registry and the HTTP handler from a config.Config in one place, serves
// until its context ends, then drains in-flight requests. It also owns what
// may change while serving (reload.go): a SIGHUP reload that swaps the live
// settings behind atomic pointers, the TLS files' poll, and the refresh of
// revoked robot tokens from the metadata store.
package server
