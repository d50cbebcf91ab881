package protocol

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// This file holds the JSON hub protocol's fast path: a scanner for the
// records clients send most, which reads a record's fields the way
// encoding/json reads them into wireMessage, without reflection and with
// a few allocations per record instead of one per field and value.
//
// It accepts a subset of what encoding/json accepts: a record it cannot
// read exactly as encoding/json would (a syntax error, a field of the
// wrong type, an escaped or non-ASCII field name, a field name in other
// case, a repeated field, an escaped or invalid UTF-8 string field,
// nesting deeper than maxScanDepth, ...) makes it give up, and
// DecodeMessage decodes that record with encoding/json, which either reads
// it or words the error. So the scanner never has to be right about an
// error, only about what it accepts; FuzzScanFields checks that against
// encoding/json.

// maxScanDepth is the deepest nesting of arrays and objects the scanner
// follows within one value; deeper values go to encoding/json, whose limit
// is 10,000.
const maxScanDepth = 64

// Field bits of fields.has and of the scanner's set of fields seen.
const (
	hasType = 1 << iota
	hasInvocationID
	hasTarget
	hasArguments
	hasStreamIDs
	hasHeaders
	hasItem
	hasResult
	hasError
	hasAllowReconnect
	hasSequenceID
)

// fieldNames are the record's field names in the order of the bits above.
var fieldNames = [...]string{
	"type", "invocationId", "target", "arguments", "streamIds", "headers",
	"item", "result", "error", "allowReconnect", "sequenceId",
}

// scan reads record's fields into f, which is empty, as json.Unmarshal
// reads them into a wireMessage, or reports false when it leaves the
// record to encoding/json; f is then garbage. Strings and values are
// copied: the fields share no memory with record.
func (f *fields) scan(record []byte) bool {
	b := record
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	// args holds the arguments' positions in record until they are copied.
	var argBuf [8]json.RawMessage
	args := argBuf[:0]
	seen := 0
	for {
		// A field name.
		if i >= len(b) || b[i] != '"' {
			return false
		}
		start := i + 1
		end, plain := scanString(b, i)
		if !plain {
			return false
		}
		bit := fieldBit(b[start : end-1])
		if bit < 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return false
		}
		// Its value. null is read only where encoding/json keeps it as a
		// value (item, result, arguments) or skips it (unknown fields); as
		// another field's value, which encoding/json takes for absent, the
		// scanner gives up.
		switch bit {
		case 0: // not a field of the record: skipped, as encoding/json does
			i = skipValue(b, i)
		case hasType:
			var n int64
			n, i = scanInt(b, i, 9) // fits an int everywhere
			f.typ = int(n)
		case hasSequenceID:
			f.sequenceID, i = scanInt(b, i, 18)
		case hasInvocationID:
			f.invocationID, i = scanStringField(b, i)
		case hasTarget:
			f.target, i = scanStringField(b, i)
		case hasError:
			f.errMsg, i = scanStringField(b, i)
		case hasAllowReconnect:
			f.allowReconnect, i = scanBool(b, i)
		case hasArguments:
			args, i = scanArguments(b, i, args)
		case hasStreamIDs:
			f.streamIDs, i = scanStrings(b, i)
		case hasHeaders:
			f.headers, i = scanHeaders(b, i)
		case hasItem:
			f.item, i = scanRaw(b, i)
		case hasResult:
			f.result, i = scanRaw(b, i)
		}
		if i < 0 {
			return false
		}
		var more bool
		if i, more = nextElement(b, i, '}'); !more {
			break
		}
	}
	if i < 0 || skipSpace(b, i) != len(b) {
		return false
	}
	f.has = seen &^ (hasArguments | hasStreamIDs | hasHeaders | hasItem | hasResult | hasAllowReconnect)
	if seen&hasArguments != 0 {
		f.arguments = copyValues(args)
	}
	return true
}

// fieldBit is the bit of the field named name, 0 for an ASCII name that
// is no field's in any case, and -1 for one that is a field's in other case
// or a name that is not ASCII: encoding/json matches names in any case,
// Unicode's included (the Kelvin sign matches k), and the scanner leaves
// those to it.
func fieldBit(name []byte) int {
	for _, c := range name {
		if c >= utf8.RuneSelf {
			return -1
		}
	}
	for k, n := range fieldNames {
		if string(name) == n {
			return 1 << k
		}
	}
	for _, n := range fieldNames {
		if equalFoldASCII(name, n) {
			return -1
		}
	}
	return 0
}

