package protocol

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// EncodeArguments encodes args as a JSON array, the "arguments" field of an
// Invocation. A nil or empty args gives "[]". Values are encoded with
// encoding/json, so struct tags apply.
func EncodeArguments(args []any) ([]byte, error) {
	b, err := AppendArguments(nil, args)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendArguments is EncodeArguments appending to dst. On error the
// returned slice holds a partial encoding and must be discarded.
func AppendArguments(dst []byte, args []any) ([]byte, error) {
	dst = append(dst, '[')
	for i, a := range args {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		dst, err = appendValue(dst, a)
		if err != nil {
			return dst, fmt.Errorf("protocol: encode argument %d: %w", i, err)
		}
	}
	return append(dst, ']'), nil
}

// appendValue encodes the common scalar types without reflection and
// falls back to encoding/json for the rest.
func appendValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return AppendString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case json.RawMessage:
		if !validJSON(x) {
			return dst, fmt.Errorf("invalid json.RawMessage")
		}
		return append(dst, x...), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// AppendInvocation appends an Invocation record. args must be a JSON array
// (see EncodeArguments). An empty invocationID makes it non-blocking.
func AppendInvocation(dst []byte, invocationID, target string, args []byte) []byte {
	dst = appendInvocationHead(dst, TypeInvocation, invocationID, target)
	if len(args) == 0 {
		dst = append(dst, "[]"...)
	} else {
		dst = append(dst, args...)
	}
	return append(dst, '}', RecordSeparator)
}

// appendInvocationHead appends an Invocation or StreamInvocation (typ)
// record up to its arguments.
func appendInvocationHead(dst []byte, typ MessageType, invocationID, target string) []byte {
	dst = append(dst, `{"type":`...)
	dst = strconv.AppendInt(dst, int64(typ), 10)
	if invocationID != "" {
		dst = append(dst, `,"invocationId":`...)
		dst = AppendString(dst, invocationID)
	}
	dst = append(dst, `,"target":`...)
	dst = AppendString(dst, target)
	return append(dst, `,"arguments":`...)
}

// AppendInvocationArgs is AppendInvocation encoding args in place, so a
// record costs one buffer. On error dst is returned unchanged.
func AppendInvocationArgs(dst []byte, invocationID, target string, args []any) ([]byte, error) {
	return AppendInvocationStreams(dst, TypeInvocation, invocationID, target, args, nil)
}

// AppendInvocationStreams is AppendInvocationArgs for an Invocation or a
// StreamInvocation (typ) whose caller also sends the streams streamIDs
// (none: no "streamIds" member). On error dst is returned unchanged.
func AppendInvocationStreams(dst []byte, typ MessageType, invocationID, target string, args []any, streamIDs []string) ([]byte, error) {
	start := len(dst)
	dst, err := AppendArguments(appendInvocationHead(dst, typ, invocationID, target), args)
	if err != nil {
		return dst[:start], err
	}
	if len(streamIDs) > 0 {
		dst = append(dst, `,"streamIds":[`...)
		for i, id := range streamIDs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, id)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}', RecordSeparator), nil
}

// SizeHint estimates the encoded size of an Invocation of target with
// args, for sizing a buffer: enough for strings that need no escaping and
// for json.RawMessage values, a guess for other values. Appending past it
// only costs a reallocation.
func SizeHint(target string, args []any) int {
	n := 48 + len(target)
	for _, a := range args {
		switch a := a.(type) {
		case string:
			n += len(a) + 3
		case json.RawMessage:
			n += len(a) + 1
		default:
			n += 16
		}
	}
	return n
}

// AppendCompletion appends a successful Completion record. A nil result is
// written as "result":null, as ASP.NET Core does for void methods.
func AppendCompletion(dst []byte, invocationID string, result []byte) []byte {
	dst = append(dst, `{"type":3,"invocationId":`...)
	dst = AppendString(dst, invocationID)
	dst = append(dst, `,"result":`...)
	if len(result) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, result...)
	}
	return append(dst, '}', RecordSeparator)
}

// AppendStreamItem appends a StreamItem record carrying item, a JSON value.
func AppendStreamItem(dst []byte, invocationID string, item []byte) []byte {
	dst = append(dst, `{"type":2,"invocationId":`...)
	dst = AppendString(dst, invocationID)
	dst = append(dst, `,"item":`...)
	if len(item) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, item...)
	}
	return append(dst, '}', RecordSeparator)
}

