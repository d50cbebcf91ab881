package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// appendWriter is the io.Writer and io.ByteWriter the MessagePack encoder
// writes to: it appends to b.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

// mpEncoder is a configured MessagePack encoder with its writer. Encoders
// are pooled here rather than in the library's pool, whose encoders other
// code may configure differently.
type mpEncoder struct {
	w   appendWriter
	enc *msgpack.Encoder
}

var mpEncoders = sync.Pool{New: func() any {
	e := &mpEncoder{}
	e.enc = msgpack.NewEncoder(&e.w)
	e.enc.SetCustomStructTag("json")
	e.enc.UseCompactInts(true)
	e.enc.SetSortMapKeys(true)
	return e
}}

// AppendMsgPackValue appends v encoded as one MessagePack value. Integers
// take their shortest form, []byte is binary data, time.Time the timestamp
// extension (which the JavaScript client reads as a Date), json.RawMessage
// the MessagePack form of its JSON value (when v is one: a json.RawMessage
// nested in a struct, map or slice is binary data, as for the library
// below), and structs are maps whose keys
// are the fields' msgpack tags, else their json tags, else their names.
// Other values are encoded by github.com/vmihailenco/msgpack/v5, which
// writes map[string]any, map[string]string and map[string]bool in key
// order. On error the returned slice holds
// a partial encoding and must be discarded.
func AppendMsgPackValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, 0xc0), nil
	case string:
		return appendStr(dst, x), nil
	case bool:
		if x {
			return append(dst, 0xc3), nil
		}
		return append(dst, 0xc2), nil
	case int:
		return appendInt(dst, int64(x)), nil
	case int64:
		return appendInt(dst, x), nil
	case float64:
		return appendFloat64(dst, x), nil
	case json.RawMessage:
		return AppendMsgPackFromJSON(dst, x)
	case []byte:
		return appendBin(dst, x), nil
	}
	e := mpEncoders.Get().(*mpEncoder)
	e.w.b = dst
	err := e.enc.Encode(v)
	dst = e.w.b
	e.w.b = nil
	mpEncoders.Put(e)
	return dst, err
}

// mpDecoder is a configured MessagePack decoder with its reader.
type mpDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var mpDecoders = sync.Pool{New: func() any {
	d := &mpDecoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	d.dec.SetCustomStructTag("json")
	d.dec.UseLooseInterfaceDecoding(true)
	return d
}}

// UnmarshalMsgPack decodes raw, exactly one MessagePack value, into the
// value v points to, with github.com/vmihailenco/msgpack/v5. Integers
// convert to integer and float types (when v points to an integer, one
// that does not fit is an error; within composite values the library
// truncates it), binary data to []byte, the timestamp extension to
// time.Time (in the local time zone), and maps to structs by the fields'
// msgpack tags, else json tags, else names, matched exactly. Into an interface, integers decode as int64 (uint64 when
// larger), floats as float64, strings and binary data as string, arrays as
// []any and maps as map[string]any.
//
// raw is checked first: a malformed value, or one that announces more
// elements or bytes than it holds, is an error wrapping ErrInvalidMessage,
// so that no decoder allocates for what is not there.
func UnmarshalMsgPack(raw []byte, v any) (err error) {
	r := mpReader{b: raw}
	if _, err := r.raw(0); err != nil {
		return errInvalid(err.Error())
	}
	if err := r.end(); err != nil {
		return errInvalid(err.Error())
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() && isInteger(raw[0]) {
		switch e := rv.Elem(); e.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			return setInteger(raw, e)
		}
	}
	d := mpDecoders.Get().(*mpDecoder)
	defer func() {
		if p := recover(); p != nil {
			// The decoder's state is unknown: it is not pooled again.
			err = fmt.Errorf("protocol: decode MessagePack value: %v", p)
		}
	}()
	d.r.Reset(raw)
	err = d.dec.Decode(v)
	d.r.Reset(nil)
	mpDecoders.Put(d)
	return err
}

// isInteger reports whether c starts an integer.
func isInteger(c byte) bool { return c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3) }

