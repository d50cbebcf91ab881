package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
)

// ProtocolMessagePack is the handshake name of the MessagePack hub
// protocol. Its handshake is JSON like the JSON protocol's; the records
// after it are binary (see NextMsgPackRecord).
const ProtocolMessagePack = "messagepack"

// MaxMsgPackRecordLength is the largest body a MessagePack record's length
// prefix can announce: the prefix has at most five bytes, and the official
// clients refuse lengths of 2 GB and more.
const MaxMsgPackRecordLength = math.MaxInt32

// maxLengthPrefix is the longest length prefix, in bytes.
const maxLengthPrefix = 5

// ReadMsgPackLength reads the length prefix at the start of buf: a VarInt
// of 7 bits per byte, least significant group first, the high bit saying
// that another byte follows. It returns the body's length and the prefix's
// size. ok is false when buf ends inside the prefix (the caller waits for
// more bytes). A prefix longer than five bytes, or announcing a length
// over MaxMsgPackRecordLength, is an error wrapping ErrInvalidMessage.
func ReadMsgPackLength(buf []byte) (length, prefix int, ok bool, err error) {
	var n uint64
	for i := range maxLengthPrefix {
		if i == len(buf) {
			return 0, 0, false, nil
		}
		b := buf[i]
		n |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			if n > MaxMsgPackRecordLength {
				return 0, 0, false, errInvalid("record length prefix over 2 GB")
			}
			return int(n), i + 1, true, nil
		}
	}
	return 0, 0, false, errInvalid("record length prefix longer than 5 bytes")
}

// NextMsgPackRecord splits the first complete MessagePack record off buf:
// its body without the length prefix, and the bytes after it. ok is false
// when buf holds no complete record yet (the caller keeps buf as a partial
// tail); err reports a malformed prefix (see ReadMsgPackLength). Callers
// that limit the record size check the length with ReadMsgPackLength
// first, so that they need not buffer an oversize record to refuse it.
func NextMsgPackRecord(buf []byte) (record, rest []byte, ok bool, err error) {
	n, p, ok, err := ReadMsgPackLength(buf)
	if !ok || err != nil {
		return nil, buf, false, err
	}
	if len(buf)-p < n {
		return nil, buf, false, nil
	}
	return buf[p : p+n], buf[p+n:], true, nil
}

