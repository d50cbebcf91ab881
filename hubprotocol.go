package signalhub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/protocol"
)

// hubProtocol is a hub protocol as a connection speaks it: how its records
// are framed, decoded and encoded, and how argument and result values are
// bound to Go values. The handshake picks one of jsonHub and msgpackHub,
// and the connection keeps it for its whole life; every place that reads
// or writes the connection's records goes through it.
type hubProtocol struct {
	name string
	// binary: the records travel in binary WebSocket messages; text
	// messages otherwise.
	binary bool
	// framing is how many bytes the framing of a record of the largest
	// allowed size may add to it while it is still incomplete.
	framing int
	// ping is the keep-alive Ping record, shared by every connection.
	ping []byte
	// wrongFrame closes a connection that sent a message of the other
	// WebSocket message type.
	wrongFrame closeRequest

	// next splits the first complete record off buf. A record longer
	// than maxSize is errRecordTooLarge; a framing error wraps
	// protocol.ErrInvalidMessage.
	next func(buf []byte, maxSize int) (record, rest []byte, ok bool, err error)
	// decode decodes a record; its values stay in this protocol's
	// encoding.
	decode func(record []byte) (protocol.Message, error)
	// bind decodes one value of this protocol's encoding into *v.
	bind func(raw []byte, v any) error
	// marshal encodes a hub method's result as one value.
	marshal func(v any) ([]byte, error)
	// toJSON is raw, one value, as JSON (Hub.InvokeConnection's answer).
	toJSON func(raw []byte) (json.RawMessage, error)

	appendInvocation      func(dst []byte, invocationID, target string, args []any) ([]byte, error)
	appendCompletion      func(dst []byte, invocationID string, result []byte) []byte
	appendCompletionError func(dst []byte, invocationID, errMsg string) []byte
	appendClose           func(dst []byte, errMsg string, allowReconnect bool) []byte
	// appendStreamItem and appendStreamCompletion stream a hub method's
	// results (streams.go); item is one value of this protocol's encoding.
	appendStreamItem       func(dst []byte, invocationID string, item []byte) []byte
	appendStreamCompletion func(dst []byte, invocationID string) []byte
	// appendAck and appendSequence are stateful reconnect's messages.
	appendAck      func(dst []byte, sequenceID int64) []byte
	appendSequence func(dst []byte, sequenceID int64) []byte
}

// errRecordTooLarge is what hubProtocol.next reports for a record over
// Options.MaxMessageSize.
var errRecordTooLarge = errors.New("record too large")

// jsonHub is the JSON hub protocol.
var jsonHub = &hubProtocol{
	name:       protocol.ProtocolJSON,
	ping:       protocol.AppendPing(nil),
	wrongFrame: closeBinary,
	next: func(buf []byte, maxSize int) ([]byte, []byte, bool, error) {
		rec, rest, ok := protocol.NextRecord(buf)
		if ok && len(rec) > maxSize {
			return nil, buf, false, errRecordTooLarge
		}
		return rec, rest, ok, nil
	},
	decode:  protocol.DecodeMessage,
	bind:    protocol.UnmarshalJSON,
	marshal: json.Marshal,
	toJSON:  func(raw []byte) (json.RawMessage, error) { return raw, nil },

	appendInvocation:      protocol.AppendInvocationArgs,
	appendCompletion:      protocol.AppendCompletion,
	appendCompletionError: protocol.AppendCompletionError,
	appendClose:           protocol.AppendClose,

	appendStreamItem:       protocol.AppendStreamItem,
	appendStreamCompletion: protocol.AppendStreamCompletion,
	appendAck:              protocol.AppendAck,
	appendSequence:         protocol.AppendSequence,
}

// msgpackHub is the MessagePack hub protocol.
var msgpackHub = &hubProtocol{
	name:       protocol.ProtocolMessagePack,
	binary:     true,
	framing:    5, // the longest length prefix
	ping:       protocol.AppendMsgPackPing(nil),
	wrongFrame: closeText,
	next: func(buf []byte, maxSize int) ([]byte, []byte, bool, error) {
		// The length comes first: an oversize record is refused before
		// it is buffered.
		if n, _, ok, _ := protocol.ReadMsgPackLength(buf); ok && n > maxSize {
			return nil, buf, false, errRecordTooLarge
		}
		return protocol.NextMsgPackRecord(buf)
	},
	decode: protocol.DecodeMsgPackMessage,
	bind: func(raw []byte, v any) error {
		// A json.RawMessage parameter or answer gets the value's JSON
		// form, as from a JSON client (and a json.RawMessage result is
		// encoded from its JSON, see protocol.AppendMsgPackValue).
		if j, ok := v.(*json.RawMessage); ok {
			var err error
			*j, err = protocol.AppendJSONFromMsgPack(nil, raw)
			return err
		}
		return protocol.UnmarshalMsgPack(raw, v)
	},
	marshal: func(v any) ([]byte, error) { return protocol.AppendMsgPackValue(nil, v) },
	toJSON: func(raw []byte) (json.RawMessage, error) {
		if raw == nil {
			return nil, nil
		}
		return protocol.AppendJSONFromMsgPack(nil, raw)
	},

	appendInvocation:      protocol.AppendMsgPackInvocationArgs,
	appendCompletion:      protocol.AppendMsgPackCompletion,
	appendCompletionError: protocol.AppendMsgPackCompletionError,
	appendClose:           protocol.AppendMsgPackClose,

	appendStreamItem:       protocol.AppendMsgPackStreamItem,
	appendStreamCompletion: protocol.AppendMsgPackCompletionVoid,
	appendAck:              protocol.AppendMsgPackAck,
	appendSequence:         protocol.AppendMsgPackSequence,
}

