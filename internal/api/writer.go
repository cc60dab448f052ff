package api

import (
	"io"
	"net/http"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/opencontainers/go-digest"
)

type digestT = digest.Digest

// statusWriter records the status, bytes and error code of a response for
// the request log. It forwards ReadFrom so blob pulls keep the kernel's
// zero-copy path.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	code   oci.Code
	user   string // the authenticated user, when access control is on
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}

func (s *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := s.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(s.ResponseWriter, r)
	}
	s.bytes += n
	return n, err
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
