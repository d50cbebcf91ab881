// Package payload builds and finds the 200-byte messages that every system
// under test carries. A message is one JSON object,
//
//	{"r":7,"s":42,"t":1767225600000000000,"p":"xxxx…"}
//
// with the run it belongs to (r), its sequence number within the run and
// stream (s), the wall-clock time it was handed to the system in Unix
// nanoseconds (t), and padding (p) up to exactly Size bytes. Being valid
// JSON, it travels unchanged inside a SignalR invocation's arguments and a
// Centrifuge publication's data, and as the whole text frame for melody and
// the raw WebSocket server, so one scanner finds it in every system's frames.
package payload

import (
	"bytes"
	"strconv"
)

// Size is the length of every message in bytes.
const Size = 200

// marker starts every message; the padding never contains it.
const marker = `{"r":`

// Append appends a message of exactly Size bytes to dst. It panics if the
// numbers are too long to fit, which int64 values cannot be.
func Append(dst []byte, run, seq, ts int64) []byte {
	start := len(dst)
	dst = append(dst, marker...)
	dst = strconv.AppendInt(dst, run, 10)
	dst = append(dst, `,"s":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"t":`...)
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, `,"p":"`...)
	pad := Size - (len(dst) - start) - 2 // the closing quote and brace
	if pad < 0 {
		panic("payload: header longer than Size")
	}
	for range pad {
		dst = append(dst, 'x')
	}
	return append(dst, '"', '}')
}

// Message is what Scan reads from a message.
type Message struct {
	// Run is the run the message belongs to, Seq its sequence number
	// within the run and stream, and Time when it was handed to the
	// system, in Unix nanoseconds.
	Run, Seq, Time int64
}

// Scan calls fn for every message in frame, in order. A frame may hold any
// number of messages among other bytes (a protocol's envelope, several
// records batched into one frame). Malformed messages are skipped.
func Scan(frame []byte, fn func(Message)) {
	for i := 0; i+len(marker) <= len(frame); {
		j := bytes.Index(frame[i:], []byte(marker))
		if j < 0 {
			return
		}
		i += j + len(marker)
		var m Message
		var ok bool
		if m.Run, i, ok = parseInt(frame, i); !ok {
			continue
		}
		if i, ok = skip(frame, i, `,"s":`); !ok {
			continue
		}
		if m.Seq, i, ok = parseInt(frame, i); !ok {
			continue
		}
		if i, ok = skip(frame, i, `,"t":`); !ok {
			continue
		}
		if m.Time, i, ok = parseInt(frame, i); !ok {
			continue
		}
		fn(m)
	}
}

func skip(b []byte, i int, s string) (int, bool) {
	if i+len(s) > len(b) || string(b[i:i+len(s)]) != s {
		return i, false
	}
	return i + len(s), true
}

// parseInt reads a non-negative decimal number at b[i:].
func parseInt(b []byte, i int) (int64, int, bool) {
	start := i
	var n int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' && i-start < 19 {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	return n, i, i > start
}