// closeText closes a MessagePack connection that sent a text message
// after its handshake.
var closeText = closeRequest{
	cause:          fmt.Errorf("%w: text message on the 'messagepack' protocol", ErrProtocol),
	errMsg:         "Connection closed with an error. Text messages are not supported by the 'messagepack' protocol.",
	allowReconnect: true, status: websocket.StatusUnsupportedData, reason: "text message",
}

// hubProtocolNamed returns the protocol a handshake asks for, or nil.
// Names match case-insensitively, as in ASP.NET Core.
func hubProtocolNamed(name string) *hubProtocol {
	switch {
	case strings.EqualFold(name, protocol.ProtocolJSON):
		return jsonHub
	case strings.EqualFold(name, protocol.ProtocolMessagePack):
		return msgpackHub
	}
	return nil
}

// frameType is the WebSocket message type of the protocol's records.
func (p *hubProtocol) frameType() websocket.MessageType {
	if p.binary {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// binaryWire is a wire that can send binary messages as well, which the
// MessagePack protocol needs; the handshake refuses MessagePack on a wire
// without it.
type binaryWire interface {
	wire
	// writeBinary is write with binary messages.
	writeBinary(ctx context.Context, records [][]byte) error
}

func (w wsWire) writeBinary(ctx context.Context, records [][]byte) error {
	return w.writeAs(ctx, websocket.MessageBinary, records)
}

// errNoBinary fails a write of binary records on a wire without them,
// which the handshake prevents.
var errNoBinary = errors.New("signalhub: the transport cannot send binary messages")

// writeRecords writes a batch of records in the messages of the
// connection's protocol. Only the writer goroutine calls it.
func (c *conn) writeRecords(ctx context.Context, records [][]byte) error {
	if !c.proto.binary {
		return c.wire.write(ctx, records)
	}
	if bw, ok := c.wire.(binaryWire); ok {
		return bw.writeBinary(ctx, records)
	}
	return errNoBinary
}

// records is one send's Invocation record in each protocol. msgpack is nil
// when the send was encoded for JSON connections only; wire is both
// records in one buffer, JSON first, which is how a backplane carries them
// to the other nodes (see splitRecords).
type records struct {
	json, msgpack []byte
	wire          []byte
}

// encodeRecords encodes an Invocation of target with args once per
// protocol in use: JSON always (its encoding errors are the send's), and
// MessagePack when this hub holds a MessagePack connection or belongs to a
// cluster, whose other nodes may hold some. One buffer holds both.
func (h *Hub) encodeRecords(target string, args []any) (records, error) {
	hint := protocol.SizeHint(target, args)
	if h.cl == nil && h.binaryConns.Load() == 0 {
		rec, err := protocol.AppendInvocationArgs(make([]byte, 0, hint), "", target, args)
		return records{json: rec, wire: rec}, err
	}
	buf, err := protocol.AppendInvocationArgs(make([]byte, 0, 2*hint), "", target, args)
	if err != nil {
		return records{}, err
	}
	j := len(buf)
	buf, err = protocol.AppendMsgPackInvocationArgs(buf, "", target, args)
	if err != nil {
		return records{}, fmt.Errorf("MessagePack: %w", err)
	}
	return records{json: buf[:j:j], msgpack: buf[j:len(buf):len(buf)], wire: buf}, nil
}

// splitRecords reads a backplane Invocation's payload: the JSON record,
// which ends at its first record separator (JSON escapes every other),
// then the MessagePack record if the sender included one.
func splitRecords(payload []byte) records {
	rec, rest, ok := protocol.NextRecord(payload)
	if !ok {
		return records{json: payload, wire: payload}
	}
	n := len(rec) + 1
	r := records{json: payload[:n:n], wire: payload}
	if len(rest) > 0 {
		r.msgpack = rest
	}
	return r
}

// deliver queues for c the record of c's protocol. A MessagePack
// connection gets nothing when there is no MessagePack record: from a send
// encoded as it registered as the hub's first one (the two raced), or
// from a backplane message of a node that published JSON alone.
func (r *records) deliver(c *conn) {
	rec := r.json
	if c.proto.binary {
		if rec = r.msgpack; rec == nil {
			return
		}
	}
	c.enqueue(rec)
}