// equalFoldASCII reports whether the ASCII name equals n in any case.
func equalFoldASCII(name []byte, n string) bool {
	if len(name) != len(n) {
		return false
	}
	for i := range len(name) {
		if lower(name[i]) != lower(n[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringStop marks the bytes that end the plain run of a JSON string: the
// quote, the backslash, control bytes (invalid in a string) and non-ASCII
// bytes (which need a look).
var stringStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// scanString reads the JSON string that starts at the quote b[i] and
// returns the index after its closing quote, or -1 when it is not a valid
// JSON string. plain reports that it holds no escape and only valid
// UTF-8, so that its text is the bytes between the quotes, as
// encoding/json would decode it.
func scanString(b []byte, i int) (end int, plain bool) {
	plain = true
	for i++; i < len(b); i++ {
		c := b[i]
		if !stringStop[c] {
			continue
		}
		switch {
		case c == '"':
			return i + 1, plain
		case c < 0x20:
			return -1, false
		case c == '\\':
			plain = false
			i++
			if i >= len(b) {
				return -1, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return -1, false
				}
				i += 4
			default:
				return -1, false
			}
		default: // non-ASCII: encoding/json replaces invalid UTF-8
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				plain = false
			}
			i += n - 1
		}
	}
	return -1, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanStringField reads a plain string field value at b[i].
func scanStringField(b []byte, i int) (string, int) {
	if b[i] != '"' {
		return "", -1
	}
	end, plain := scanString(b, i)
	if !plain {
		return "", -1
	}
	return string(b[i+1 : end-1]), end
}

// scanInt reads an integer of at most maxDigits digits at b[i] (so that
// it cannot overflow); fractions and exponents are left to encoding/json,
// which refuses them for integer fields.
func scanInt(b []byte, i, maxDigits int) (int64, int) {
	neg := b[i] == '-'
	if neg {
		i++
	}
	start := i
	var n int64
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	switch digits := i - start; {
	case digits == 0 || digits > maxDigits:
		return 0, -1
	case digits > 1 && b[start] == '0': // a leading zero is not JSON
		return 0, -1
	case i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E'):
		return 0, -1
	}
	if neg {
		n = -n
	}
	return n, i
}

// scanBool reads true or false at b[i].
func scanBool(b []byte, i int) (bool, int) {
	if end := skipLiteral(b, i, "true"); end > 0 {
		return true, end
	}
	if end := skipLiteral(b, i, "false"); end > 0 {
		return false, end
	}
	return false, -1
}

// skipLiteral returns the index after lit if it starts at b[i], or -1.
func skipLiteral(b []byte, i int, lit string) int {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	return -1
}

// scanRaw reads one JSON value at b[i] and returns a copy of it, as a
// json.RawMessage field gets it.
func scanRaw(b []byte, i int) (json.RawMessage, int) {
	end := skipValue(b, i)
	if end < 0 {
		return nil, -1
	}
	return append(json.RawMessage(nil), b[i:end]...), end
}

// scanArguments reads the arguments array at b[i], appending each value,
// still in b, to args.
func scanArguments(b []byte, i int, args []json.RawMessage) ([]json.RawMessage, int) {
	if b[i] != '[' {
		return args, -1
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return args, i + 1
	}
	for {
		end := skipValue(b, i)
		if end < 0 {
			return args, -1
		}
		args = append(args, b[i:end:end])
		var more bool
		if i, more = nextElement(b, end, ']'); !more {
			return args, i
		}
	}
}

// nextElement follows an element of an array or object that close ends:
// it skips the comma and the space before the next element (more), or
// the closing byte, returning the index after it (not more). An index
// of -1 is a syntax error.
func nextElement(b []byte, i int, close byte) (next int, more bool) {
	i = skipSpace(b, i)
	switch {
	case i >= len(b) || b[i] != close && b[i] != ',':
		return -1, false
	case b[i] == close:
		return i + 1, false
	}
	return skipSpace(b, i+1), true
}

// copyValues copies values into one new buffer and returns them as a new,
// non-nil slice of slices of that buffer, each capped at its end so that
// an append to one cannot overwrite the next.
func copyValues(values []json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, len(values))
	n := 0
	for _, v := range values {
		n += len(v)
	}
	buf := make([]byte, 0, n)
	for k, v := range values {
		start := len(buf)
		buf = append(buf, v...)
		out[k] = buf[start:len(buf):len(buf)]
	}
	return out
}

// scanStrings reads an array of plain strings at b[i].
func scanStrings(b []byte, i int) ([]string, int) {
	if b[i] != '[' {
		return nil, -1
	}
	out := []string{}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return out, i + 1
	}
	for {
		if i >= len(b) {
			return nil, -1
		}
		var s string
		if s, i = scanStringField(b, i); i < 0 {
			return nil, -1
		}
		out = append(out, s)
		var more bool
		if i, more = nextElement(b, i, ']'); !more {
			return out, i
		}
	}
}

// scanHeaders reads an object of plain string names and values at b[i].
func scanHeaders(b []byte, i int) (map[string]string, int) {
	if b[i] != '{' {
		return nil, -1
	}
	out := map[string]string{}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return out, i + 1
	}
	for {
		if i >= len(b) {
			return nil, -1
		}
		var k, v string
		if k, i = scanStringField(b, i); i < 0 {
			return nil, -1
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return nil, -1
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return nil, -1
		}
		if v, i = scanStringField(b, i); i < 0 {
			return nil, -1
		}
		out[k] = v
		var more bool
		if i, more = nextElement(b, i, '}'); !more {
			return out, i
		}
	}
}

