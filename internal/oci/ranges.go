package oci

import (
	"strconv"
	"strings"
)

// ParseContentRange parses the Content-Range of a chunked upload PATCH:
// "START-END" (inclusive, as the distribution protocol uses it), with an
// optional "bytes " prefix and "/SIZE" suffix that some clients send.
func ParseContentRange(s string) (start, end int64, err error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "bytes ")
	s = strings.TrimPrefix(s, "bytes=")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, Errorf(ErrRangeInvalid, "malformed Content-Range %q", truncate(s))
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, Errorf(ErrRangeInvalid, "malformed Content-Range %q", truncate(s))
	}
	return start, end, nil
}
