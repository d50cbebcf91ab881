package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// maxMsgPackDepth bounds how deeply arrays and maps nest in a value, so
// that checking, decoding and converting a value cannot exhaust the stack.
const maxMsgPackDepth = 500

// mpReader reads MessagePack values from b, checking each as it goes:
// lengths and counts may not announce more than what remains, so that no
// decoder downstream allocates for elements that are not there.
type mpReader struct {
	b   []byte
	off int
}

var errTruncated = errors.New("unexpected end of MessagePack data")

func (r *mpReader) remaining() int { return len(r.b) - r.off }

// next returns n bytes and moves past them.
func (r *mpReader) next(n int) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, errTruncated
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b, nil
}

func (r *mpReader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// uintN reads a big-endian unsigned integer of size bytes.
func (r *mpReader) uintN(size int) (uint64, error) {
	b, err := r.next(size)
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	default:
		return binary.BigEndian.Uint64(b), nil
	}
}

// end reports bytes left after the message.
func (r *mpReader) end() error {
	if r.remaining() != 0 {
		return fmt.Errorf("%d bytes after the message", r.remaining())
	}
	return nil
}

// nilValue consumes a nil and reports whether there was one.
func (r *mpReader) nilValue() bool {
	if r.off < len(r.b) && r.b[r.off] == 0xc0 {
		r.off++
		return true
	}
	return false
}

// count reads the size-byte element count of an array (perElement 1) or
// a map (perElement 2).
func (r *mpReader) count(size, perElement int) (int, error) {
	n, err := r.uintN(size)
	if err != nil {
		return 0, err
	}
	return r.checkCount(n, perElement)
}

func (r *mpReader) checkCount(n uint64, perElement int) (int, error) {
	if n > uint64(r.remaining()/perElement) {
		return 0, fmt.Errorf("%d elements announced, %d bytes left", n, r.remaining())
	}
	return int(n), nil
}

func (r *mpReader) arrayLen() (int, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case c >= 0x90 && c <= 0x9f:
		return r.checkCount(uint64(c&0x0f), 1)
	case c == 0xdc:
		return r.count(2, 1)
	case c == 0xdd:
		return r.count(4, 1)
	}
	return 0, fmt.Errorf("want an array, got %s", describeCode(c))
}

// mapLen reads a map header; nil reads as -1.
func (r *mpReader) mapLen() (int, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case c >= 0x80 && c <= 0x8f:
		return r.checkCount(uint64(c&0x0f), 2)
	case c == 0xde:
		return r.count(2, 2)
	case c == 0xdf:
		return r.count(4, 2)
	case c == 0xc0:
		return -1, nil
	}
	return 0, fmt.Errorf("want a map, got %s", describeCode(c))
}

// strLen reads a string header and returns the string's length.
func (r *mpReader) strLen(c byte) (int, bool, error) {
	var n uint64
	var err error
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xd9:
		n, err = r.uintN(1)
	case c == 0xda:
		n, err = r.uintN(2)
	case c == 0xdb:
		n, err = r.uintN(4)
	default:
		return 0, false, nil
	}
	if err != nil {
		return 0, true, err
	}
	if n > uint64(r.remaining()) {
		return 0, true, errTruncated
	}
	return int(n), true, nil
}

func (r *mpReader) str() (string, error) {
	c, err := r.byte()
	if err != nil {
		return "", err
	}
	n, ok, err := r.strLen(c)
	if !ok {
		return "", fmt.Errorf("want a string, got %s", describeCode(c))
	}
	if err != nil {
		return "", err
	}
	b, err := r.next(n)
	return string(b), err
}

func (r *mpReader) bool() (bool, error) {
	c, err := r.byte()
	if err != nil {
		return false, err
	}
	switch c {
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	}
	return false, fmt.Errorf("want a boolean, got %s", describeCode(c))
}

// int reads an integer of any width that fits an int64.
func (r *mpReader) int() (int64, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	}
	var size int
	signed := false
	switch c {
	case 0xcc, 0xcd, 0xce, 0xcf:
		size = 1 << (c - 0xcc)
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size, signed = 1<<(c-0xd0), true
	default:
		return 0, fmt.Errorf("want an integer, got %s", describeCode(c))
	}
	u, err := r.uintN(size)
	if err != nil {
		return 0, err
	}
	if !signed {
		if u > math.MaxInt64 {
			return 0, fmt.Errorf("integer %d out of range", u)
		}
		return int64(u), nil
	}
	switch size {
	case 1:
		return int64(int8(u)), nil
	case 2:
		return int64(int16(u)), nil
	case 4:
		return int64(int32(u)), nil
	}
	return int64(u), nil
}

