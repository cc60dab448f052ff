//go:build !containers_image_openpgp

package nodeverify

// Berth must be built with the container runtime library's pure-Go OpenPGP
// backend, or the library would need cgo and libgpgme:
//
//	go build -tags containers_image_openpgp ./cmd/berth
//	go run -tags containers_image_openpgp ./cmd/berth serve
//	go test -tags containers_image_openpgp ./...
var _ = berth_must_be_built_with_tag_containers_image_openpgp // see the comment above: go build -tags containers_image_openpgp
