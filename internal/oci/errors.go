package oci

import (
	"errors"
	"fmt"
	"net/http"
)

// Code is an OCI Distribution error code.
type Code string

// The error codes of the OCI Distribution Spec (plus the Docker ones clients
// rely on).
const (
	ErrBlobUnknown         Code = "BLOB_UNKNOWN"
	ErrBlobUploadInvalid   Code = "BLOB_UPLOAD_INVALID"
	ErrBlobUploadUnknown   Code = "BLOB_UPLOAD_UNKNOWN"
	ErrDigestInvalid       Code = "DIGEST_INVALID"
	ErrManifestBlobUnknown Code = "MANIFEST_BLOB_UNKNOWN"
	ErrManifestInvalid     Code = "MANIFEST_INVALID"
	ErrManifestUnknown     Code = "MANIFEST_UNKNOWN"
	ErrNameInvalid         Code = "NAME_INVALID"
	ErrNameUnknown         Code = "NAME_UNKNOWN"
	ErrSizeInvalid         Code = "SIZE_INVALID"
	ErrTagInvalid          Code = "TAG_INVALID"
	ErrUnauthorized        Code = "UNAUTHORIZED"
	ErrDenied              Code = "DENIED"
	ErrUnsupported         Code = "UNSUPPORTED"
	ErrTooManyRequests     Code = "TOOMANYREQUESTS"
	ErrRangeInvalid        Code = "RANGE_INVALID"
	ErrUnavailable         Code = "UNAVAILABLE"
	ErrUnknown             Code = "UNKNOWN"
)

// statuses is the one table from error code to HTTP status.
var statuses = map[Code]int{
	ErrBlobUnknown:         http.StatusNotFound,
	ErrBlobUploadInvalid:   http.StatusBadRequest,
	ErrBlobUploadUnknown:   http.StatusNotFound,
	ErrDigestInvalid:       http.StatusBadRequest,
	ErrManifestBlobUnknown: http.StatusBadRequest,
	ErrManifestInvalid:     http.StatusBadRequest,
	ErrManifestUnknown:     http.StatusNotFound,
	ErrNameInvalid:         http.StatusBadRequest,
	ErrNameUnknown:         http.StatusNotFound,
	ErrSizeInvalid:         http.StatusBadRequest,
	ErrTagInvalid:          http.StatusBadRequest,
	ErrUnauthorized:        http.StatusUnauthorized,
	ErrDenied:              http.StatusForbidden,
	ErrUnsupported:         http.StatusMethodNotAllowed,
	ErrTooManyRequests:     http.StatusTooManyRequests,
	ErrRangeInvalid:        http.StatusRequestedRangeNotSatisfiable,
	ErrUnavailable:         http.StatusServiceUnavailable,
	ErrUnknown:             http.StatusInternalServerError,
}

// Error is a protocol error: a code, a human message and optional detail.
// Status overrides the code's usual HTTP status when non-zero (for example
// 413 for an oversized manifest, 416 for an out-of-order chunk).
type Error struct {
	Code    Code
	Message string
	Detail  any
	Status  int
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// HTTPStatus is the status the error is served with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	if s, ok := statuses[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithStatus returns a copy of e served with the given HTTP status.
func (e *Error) WithStatus(status int) *Error {
	c := *e
	c.Status = status
	return &c
}

// ManifestTooLarge refuses a manifest of size bytes, over MaxManifestSize:
// SIZE_INVALID, served 413 as the distribution spec has it.
func ManifestTooLarge(size int64) *Error {
	return Errorf(ErrSizeInvalid, "manifest is %d bytes; the limit is %d", size, MaxManifestSize).WithStatus(http.StatusRequestEntityTooLarge)
}

// UploadRangeInvalid refuses a chunk that does not fit its upload (out of
// order, or a Content-Range that does not match its body):
// BLOB_UPLOAD_INVALID, served 416 as the distribution spec has it.
func UploadRangeInvalid(message string) *Error {
	return &Error{Code: ErrBlobUploadInvalid, Message: message, Status: http.StatusRequestedRangeNotSatisfiable}
}

// AsError finds the *Error in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