// setInteger decodes the integer raw into e, an integer value, refusing
// values that e cannot hold: the library would truncate them.
func setInteger(raw []byte, e reflect.Value) error {
	r := mpReader{b: raw}
	var n int64
	var u uint64
	negative := false
	if raw[0] == 0xcf {
		r.off++
		u, _ = r.uintN(8)
	} else {
		var err error
		if n, err = r.int(); err != nil {
			return fmt.Errorf("protocol: decode MessagePack value: %w", err)
		}
		u, negative = uint64(n), n < 0
	}
	overflow := func(text string) error {
		return fmt.Errorf("protocol: decode MessagePack value: %s overflows %s", text, e.Type())
	}
	if e.CanInt() {
		if raw[0] == 0xcf {
			if u > math.MaxInt64 {
				return fmt.Errorf("protocol: decode MessagePack value: integer %d out of range", u)
			}
			n = int64(u)
		}
		if e.OverflowInt(n) {
			return overflow(strconv.FormatInt(n, 10))
		}
		e.SetInt(n)
		return nil
	}
	if negative {
		return overflow(strconv.FormatInt(n, 10))
	}
	if e.OverflowUint(u) {
		return overflow(strconv.FormatUint(u, 10))
	}
	e.SetUint(u)
	return nil
}

// AppendJSONFromMsgPack appends the JSON form of raw, one MessagePack
// value: binary data becomes a base64 string and timestamps RFC 3339
// strings, as encoding/json writes []byte and time.Time; map keys must be
// strings or integers. Values with no JSON form (NaN, infinities, other
// extensions) are errors, and so is a malformed raw (wrapping
// ErrInvalidMessage).
func AppendJSONFromMsgPack(dst, raw []byte) ([]byte, error) {
	r := mpReader{b: raw}
	if _, err := r.raw(0); err != nil {
		return dst, errInvalid(err.Error())
	}
	if err := r.end(); err != nil {
		return dst, errInvalid(err.Error())
	}
	r.off = 0
	return r.appendJSON(dst, false)
}

// appendJSON converts the next value, which raw has checked.
func (r *mpReader) appendJSON(dst []byte, asKey bool) ([]byte, error) {
	c := r.b[r.off]
	switch {
	case isInteger(c):
		if asKey {
			dst = append(dst, '"')
		}
		if c == 0xcf {
			r.off++
			u, _ := r.uintN(8)
			dst = strconv.AppendUint(dst, u, 10)
		} else {
			n, _ := r.int()
			dst = strconv.AppendInt(dst, n, 10)
		}
		if asKey {
			dst = append(dst, '"')
		}
		return dst, nil
	case c >= 0xa0 && c <= 0xbf || c >= 0xd9 && c <= 0xdb:
		s, _ := r.str()
		return AppendString(dst, s), nil
	case asKey:
		return dst, fmt.Errorf("protocol: map key %s has no JSON form", describeCode(c))
	case c >= 0x80 && c <= 0x8f || c == 0xde || c == 0xdf:
		n, _ := r.mapLen()
		dst = append(dst, '{')
		for i := range n {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = r.appendJSON(dst, true); err != nil {
				return dst, err
			}
			dst = append(dst, ':')
			if dst, err = r.appendJSON(dst, false); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case c >= 0x90 && c <= 0x9f || c == 0xdc || c == 0xdd:
		n, _ := r.arrayLen()
		dst = append(dst, '[')
		for i := range n {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = r.appendJSON(dst, false); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	}
	r.off++
	switch c {
	case 0xc0:
		return append(dst, "null"...), nil
	case 0xc2:
		return append(dst, "false"...), nil
	case 0xc3:
		return append(dst, "true"...), nil
	case 0xca:
		u, _ := r.uintN(4)
		return appendJSONFloat(dst, float64(math.Float32frombits(uint32(u))), 32)
	case 0xcb:
		u, _ := r.uintN(8)
		return appendJSONFloat(dst, math.Float64frombits(u), 64)
	case 0xc4, 0xc5, 0xc6:
		n, _ := r.uintN(1 << (c - 0xc4))
		b, _ := r.next(int(n))
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, b)
		return append(dst, '"'), nil
	}
	// An extension: fixext 1 to 16, or ext 8, 16, 32.
	var n int
	if c >= 0xd4 && c <= 0xd8 {
		n = 1 << (c - 0xd4)
	} else {
		u, _ := r.uintN(1 << (c - 0xc7))
		n = int(u)
	}
	typ, _ := r.byte()
	data, _ := r.next(n)
	if int8(typ) != timestampExt {
		return dst, fmt.Errorf("protocol: MessagePack extension type %d has no JSON form", int8(typ))
	}
	t, err := decodeTimestamp(data)
	if err != nil {
		return dst, err
	}
	b, err := t.MarshalJSON()
	if err != nil {
		return dst, fmt.Errorf("protocol: timestamp: %w", err)
	}
	return append(dst, b...), nil
}

// appendJSONFloat writes f as encoding/json does.
func appendJSONFloat(dst []byte, f float64, bits int) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, fmt.Errorf("protocol: %v has no JSON form", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	n := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// encoding/json writes e-07 as e-7.
		if m := len(dst); m-n >= 4 && dst[m-4] == 'e' && dst[m-3] == '-' && dst[m-2] == '0' {
			dst[m-2] = dst[m-1]
			dst = dst[:m-1]
		}
	}
	return dst, nil
}

