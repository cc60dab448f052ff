// Package server wires berth serve together: it builds the stores, the
// registry and the HTTP handler from a config.Config in one place, serves
// until its context ends, then drains in-flight requests.
package server
