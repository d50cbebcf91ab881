package protocol

import (
	"bytes"
	"encoding/json"
)

// HandshakeRequest is the first record a client sends.
type HandshakeRequest struct {
	// Protocol is the hub protocol's name, such as "json".
	Protocol string
	// Version is the hub protocol version the client speaks.
	Version int
}

// DecodeHandshakeRequest decodes the handshake record (without its
// separator). Errors wrap ErrInvalidMessage.
func DecodeHandshakeRequest(record []byte) (HandshakeRequest, error) {
	var w struct {
		Protocol *string `json:"protocol"`
		Version  *int    `json:"version"`
	}
	if err := json.Unmarshal(record, &w); err != nil {
		return HandshakeRequest{}, errInvalid("handshake: " + err.Error())
	}
	if w.Protocol == nil {
		return HandshakeRequest{}, errInvalid("handshake: missing 'protocol'")
	}
	if w.Version == nil {
		return HandshakeRequest{}, errInvalid("handshake: missing 'version'")
	}
	return HandshakeRequest{Protocol: *w.Protocol, Version: *w.Version}, nil
}

// AppendHandshakeResponse appends the handshake response: "{}" on success,
// or {"error": errMsg} when errMsg is not empty.
func AppendHandshakeResponse(dst []byte, errMsg string) []byte {
	if errMsg == "" {
		return append(dst, '{', '}', RecordSeparator)
	}
	dst = append(dst, `{"error":`...)
	dst = AppendString(dst, errMsg)
	return append(dst, '}', RecordSeparator)
}

// NextRecord splits the first complete record off buf. It returns the record
// without its separator and the bytes after it; ok is false when buf holds
// no separator yet (the caller keeps buf as a partial tail).
func NextRecord(buf []byte) (record, rest []byte, ok bool) {
	i := bytes.IndexByte(buf, RecordSeparator)
	if i < 0 {
		return nil, buf, false
	}
	return buf[:i], buf[i+1:], true
}