// timestampExt is the MessagePack timestamp extension's type.
const timestampExt = -1

// decodeTimestamp reads the three forms of the timestamp extension.
func decodeTimestamp(b []byte) (time.Time, error) {
	switch len(b) {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(b)), 0).UTC(), nil
	case 8:
		u := binary.BigEndian.Uint64(b)
		ns := int64(u >> 34)
		if ns > 999_999_999 {
			return time.Time{}, errors.New("protocol: timestamp nanoseconds out of range")
		}
		return time.Unix(int64(u&(1<<34-1)), ns).UTC(), nil
	case 12:
		ns := int64(binary.BigEndian.Uint32(b))
		if ns > 999_999_999 {
			return time.Time{}, errors.New("protocol: timestamp nanoseconds out of range")
		}
		return time.Unix(int64(binary.BigEndian.Uint64(b[4:])), ns).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("protocol: timestamp of %d bytes", len(b))
}

// AppendMsgPackFromJSON appends the MessagePack form of raw, one JSON
// value, keeping the order of object members. Integers that fit int64 or
// uint64 become integers, other numbers (and -0) float64. Malformed JSON is an
// error wrapping ErrInvalidMessage.
func AppendMsgPackFromJSON(dst, raw []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	start := len(dst)
	dst, err := appendFromJSON(dst, d, 0)
	if err == nil {
		if _, e := d.Token(); e != io.EOF {
			err = errors.New("data after the JSON value")
		}
	}
	if err != nil {
		return dst[:start], errInvalid("JSON value: " + err.Error())
	}
	return dst, nil
}

func appendFromJSON(dst []byte, d *json.Decoder, depth int) ([]byte, error) {
	if depth > maxMsgPackDepth {
		return dst, fmt.Errorf("values nested more than %d deep", maxMsgPackDepth)
	}
	tok, err := d.Token()
	if err != nil {
		return dst, err
	}
	switch t := tok.(type) {
	case nil:
		return append(dst, 0xc0), nil
	case bool:
		return AppendMsgPackValue(dst, t)
	case string:
		return appendStr(dst, t), nil
	case json.Number:
		if i, err := t.Int64(); err == nil && (i != 0 || t[0] != '-') { // -0 stays a float
			return appendInt(dst, i), nil
		}
		if u, err := strconv.ParseUint(string(t), 10, 64); err == nil {
			return appendUint(dst, u), nil
		}
		f, err := t.Float64()
		if err != nil {
			return dst, err
		}
		return appendFloat64(dst, f), nil
	case json.Delim:
		// The count comes first in MessagePack: reserve the longest header,
		// write the elements, then put the right header in place.
		start := len(dst)
		dst = append(dst, make([]byte, maxReserved)...)
		n := 0
		for d.More() {
			if t == '{' {
				if dst, err = appendFromJSON(dst, d, depth+1); err != nil { // the key
					return dst, err
				}
			}
			if dst, err = appendFromJSON(dst, d, depth+1); err != nil {
				return dst, err
			}
			n++
		}
		if _, err := d.Token(); err != nil { // the closing delimiter
			return dst, err
		}
		var hdr [maxReserved]byte
		if t == '{' {
			return fillReserved(dst, start, appendMapHeader(hdr[:0], n)), nil
		}
		return fillReserved(dst, start, appendArrayHeader(hdr[:0], n)), nil
	}
	return dst, fmt.Errorf("unexpected JSON token %v", tok)
}
