// Package protocol implements SignalR's two hub protocols, JSON and
// MessagePack: record framing, the handshake (JSON for both), hub messages
// and the negotiate response.
//
// A JSON record is a JSON object followed by RecordSeparator (DecodeMessage,
// AppendMessage, NextRecord). A MessagePack record is a length prefix
// followed by a MessagePack array (DecodeMsgPackMessage,
// AppendMsgPackMessage, NextMsgPackRecord). Both decode into Message, whose
// argument, item and result values stay encoded in the protocol of the
// record they came from, so that the receiver decodes them straight into
// the types it wants (json.Unmarshal or UnmarshalMsgPack).
//
// It has no I/O, goroutines or logging: callers feed it bytes and get values
// back, and encode values into byte slices they own. Encoders follow the
// append convention (AppendX(dst, ...) []byte) so a caller can reuse buffers
// and encode a fan-out message exactly once per protocol.
package protocol

import (
	"encoding/json"
	"errors"
	"strconv"
)

// RecordSeparator ends every JSON record, the handshake included.
const RecordSeparator byte = 0x1E

// ProtocolJSON is the handshake name of the JSON hub protocol.
const ProtocolJSON = "json"

// MaxHandshakeVersion is the highest hub protocol version the handshake
// accepts. Clients send 2 when stateful reconnect was negotiated and 1
// otherwise.
const MaxHandshakeVersion = 2

// MessageType is the numeric "type" field of a hub message.
type MessageType int

// The hub message types. Only Invocation through CancelInvocation carry
// application data.
const (
	TypeInvocation       MessageType = 1
	TypeStreamItem       MessageType = 2
	TypeCompletion       MessageType = 3
	TypeStreamInvocation MessageType = 4
	TypeCancelInvocation MessageType = 5
	TypePing             MessageType = 6
	TypeClose            MessageType = 7
	TypeAck              MessageType = 8
	TypeSequence         MessageType = 9
)

var typeNames = [...]string{
	TypeInvocation:       "Invocation",
	TypeStreamItem:       "StreamItem",
	TypeCompletion:       "Completion",
	TypeStreamInvocation: "StreamInvocation",
	TypeCancelInvocation: "CancelInvocation",
	TypePing:             "Ping",
	TypeClose:            "Close",
	TypeAck:              "Ack",
	TypeSequence:         "Sequence",
}