// appendLengthPrefix appends n as a length prefix.
func appendLengthPrefix(dst []byte, n int) []byte {
	u := uint64(n)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

// beginRecord reserves room for the longest length prefix; endRecord
// writes the prefix for what was appended since and closes the gap. One
// buffer per record, whatever the body's length.
func beginRecord(dst []byte) (out []byte, start int) {
	start = len(dst)
	return append(dst, make([]byte, maxReserved)...), start
}

func endRecord(dst []byte, start int) []byte {
	var pre [maxReserved]byte
	return fillReserved(dst, start, appendLengthPrefix(pre[:0], len(dst)-start-maxReserved))
}

// maxReserved is the room reserved for what can be written only after
// what follows it: a length prefix, or an array or map header (at most
// five bytes as well).
const maxReserved = maxLengthPrefix

// fillReserved writes hdr into the maxReserved bytes reserved at
// dst[start:] and closes the rest of the gap.
func fillReserved(dst []byte, start int, hdr []byte) []byte {
	k := len(hdr)
	if k < maxReserved {
		copy(dst[start+k:], dst[start+maxReserved:])
		dst = dst[:len(dst)-(maxReserved-k)]
	}
	copy(dst[start:], hdr)
	return dst
}

// Completion kinds of the MessagePack layout.
const (
	completionError  = 1
	completionVoid   = 2
	completionResult = 3
)

// DecodeMsgPackMessage decodes one MessagePack record body (without its
// length prefix) into a Message whose Arguments, Item and Result hold the
// raw MessagePack bytes of each value. Invocations and StreamInvocations
// may have five elements or six (with stream IDs); elements past the ones
// a type defines are ignored, as the official implementations do. An
// unknown numeric type is not an error: the returned Message has that Type
// and no other fields, and the caller should ignore it. Errors wrap
// ErrInvalidMessage.
//
// Every value is checked on the way, so that the raw values handed on
// are well-formed and announce no more elements or bytes than the record
// holds.
func DecodeMsgPackMessage(record []byte) (Message, error) {
	m, err := decodeMsgPack(record)
	if err != nil {
		return Message{}, errInvalid(err.Error())
	}
	return m, nil
}

func decodeMsgPack(record []byte) (Message, error) {
	r := mpReader{b: record}
	n, err := r.arrayLen()
	if err != nil {
		return Message{}, err
	}
	if n == 0 {
		return Message{}, errors.New("empty message array")
	}
	typ, err := r.int()
	if err != nil {
		return Message{}, wrapField("message type", err)
	}
	m := Message{Type: MessageType(typ)}
	if int64(m.Type) != typ {
		m.Type = -1 // out of int's range on this platform: unknown
	}
	if !m.Type.Known() {
		if err := r.skipN(n-1, 0); err != nil {
			return Message{}, err
		}
		return Message{Type: m.Type}, r.end()
	}
	need := minElements[m.Type]
	if n < need {
		return Message{}, errors.New(m.Type.String() + " has " + strconv.Itoa(n) + " elements, want at least " + strconv.Itoa(need))
	}
	used := 1
	if m.Type <= TypeCancelInvocation {
		if m.Headers, err = r.headers(); err != nil {
			return Message{}, wrapField("headers", err)
		}
		used++
	}
	switch m.Type {
	case TypeInvocation, TypeStreamInvocation:
		if m.Type == TypeInvocation && r.nilValue() {
			// A non-blocking invocation.
		} else if m.InvocationID, err = r.str(); err != nil {
			return Message{}, wrapField("invocationId", err)
		}
		if m.Target, err = r.str(); err != nil {
			return Message{}, wrapField("target", err)
		}
		if m.Target == "" {
			return Message{}, errors.New("empty target on " + m.Type.String())
		}
		if m.Arguments, err = r.arguments(); err != nil {
			return Message{}, wrapField("arguments", err)
		}
		used += 3
		if n > 5 {
			if m.StreamIDs, err = r.strings(); err != nil {
				return Message{}, wrapField("streamIds", err)
			}
			used++
		}
	case TypeStreamItem:
		if m.InvocationID, err = r.str(); err != nil {
			return Message{}, wrapField("invocationId", err)
		}
		raw, err := r.raw(0)
		if err != nil {
			return Message{}, wrapField("item", err)
		}
		m.Item = bytes.Clone(raw)
		used += 2
	case TypeCompletion:
		if m.InvocationID, err = r.str(); err != nil {
			return Message{}, wrapField("invocationId", err)
		}
		kind, err := r.int()
		if err != nil {
			return Message{}, wrapField("result kind", err)
		}
		used += 2
		switch kind {
		case completionVoid:
		case completionError, completionResult:
			if n < 5 {
				return Message{}, errors.New("Completion of result kind " + strconv.FormatInt(kind, 10) + " has 4 elements, want 5")
			}
			if kind == completionError {
				if m.Error, err = r.str(); err != nil {
					return Message{}, wrapField("error", err)
				}
			} else {
				raw, err := r.raw(0)
				if err != nil {
					return Message{}, wrapField("result", err)
				}
				m.Result = bytes.Clone(raw)
			}
			used++
		default:
			return Message{}, errors.New("unknown Completion result kind " + strconv.FormatInt(kind, 10))
		}
	case TypeCancelInvocation:
		if m.InvocationID, err = r.str(); err != nil {
			return Message{}, wrapField("invocationId", err)
		}
		used++
	case TypeClose:
		if !r.nilValue() {
			if m.Error, err = r.str(); err != nil {
				return Message{}, wrapField("error", err)
			}
		}
		used++
		if n > 2 {
			if m.AllowReconnect, err = r.bool(); err != nil {
				return Message{}, wrapField("allowReconnect", err)
			}
			used++
		}
	case TypeAck, TypeSequence:
		if m.SequenceID, err = r.int(); err != nil {
			return Message{}, wrapField("sequenceId", err)
		}
		used++
	}
	if err := r.skipN(n-used, 0); err != nil {
		return Message{}, err
	}
	if err := r.end(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// minElements is how many elements each type's array has at least.
var minElements = [...]int{
	TypeInvocation: 5, TypeStreamItem: 4, TypeCompletion: 4, TypeStreamInvocation: 5,
	TypeCancelInvocation: 3, TypePing: 1, TypeClose: 2, TypeAck: 2, TypeSequence: 2,
}

func wrapField(field string, err error) error {
	return errors.New(field + ": " + err.Error())
}

// AppendMsgPackArguments encodes args as a MessagePack array, the arguments
// of an Invocation (see AppendMsgPackValue for how values are encoded). On
// error the returned slice holds a partial encoding and must be discarded.
func AppendMsgPackArguments(dst []byte, args []any) ([]byte, error) {
	dst = appendArrayHeader(dst, len(args))
	for i, a := range args {
		var err error
		if dst, err = AppendMsgPackValue(dst, a); err != nil {
			return dst, errors.New("protocol: encode argument " + strconv.Itoa(i) + ": " + err.Error())
		}
	}
	return dst, nil
}

// appendMsgPackHead appends the length-prefix room, the array header, the
// type and the empty headers map that every server message of types 1 to
// 5 starts with.
func appendMsgPackHead(dst []byte, n int, typ MessageType) ([]byte, int) {
	dst, start := beginRecord(dst)
	dst = appendArrayHeader(dst, n)
	dst = appendInt(dst, int64(typ))
	return append(dst, 0x80), start // headers: an empty map
}

// appendMsgPackInvocationHead appends an Invocation record up to its
// arguments.
func appendMsgPackInvocationHead(dst []byte, invocationID, target string) ([]byte, int) {
	dst, start := appendMsgPackHead(dst, 5, TypeInvocation)
	if invocationID == "" {
		dst = append(dst, 0xc0)
	} else {
		dst = appendStr(dst, invocationID)
	}
	return appendStr(dst, target), start
}

// AppendMsgPackInvocation appends an Invocation record. args must be a
// MessagePack array (see AppendMsgPackArguments); empty means no
// arguments. An empty invocationID makes it non-blocking: the ID is nil.
func AppendMsgPackInvocation(dst []byte, invocationID, target string, args []byte) []byte {
	dst, start := appendMsgPackInvocationHead(dst, invocationID, target)
	if len(args) == 0 {
		dst = appendArrayHeader(dst, 0)
	} else {
		dst = append(dst, args...)
	}
	return endRecord(dst, start)
}

// AppendMsgPackInvocationArgs is AppendMsgPackInvocation encoding args in
// place, so a record costs one buffer. On error dst is returned unchanged.
func AppendMsgPackInvocationArgs(dst []byte, invocationID, target string, args []any) ([]byte, error) {
	n := len(dst)
	dst, start := appendMsgPackInvocationHead(dst, invocationID, target)
	dst, err := AppendMsgPackArguments(dst, args)
	if err != nil {
		return dst[:n], err
	}
	return endRecord(dst, start), nil
}

// AppendMsgPackStreamItem appends a StreamItem record; an empty item is
// written as nil.
func AppendMsgPackStreamItem(dst []byte, invocationID string, item []byte) []byte {
	dst, start := appendMsgPackHead(dst, 4, TypeStreamItem)
	dst = appendStr(dst, invocationID)
	dst = appendRawMsgPack(dst, item)
	return endRecord(dst, start)
}

// AppendMsgPackCompletion appends a Completion record with a result. An
// empty result is written as nil, as ASP.NET Core does for void hub
// methods.
func AppendMsgPackCompletion(dst []byte, invocationID string, result []byte) []byte {
	dst, start := appendMsgPackHead(dst, 5, TypeCompletion)
	dst = appendStr(dst, invocationID)
	dst = append(dst, completionResult)
	dst = appendRawMsgPack(dst, result)
	return endRecord(dst, start)
}

// AppendMsgPackCompletionVoid appends a Completion record without a
// result, such as the end of a stream.
func AppendMsgPackCompletionVoid(dst []byte, invocationID string) []byte {
	dst, start := appendMsgPackHead(dst, 4, TypeCompletion)
	dst = appendStr(dst, invocationID)
	dst = append(dst, completionVoid)
	return endRecord(dst, start)
}

// AppendMsgPackCompletionError appends an error Completion record.
func AppendMsgPackCompletionError(dst []byte, invocationID, errMsg string) []byte {
	dst, start := appendMsgPackHead(dst, 5, TypeCompletion)
	dst = appendStr(dst, invocationID)
	dst = append(dst, completionError)
	dst = appendStr(dst, errMsg)
	return endRecord(dst, start)
}

// AppendMsgPackPing appends a Ping record: the length 2, then 0x91 0x06.
func AppendMsgPackPing(dst []byte) []byte {
	return append(dst, 0x02, 0x91, byte(TypePing))
}

// AppendMsgPackClose appends a Close record: [7, nil] for a normal close,
// [7, errMsg] with an error, and a third element true when allowReconnect
// tells clients with automatic reconnect to come back.
func AppendMsgPackClose(dst []byte, errMsg string, allowReconnect bool) []byte {
	n := 2
	if allowReconnect {
		n = 3
	}
	dst, start := beginRecord(dst)
	dst = appendArrayHeader(dst, n)
	dst = append(dst, byte(TypeClose))
	if errMsg == "" {
		dst = append(dst, 0xc0)
	} else {
		dst = appendStr(dst, errMsg)
	}
	if allowReconnect {
		dst = append(dst, 0xc3)
	}
	return endRecord(dst, start)
}

// AppendMsgPackAck appends an Ack record.
func AppendMsgPackAck(dst []byte, sequenceID int64) []byte {
	return appendSequenceRecord(dst, TypeAck, sequenceID)
}

// AppendMsgPackSequence appends a Sequence record.
func AppendMsgPackSequence(dst []byte, sequenceID int64) []byte {
	return appendSequenceRecord(dst, TypeSequence, sequenceID)
}

func appendSequenceRecord(dst []byte, typ MessageType, seq int64) []byte {
	dst, start := beginRecord(dst)
	dst = appendArrayHeader(dst, 2)
	dst = append(dst, byte(typ))
	dst = appendInt(dst, seq)
	return endRecord(dst, start)
}

// AppendMsgPackMessage appends any message as a MessagePack record. It is
// the general encoder; the type-specific functions are faster for the
// common cases. Arguments, Item and Result must each hold one MessagePack
// value. A Completion with an Error is an error Completion; one with a
// Result a result Completion; one with neither has no result. An
// Invocation without an InvocationID is non-blocking (nil ID); StreamIDs,
// when not nil, make Invocations and StreamInvocations six elements long.
// A Message of an unknown type is written as [type].
func AppendMsgPackMessage(dst []byte, m *Message) []byte {
	dst, start := beginRecord(dst)
	n := 1
	switch m.Type {
	case TypeInvocation, TypeStreamInvocation:
		n = 5
		if m.StreamIDs != nil {
			n = 6
		}
	case TypeStreamItem:
		n = 4
	case TypeCompletion:
		n = 4
		if m.Error != "" || m.Result != nil {
			n = 5
		}
	case TypeCancelInvocation:
		n = 3
	case TypeClose:
		n = 2
		if m.AllowReconnect {
			n = 3
		}
	case TypeAck, TypeSequence:
		n = 2
	}
	dst = appendArrayHeader(dst, n)
	dst = appendInt(dst, int64(m.Type))
	if m.Type.Known() && m.Type <= TypeCancelInvocation {
		dst = appendMapHeader(dst, len(m.Headers))
		for k, v := range m.Headers {
			dst = appendStr(dst, k)
			dst = appendStr(dst, v)
		}
	}
	switch m.Type {
	case TypeInvocation, TypeStreamInvocation:
		if m.InvocationID == "" && m.Type == TypeInvocation {
			dst = append(dst, 0xc0)
		} else {
			dst = appendStr(dst, m.InvocationID)
		}
		dst = appendStr(dst, m.Target)
		dst = appendArrayHeader(dst, len(m.Arguments))
		for _, a := range m.Arguments {
			dst = appendRawMsgPack(dst, a)
		}
		if m.StreamIDs != nil {
			dst = appendArrayHeader(dst, len(m.StreamIDs))
			for _, s := range m.StreamIDs {
				dst = appendStr(dst, s)
			}
		}
	case TypeStreamItem:
		dst = appendStr(dst, m.InvocationID)
		dst = appendRawMsgPack(dst, m.Item)
	case TypeCompletion:
		dst = appendStr(dst, m.InvocationID)
		switch {
		case m.Error != "":
			dst = append(dst, completionError)
			dst = appendStr(dst, m.Error)
		case m.Result != nil:
			dst = append(dst, completionResult)
			dst = appendRawMsgPack(dst, m.Result)
		default:
			dst = append(dst, completionVoid)
		}
	case TypeCancelInvocation:
		dst = appendStr(dst, m.InvocationID)
	case TypeClose:
		if m.Error == "" {
			dst = append(dst, 0xc0)
		} else {
			dst = appendStr(dst, m.Error)
		}
		if m.AllowReconnect {
			dst = append(dst, 0xc3)
		}
	case TypeAck, TypeSequence:
		dst = appendInt(dst, m.SequenceID)
	}
	return endRecord(dst, start)
}

// appendRawMsgPack appends an encoded value, nil when raw is empty.
func appendRawMsgPack(dst, raw []byte) []byte {
	if len(raw) == 0 {
		return append(dst, 0xc0)
	}
	return append(dst, raw...)
}

// Encoding of MessagePack's building blocks, in their shortest forms.

func appendArrayHeader(dst []byte, n int) []byte {
	switch {
	case n < 16:
		return append(dst, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xdc), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(dst, 0xdd), uint32(n))
	}
}

func appendMapHeader(dst []byte, n int) []byte {
	switch {
	case n < 16:
		return append(dst, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xde), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(dst, 0xdf), uint32(n))
	}
}

func appendStr(dst []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		dst = append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
	}
	return append(dst, s...)
}

func appendBin(dst, b []byte) []byte {
	n := len(b)
	switch {
	case n <= math.MaxUint8:
		dst = append(dst, 0xc4, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xc5), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xc6), uint32(n))
	}
	return append(dst, b...)
}

func appendInt(dst []byte, n int64) []byte {
	switch {
	case n >= 0:
		return appendUint(dst, uint64(n))
	case n >= -32:
		return append(dst, byte(n))
	case n >= math.MinInt8:
		return append(dst, 0xd0, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(n))
	}
}

func appendUint(dst []byte, n uint64) []byte {
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n <= math.MaxUint8:
		return append(dst, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 0xcf), n)
	}
}

func appendFloat64(dst []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, 0xcb), math.Float64bits(f))
}