// headers reads a map of strings to strings; nil and an empty map read as
// nil.
func (r *mpReader) headers() (map[string]string, error) {
	n, err := r.mapLen()
	if err != nil || n <= 0 {
		return nil, err
	}
	h := make(map[string]string, n)
	for range n {
		k, err := r.str()
		if err != nil {
			return nil, err
		}
		v, err := r.str()
		if err != nil {
			return nil, err
		}
		h[k] = v
	}
	return h, nil
}

// strings reads an array of strings; nil reads as nil.
func (r *mpReader) strings() ([]string, error) {
	if r.nilValue() {
		return nil, nil
	}
	n, err := r.arrayLen()
	if err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i := range out {
		if out[i], err = r.str(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// arguments reads an array of values and returns each value's bytes, all
// in one copy of the array's body.
func (r *mpReader) arguments() ([]json.RawMessage, error) {
	n, err := r.arrayLen()
	if err != nil {
		return nil, err
	}
	start := r.off
	ends := make([]int, n)
	for i := range n {
		if _, err := r.raw(1); err != nil {
			return nil, err
		}
		ends[i] = r.off - start
	}
	body := bytes.Clone(r.b[start:r.off])
	args := make([]json.RawMessage, n)
	prev := 0
	for i, end := range ends {
		args[i] = body[prev:end:end]
		prev = end
	}
	return args, nil
}

// skipN skips n values.
func (r *mpReader) skipN(n, depth int) error {
	for range n {
		if _, err := r.raw(depth); err != nil {
			return err
		}
	}
	return nil
}

// raw checks the next value, at nesting depth, and returns its bytes.
func (r *mpReader) raw(depth int) ([]byte, error) {
	if depth > maxMsgPackDepth {
		return nil, fmt.Errorf("values nested more than %d deep", maxMsgPackDepth)
	}
	start := r.off
	c, err := r.byte()
	if err != nil {
		return nil, err
	}
	skip := 0
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		r.off--
		n, err := r.mapLen()
		if err != nil {
			return nil, err
		}
		if err := r.skipN(2*n, depth+1); err != nil {
			return nil, err
		}
	case c >= 0x90 && c <= 0x9f, c == 0xdc, c == 0xdd:
		r.off--
		n, err := r.arrayLen()
		if err != nil {
			return nil, err
		}
		if err := r.skipN(n, depth+1); err != nil {
			return nil, err
		}
	case c >= 0xa0 && c <= 0xbf, c == 0xd9, c == 0xda, c == 0xdb:
		n, _, err := r.strLen(c)
		if err != nil {
			return nil, err
		}
		skip = n
	case c == 0xc4, c == 0xc5, c == 0xc6: // bin 8, 16, 32
		n, err := r.uintN(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		if n > uint64(r.remaining()) {
			return nil, errTruncated
		}
		skip = int(n)
	case c == 0xc7, c == 0xc8, c == 0xc9: // ext 8, 16, 32: length, type, data
		n, err := r.uintN(1 << (c - 0xc7))
		if err != nil {
			return nil, err
		}
		if n >= uint64(r.remaining()) {
			return nil, errTruncated
		}
		skip = int(n) + 1
	case c == 0xca:
		skip = 4
	case c == 0xcb:
		skip = 8
	case c >= 0xcc && c <= 0xcf: // uint 8 to 64
		skip = 1 << (c - 0xcc)
	case c >= 0xd0 && c <= 0xd3: // int 8 to 64
		skip = 1 << (c - 0xd0)
	case c >= 0xd4 && c <= 0xd8: // fixext 1 to 16, after the type byte
		skip = 1 + 1<<(c-0xd4)
	default: // 0xc1, never used
		return nil, fmt.Errorf("invalid MessagePack code %s", describeCode(c))
	}
	if _, err := r.next(skip); err != nil {
		return nil, err
	}
	return r.b[start:r.off], nil
}

// describeCode names a value's first byte for error messages.
func describeCode(c byte) string {
	var kind string
	switch {
	case isInteger(c):
		kind = "an integer"
	case c <= 0x8f || c == 0xde || c == 0xdf:
		kind = "a map"
	case c <= 0x9f || c == 0xdc || c == 0xdd:
		kind = "an array"
	case c <= 0xbf || (c >= 0xd9 && c <= 0xdb):
		kind = "a string"
	case c == 0xc0:
		kind = "nil"
	case c == 0xc2 || c == 0xc3:
		kind = "a boolean"
	case c >= 0xc4 && c <= 0xc6:
		kind = "binary data"
	case c == 0xca || c == 0xcb:
		kind = "a float"
	case (c >= 0xc7 && c <= 0xc9) || (c >= 0xd4 && c <= 0xd8):
		kind = "an extension"
	default:
		kind = "an invalid code"
	}
	return fmt.Sprintf("%s (0x%02x)", kind, c)
}
