package bench

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
)

// genBlock is the largest slice of keystream produced per call; the zero
// source below is shared read-only by every stream.
const genBlock = 1 << 20

var zeros = make([]byte, genBlock)

// Content is a deterministic, incompressible byte stream of a fixed size:
// the AES-128-CTR keystream under a key derived from (seed, label). AES-CTR
// runs at several GiB/s with AES-NI, so the generator costs the client far
// less than the registry spends hashing and writing the same bytes, and
// nothing is ever held in memory beyond the caller's buffer. The bytes depend
// only on (seed, label, size), never on how the stream is read.
type Content struct {
	stream cipher.Stream
	left   int64
}

// NewContent returns the stream of size bytes named by seed and label.
func NewContent(seed uint64, label string, size int64) *Content {
	key := sha256.Sum256([]byte(fmt.Sprintf("berth-bench/v1/%d/%s", seed, label)))
	block, err := aes.NewCipher(key[:16])
	if err != nil {
		panic(err) // unreachable: the key is always 16 bytes
	}
	return &Content{stream: cipher.NewCTR(block, make([]byte, aes.BlockSize)), left: size}
}

// Read fills p with the next bytes of the stream.
func (c *Content) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n := 0
	for n < len(p) {
		k := min(len(p)-n, genBlock)
		c.stream.XORKeyStream(p[n:n+k], zeros[:k])
		n += k
	}
	c.left -= int64(n)
	return n, nil
}

// WriteTo writes the rest of the stream to w in large blocks, so a request
// body is handed to the connection without an extra small-buffer copy.
func (c *Content) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, min(c.left, 256<<10))
	var total int64
	for c.left > 0 {
		n, _ := c.Read(buf)
		m, err := w.Write(buf[:n])
		total += int64(m)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// ContentDigest returns the sha256 digest of the stream named by seed, label
// and size, computed by streaming it.
func ContentDigest(seed uint64, label string, size int64) digest.Digest {
	h := sha256.New()
	if _, err := NewContent(seed, label, size).WriteTo(h); err != nil {
		panic(err) // unreachable: hash writes never fail
	}
	return digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