// skipValue returns the index after the JSON value that starts at b[i],
// or -1 when there is none, or it nests deeper than maxScanDepth. It
// follows the grammar of RFC 8259 exactly as encoding/json's scanner does:
// strings may hold any byte but control bytes, invalid UTF-8 included.
func skipValue(b []byte, i int) int {
	// nest has a bit per open array or object, innermost lowest: 1 for an
	// object, 0 for an array.
	var nest uint64
	depth := 0
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if depth == maxScanDepth {
				return -1
			}
			i = skipSpace(b, i+1)
			if i < len(b) && (c == '[' && b[i] == ']' || c == '{' && b[i] == '}') {
				i++ // empty: a value of its own
				break
			}
			depth++
			nest <<= 1
			if c == '[' {
				continue // the first element
			}
			nest |= 1
			if i = skipName(b, i); i < 0 {
				return -1
			}
			continue // the first member's value
		case c == '"':
			i, _ = scanString(b, i)
		case c == 't':
			i = skipLiteral(b, i, "true")
		case c == 'f':
			i = skipLiteral(b, i, "false")
		case c == 'n':
			i = skipLiteral(b, i, "null")
		default:
			i = skipNumber(b, i)
		}
		if i < 0 {
			return -1
		}
		// A value ended at i: close the arrays and objects it ends.
		for {
			if depth == 0 {
				return i
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return -1
			}
			object := nest&1 == 1
			if b[i] == ',' {
				i = skipSpace(b, i+1)
				if object {
					if i = skipName(b, i); i < 0 {
						return -1
					}
				}
				break // the next element's or member's value
			}
			if object && b[i] != '}' || !object && b[i] != ']' {
				return -1
			}
			i++
			depth--
			nest >>= 1
		}
	}
}

// skipName skips an object member's name and colon at b[i] and the space
// after them.
func skipName(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i, _ = scanString(b, i); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
}

// skipNumber returns the index after the JSON number at b[i], or -1.
func skipNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i = skipDigits(b, i+1); i < 0 {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i = skipDigits(b, i); i < 0 {
			return -1
		}
	}
	return i
}

// skipDigits skips one or more digits at b[i], or returns -1.
func skipDigits(b []byte, i int) int {
	start := i
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	if i == start {
		return -1
	}
	return i
}

// validJSON reports whether b is one JSON value with optional space
// around it, as json.Valid does, which it asks only for what the scanner
// does not follow.
func validJSON(b []byte) bool {
	i := skipSpace(b, 0)
	if i < len(b) {
		if end := skipValue(b, i); end > 0 && skipSpace(b, end) == len(b) {
			return true
		}
	}
	return json.Valid(b)
}

// UnmarshalJSON is json.Unmarshal(raw, v) with shortcuts for the types hub
// method parameters have most: when v is a *string, *bool, *int, *int64,
// *float64 or *json.RawMessage and raw is exactly a value of that kind (a
// string without escapes, an integer without fraction or exponent, ...),
// it stores the value without reflection. Whichever way it goes, the
// outcome is json.Unmarshal's.
func UnmarshalJSON(raw []byte, v any) error {
	switch p := v.(type) {
	case *string:
		if len(raw) > 1 && raw[0] == '"' {
			if end, plain := scanString(raw, 0); end == len(raw) && plain {
				*p = string(raw[1 : len(raw)-1])
				return nil
			}
		}
	case *bool:
		if string(raw) == "true" || string(raw) == "false" {
			*p = raw[0] == 't'
			return nil
		}
	case *int:
		if len(raw) > 0 {
			if n, end := scanInt(raw, 0, maxIntDigits); end == len(raw) {
				*p = int(n)
				return nil
			}
		}
	case *int64:
		if len(raw) > 0 {
			if n, end := scanInt(raw, 0, 18); end == len(raw) {
				*p = n
				return nil
			}
		}
	case *float64:
		if len(raw) > 0 && skipNumber(raw, 0) == len(raw) {
			if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
				*p = f
				return nil
			}
		}
	case *json.RawMessage:
		if len(raw) > 0 && skipValue(raw, 0) == len(raw) {
			*p = append((*p)[:0], raw...)
			return nil
		}
	}
	return json.Unmarshal(raw, v)
}

// maxIntDigits is how many decimal digits always fit an int.
const maxIntDigits = 9 * (strconv.IntSize / 32)