// AppendStreamCompletion appends the Completion that ends a stream without
// an error: it carries no result.
func AppendStreamCompletion(dst []byte, invocationID string) []byte {
	dst = append(dst, `{"type":3,"invocationId":`...)
	dst = AppendString(dst, invocationID)
	return append(dst, '}', RecordSeparator)
}

// AppendCompletionError appends an error Completion record.
func AppendCompletionError(dst []byte, invocationID, errMsg string) []byte {
	dst = append(dst, `{"type":3,"invocationId":`...)
	dst = AppendString(dst, invocationID)
	dst = append(dst, `,"error":`...)
	dst = AppendString(dst, errMsg)
	return append(dst, '}', RecordSeparator)
}

// AppendAck appends an Ack record: the receiver has processed the
// numbered messages up to sequenceID (stateful reconnect).
func AppendAck(dst []byte, sequenceID int64) []byte {
	dst = append(dst, `{"type":8,"sequenceId":`...)
	dst = strconv.AppendInt(dst, sequenceID, 10)
	return append(dst, '}', RecordSeparator)
}

// AppendSequence appends a Sequence record: the first numbered message
// sent on a resumed connection has ID sequenceID (stateful reconnect).
func AppendSequence(dst []byte, sequenceID int64) []byte {
	dst = append(dst, `{"type":9,"sequenceId":`...)
	dst = strconv.AppendInt(dst, sequenceID, 10)
	return append(dst, '}', RecordSeparator)
}

// AppendPing appends a Ping record.
func AppendPing(dst []byte) []byte {
	return append(dst, `{"type":6}`+string(RecordSeparator)...)
}

// AppendClose appends a Close record. An empty errMsg means a normal close.
// allowReconnect tells clients with automatic reconnect to come back.
func AppendClose(dst []byte, errMsg string, allowReconnect bool) []byte {
	dst = append(dst, `{"type":7`...)
	if errMsg != "" {
		dst = append(dst, `,"error":`...)
		dst = AppendString(dst, errMsg)
	}
	if allowReconnect {
		dst = append(dst, `,"allowReconnect":true`...)
	}
	return append(dst, '}', RecordSeparator)
}

// AppendMessage appends any message as a JSON record. It is the general
// encoder; the type-specific AppendX functions are faster for the common
// cases. Arguments, Item and Result must hold valid JSON.
func AppendMessage(dst []byte, m *Message) []byte {
	dst = append(dst, `{"type":`...)
	dst = strconv.AppendInt(dst, int64(m.Type), 10)
	field := func(name string) {
		dst = append(dst, ',', '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
	}
	if len(m.Headers) > 0 {
		field("headers")
		dst = append(dst, '{')
		first := true
		for k, v := range m.Headers {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = AppendString(dst, k)
			dst = append(dst, ':')
			dst = AppendString(dst, v)
		}
		dst = append(dst, '}')
	}
	switch m.Type {
	case TypeInvocation, TypeStreamInvocation:
		if m.InvocationID != "" || m.Type == TypeStreamInvocation {
			field("invocationId")
			dst = AppendString(dst, m.InvocationID)
		}
		field("target")
		dst = AppendString(dst, m.Target)
		field("arguments")
		dst = append(dst, '[')
		for i, a := range m.Arguments {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, a...)
		}
		dst = append(dst, ']')
		if m.StreamIDs != nil {
			field("streamIds")
			dst = append(dst, '[')
			for i, s := range m.StreamIDs {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = AppendString(dst, s)
			}
			dst = append(dst, ']')
		}
	case TypeStreamItem:
		field("invocationId")
		dst = AppendString(dst, m.InvocationID)
		field("item")
		dst = appendRaw(dst, m.Item)
	case TypeCompletion:
		field("invocationId")
		dst = AppendString(dst, m.InvocationID)
		if m.Error != "" {
			field("error")
			dst = AppendString(dst, m.Error)
		} else if m.Result != nil {
			field("result")
			dst = append(dst, m.Result...)
		}
	case TypeCancelInvocation:
		field("invocationId")
		dst = AppendString(dst, m.InvocationID)
	case TypeClose:
		if m.Error != "" {
			field("error")
			dst = AppendString(dst, m.Error)
		}
		if m.AllowReconnect {
			field("allowReconnect")
			dst = append(dst, "true"...)
		}
	case TypeAck, TypeSequence:
		field("sequenceId")
		dst = strconv.AppendInt(dst, m.SequenceID, 10)
	}
	return append(dst, '}', RecordSeparator)
}

func appendRaw(dst, raw []byte) []byte {
	if len(raw) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// and U+2028 and U+2029 are escaped so the output is also valid JavaScript.
// HTML characters are left alone: records are not embedded in HTML.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