// String returns the message type's name, or "MessageType(N)" for a type
// the protocol does not define.
func (t MessageType) String() string {
	if t.Known() {
		return typeNames[t]
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// Known reports whether t is one of the types the protocol defines.
// Receivers ignore messages of unknown types, as the official clients and
// servers do.
func (t MessageType) Known() bool {
	return t >= TypeInvocation && t <= TypeSequence
}

// ErrInvalidMessage is wrapped by every decoding error caused by the peer's
// bytes (as opposed to an unknown type, which is not an error).
var ErrInvalidMessage = errors.New("protocol: invalid message")

// Message is one hub message of any type, of either protocol. Which fields
// are meaningful depends on Type; the rest are zero. Arguments, Item and
// Result hold values in the encoding of the message's protocol: JSON text
// for a message of the JSON protocol, MessagePack bytes for one of the
// MessagePack protocol (the json.RawMessage type only says that they are
// raw, encoded values).
//
// A decoded Message shares no memory with the record it came from, so the
// caller may reuse the record's buffer at once.
type Message struct {
	// Type says which of the other fields are meaningful.
	Type MessageType
	// InvocationID is empty for a non-blocking Invocation, which gets no
	// Completion. On StreamItem and Completion from a client it may name an
	// upload stream.
	InvocationID string
	// Target is the method an Invocation or StreamInvocation calls.
	Target string
	// Arguments are the encoded arguments of an Invocation or
	// StreamInvocation, one per element of the arguments array, each in the
	// message's protocol's encoding.
	Arguments []json.RawMessage
	// StreamIDs name the upload streams of an Invocation or
	// StreamInvocation.
	StreamIDs []string
	// Headers are the optional string headers of types 1 to 5.
	Headers map[string]string
	// Item is the encoded StreamItem payload, in the message's protocol's
	// encoding, null included.
	Item json.RawMessage
	// Result is nil when the Completion carries no result; otherwise the
	// encoded result in the message's protocol's encoding: a null result
	// is the four bytes "null" in JSON and the byte 0xc0 in MessagePack.
	Result json.RawMessage
	// Error is set on an error Completion or a Close with an error.
	Error string
	// AllowReconnect is set on a Close after which clients with automatic
	// reconnect should come back.
	AllowReconnect bool
	// SequenceID is the message number of an Ack or Sequence.
	SequenceID int64
}

// wireMessage mirrors the JSON object with pointers so that absent fields
// can be told from zero values. Field order in the record is arbitrary: the
// JavaScript client writes "type" last.
type wireMessage struct {
	Type           *int              `json:"type"`
	InvocationID   *string           `json:"invocationId"`
	Target         *string           `json:"target"`
	Arguments      []json.RawMessage `json:"arguments"`
	StreamIDs      []string          `json:"streamIds"`
	Headers        map[string]string `json:"headers"`
	Item           json.RawMessage   `json:"item"`
	Result         json.RawMessage   `json:"result"`
	Error          *string           `json:"error"`
	AllowReconnect bool              `json:"allowReconnect"`
	SequenceID     *int64            `json:"sequenceId"`
}

// invalidError keeps errors.Is(err, ErrInvalidMessage) true while carrying
// the specific reason.
type invalidError struct{ reason string }

func (e *invalidError) Error() string { return "protocol: invalid message: " + e.reason }
func (e *invalidError) Is(target error) bool {
	return target == ErrInvalidMessage
}

func errInvalid(reason string) error { return &invalidError{reason: reason} }

// DecodeMessage decodes one JSON record (without its separator) into a
// Message whose Arguments, Item and Result hold JSON text. An unknown
// numeric type is not an error: the returned Message has that Type and no
// other fields, and the caller should ignore it. Errors wrap
// ErrInvalidMessage.
func DecodeMessage(record []byte) (Message, error) {
	var f fields
	if !f.scan(record) {
		f = fields{}
		if err := f.unmarshal(record); err != nil {
			return Message{}, err
		}
	}
	return f.message()
}

// fields are a record's fields as encoding/json reads them into a
// wireMessage, without pointers: has tells which of type, invocationId,
// target, error and sequenceId were present (and not null).
type fields struct {
	has            int // hasType | hasInvocationID | ..., see scan.go
	typ            int
	invocationID   string
	target         string
	arguments      []json.RawMessage
	streamIDs      []string
	headers        map[string]string
	item, result   json.RawMessage
	errMsg         string
	allowReconnect bool
	sequenceID     int64
}

// unmarshal reads record's fields into f, which is empty, with
// encoding/json, for the records that scan leaves to it.
func (f *fields) unmarshal(record []byte) error {
	var w wireMessage
	if err := json.Unmarshal(record, &w); err != nil {
		return errInvalid(err.Error())
	}
	f.arguments, f.streamIDs, f.headers = w.Arguments, w.StreamIDs, w.Headers
	f.item, f.result, f.allowReconnect = w.Item, w.Result, w.AllowReconnect
	if w.Type != nil {
		f.has |= hasType
		f.typ = *w.Type
	}
	if w.InvocationID != nil {
		f.has |= hasInvocationID
		f.invocationID = *w.InvocationID
	}
	if w.Target != nil {
		f.has |= hasTarget
		f.target = *w.Target
	}
	if w.Error != nil {
		f.has |= hasError
		f.errMsg = *w.Error
	}
	if w.SequenceID != nil {
		f.has |= hasSequenceID
		f.sequenceID = *w.SequenceID
	}
	return nil
}

// message checks the fields against the message type and returns the
// Message.
func (f *fields) message() (Message, error) {
	if f.has&hasType == 0 {
		return Message{}, errInvalid("missing 'type'")
	}
	m := Message{Type: MessageType(f.typ)}
	if !m.Type.Known() {
		return m, nil
	}
	if m.Type <= TypeCancelInvocation {
		m.Headers = f.headers
		m.InvocationID = f.invocationID
	}
	needID := func() error {
		if f.has&hasInvocationID == 0 {
			return errInvalid("missing 'invocationId' on " + m.Type.String())
		}
		return nil
	}
	switch m.Type {
	case TypeInvocation, TypeStreamInvocation:
		if m.Type == TypeStreamInvocation {
			if err := needID(); err != nil {
				return Message{}, err
			}
		}
		if f.target == "" {
			return Message{}, errInvalid("missing 'target' on " + m.Type.String())
		}
		if f.arguments == nil {
			return Message{}, errInvalid("missing 'arguments' on " + m.Type.String())
		}
		m.Target = f.target
		m.Arguments = f.arguments
		m.StreamIDs = f.streamIDs
	case TypeStreamItem:
		if err := needID(); err != nil {
			return Message{}, err
		}
		if f.item == nil {
			return Message{}, errInvalid("missing 'item' on StreamItem")
		}
		m.Item = f.item
	case TypeCompletion:
		if err := needID(); err != nil {
			return Message{}, err
		}
		if f.has&hasError != 0 && f.result != nil {
			return Message{}, errInvalid("Completion has both 'result' and 'error'")
		}
		m.Error = f.errMsg
		m.Result = f.result
	case TypeCancelInvocation:
		if err := needID(); err != nil {
			return Message{}, err
		}
	case TypeClose:
		m.Error = f.errMsg
		m.AllowReconnect = f.allowReconnect
	case TypeAck, TypeSequence:
		if f.has&hasSequenceID == 0 {
			return Message{}, errInvalid("missing 'sequenceId' on " + m.Type.String())
		}
		m.SequenceID = f.sequenceID
	}
	return m, nil
}
