package backplane

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
)

// Kind says what a Message asks its receivers to do.
type Kind uint8

// The kinds of Message. The zero Kind is invalid, so that a Message whose
// Kind was forgotten does not encode. Values above ClientInvocation are
// reserved for later kinds; they decode without error so that nodes of
// different versions can share a cluster, and receivers ignore the kinds
// they do not know (see Kind.Known).
const (
	// Invocation delivers Payload, an encoded hub record, to the local
	// connections of the audience that the channel and Names describe,
	// except those in Except.
	Invocation Kind = iota + 1
	// AddToGroup asks the node holding connection Names[0] to add it to
	// group Names[1] and to Reply with ID.
	AddToGroup
	// RemoveFromGroup asks the node holding connection Names[0] to remove
	// it from group Names[1] and to Reply with ID.
	RemoveFromGroup
	// Reply answers the request with the same ID; Payload holds the error
	// text, empty on success.
	Reply
	// Heartbeat announces that node Origin is alive; nodes that stop
	// sending it are forgotten, with what they counted.
	Heartbeat
	// Query asks every node for its share of a cluster-wide figure, or to
	// act on its own connections (disconnect a user, say): Names[0] says
	// what, the rest of Names with what (see the hub). Each node answers
	// with a Reply whose Payload holds its share, so the asker knows when
	// every node has answered.
	Query
	// ClientInvocation asks the node holding connection Names[0] to
	// invoke its client's method Names[1] with Payload, the encoded
	// arguments array, and to wait for the client's answer (a client
	// result) for at most Names[2] milliseconds ("" for as long as the
	// connection lives). It Replies with ID when the answer comes; the
	// hub defines the Reply's Payload.
	ClientInvocation
)

var kindNames = [...]string{
	Invocation:       "Invocation",
	AddToGroup:       "AddToGroup",
	RemoveFromGroup:  "RemoveFromGroup",
	Reply:            "Reply",
	Heartbeat:        "Heartbeat",
	Query:            "Query",
	ClientInvocation: "ClientInvocation",
}

// String returns the kind's name, or "Kind(N)" for a kind this version
// does not define.
func (k Kind) String() string {
	if k.Known() {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Known reports whether k is one of the kinds this version defines.
func (k Kind) Known() bool {
	return k >= Invocation && k <= ClientInvocation
}

// Message is what a hub publishes on the backplane. Which fields are
// meaningful depends on Kind; the rest are zero.
//
// Its binary form, written by AppendBinary and read by UnmarshalBinary, is
// a version byte (1), the Kind byte, then the fields in declaration order:
// strings and byte slices as a uvarint length followed by the bytes, lists
// as a uvarint count followed by their strings, ID and Index as uvarints.
// A later format gets a new version byte; decoders reject versions they do
// not know.
type Message struct {
	// Origin is the ID of the publishing node, which drops its own echo.
	Origin string
	// Kind says what the message asks for.
	Kind Kind
	// ID pairs a request with its Reply. Zero means no reply is wanted.
	ID uint64
	// Names lists the audience: the groups of a multi-group send, or the
	// connection and group of a group request (see Kind).
	Names []string
	// Index is the position in Names of the name this copy was published
	// for: a send to several groups is published once per group's channel,
	// and a node in several of them delivers only the copy of the first
	// group it holds. It is 0 when Names is empty.
	Index int
	// Except lists the connection IDs left out of the send.
	Except []string
	// Payload is the encoded hub record of an Invocation, or a Reply's
	// error text.
	Payload []byte
}

// version is the first byte of every encoded Message.
const version = 1

// MarshalBinary returns m's binary form (see AppendBinary).
func (m *Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(nil)
}

// AppendBinary appends m's binary form to dst and returns the extended
// slice, growing dst at most once. It returns dst unchanged and an error
// wrapping ErrMalformed if m has no valid form: a zero Kind, or an Index
// outside Names.
func (m *Message) AppendBinary(dst []byte) ([]byte, error) {
	if m.Kind == 0 {
		return dst, fmt.Errorf("backplane: encode message: zero Kind: %w", ErrMalformed)
	}
	if m.Index < 0 || (m.Index > 0 && m.Index >= len(m.Names)) {
		return dst, fmt.Errorf("backplane: encode message: Index %d with %d names: %w", m.Index, len(m.Names), ErrMalformed)
	}
	dst = slices.Grow(dst, m.size())
	dst = append(dst, version, byte(m.Kind))
	dst = appendBytes(dst, m.Origin)
	dst = binary.AppendUvarint(dst, m.ID)
	dst = appendList(dst, m.Names)
	dst = binary.AppendUvarint(dst, uint64(m.Index))
	dst = appendList(dst, m.Except)
	dst = appendBytes(dst, m.Payload)
	return dst, nil
}

// size is the length of m's binary form.
func (m *Message) size() int {
	return 2 + bytesSize(m.Origin) + uvarintSize(m.ID) + listSize(m.Names) +
		uvarintSize(uint64(m.Index)) + listSize(m.Except) + bytesSize(m.Payload)
}

func appendBytes[T string | []byte](dst []byte, s T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendList(dst []byte, list []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(list)))
	for _, s := range list {
		dst = appendBytes(dst, s)
	}
	return dst
}

func uvarintSize(x uint64) int { return 1 + (bits.Len64(x|1)-1)/7 }

func bytesSize[T string | []byte](s T) int { return uvarintSize(uint64(len(s))) + len(s) }

func listSize(list []string) int {
	n := uvarintSize(uint64(len(list)))
	for _, s := range list {
		n += bytesSize(s)
	}
	return n
}

// UnmarshalBinary sets m from data, the binary form of a Message. It
// returns an error wrapping ErrMalformed, and leaves m unchanged, for data
// that is truncated, has bytes left over, has a length or count larger
// than what remains, an Index outside Names, a zero Kind or a version
// other than 1. A Kind this version does not define is not an error.
//
// The decoded Message shares no memory with data, so the caller may reuse
// data at once. Its strings share one allocation and Payload another;
// empty lists and an empty Payload decode as nil.
func (m *Message) UnmarshalBinary(data []byte) error {
	l, err := scan(data)
	if err != nil {
		return err
	}
	// One copy for every string, sliced below. It ends where Payload's
	// length begins, so it holds no payload bytes.
	s := string(data[l.strings:l.payload])
	r := reader{data: data, off: l.strings}
	str := func() string {
		start, end := r.span()
		return s[start-l.strings : end-l.strings]
	}
	list := func(n int) []string {
		r.uvarint() // count
		if n == 0 {
			return nil
		}
		out := make([]string, n)
		for i := range out {
			out[i] = str()
		}
		return out
	}
	out := Message{Kind: l.kind, ID: l.id, Index: l.index}
	out.Origin = str()
	r.uvarint() // ID
	out.Names = list(l.names)
	r.uvarint() // Index
	out.Except = list(l.except)
	if start, end := r.span(); end > start {
		out.Payload = slices.Clone(data[start:end])
	}
	*m = out
	return nil
}

// layout is what scan learns about a valid encoding.
type layout struct {
	kind          Kind
	id            uint64
	index         int
	names, except int // list lengths
	strings       int // offset of Origin's length
	payload       int // offset of Payload's length
}

// scan checks every length, count and bound of data without allocating.
func scan(data []byte) (layout, error) {
	var l layout
	if len(data) < 2 {
		return l, malformed("%d bytes", len(data))
	}
	if data[0] != version {
		return l, malformed("version %d", data[0])
	}
	l.kind = Kind(data[1])
	if l.kind == 0 {
		return l, malformed("zero Kind")
	}
	r := reader{data: data, off: 2}
	l.strings = r.off
	r.span() // Origin
	l.id = r.uvarint()
	l.names = r.list()
	index := r.uvarint()
	l.except = r.list()
	l.payload = r.off
	r.span() // Payload
	if r.err != "" {
		return l, malformed("%s at offset %d", r.err, r.off)
	}
	if r.off != len(data) {
		return l, malformed("%d bytes after the payload", len(data)-r.off)
	}
	if index > 0 && index >= uint64(l.names) {
		return l, malformed("Index %d with %d names", index, l.names)
	}
	l.index = int(index)
	return l, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("backplane: decode message: "+format+": %w", append(args, ErrMalformed)...)
}

// reader reads the fields of an encoded Message. After the first problem
// it records err and reads nothing more.
type reader struct {
	data []byte
	off  int
	err  string
}

func (r *reader) uvarint() uint64 {
	if r.err != "" {
		return 0
	}
	x, n := binary.Uvarint(r.data[r.off:])
	switch {
	case n == 0:
		r.err = "truncated"
		return 0
	case n < 0:
		r.err = "varint overflows 64 bits"
		return 0
	}
	r.off += n
	return x
}

// span reads a length and skips that many bytes, returning their offsets.
func (r *reader) span() (start, end int) {
	n := r.uvarint()
	if r.err != "" {
		return r.off, r.off
	}
	if n > uint64(len(r.data)-r.off) {
		r.err = "length " + strconv.FormatUint(n, 10) + " exceeds the data"
		return r.off, r.off
	}
	start = r.off
	r.off += int(n)
	return start, r.off
}

// list reads a count of strings and skips them. Each string takes at least
// one byte, which bounds a valid count by what remains.
func (r *reader) list() int {
	n := r.uvarint()
	if r.err != "" {
		return 0
	}
	if n > uint64(len(r.data)-r.off) {
		r.err = "count " + strconv.FormatUint(n, 10) + " exceeds the data"
		return 0
	}
	for range n {
		r.span()
	}
	return int(n)
}
