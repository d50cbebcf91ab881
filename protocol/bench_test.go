package protocol

import (
	"encoding/json"
	"strings"
	"testing"
)

// benchPayload is a 200-byte JSON object, the load generator's message
// (bench/internal/payload).
var benchPayload = `{"r":7,"s":42,"t":1767225600000000000,"p":"` + strings.Repeat("x", 145) + `"}`

// BenchmarkDecodeMessage decodes typical records: the load generator's
// user-to-user invocation (a user ID and a 200-byte JSON object), an
// invocation as the JavaScript client writes it (type last, with an id and
// scalar arguments), a completion with a result, and a ping.
func BenchmarkDecodeMessage(b *testing.B) {
	for _, bc := range []struct{ name, rec string }{
		{"send", `{"type":1,"target":"Send","arguments":["r12",` + benchPayload + `]}`},
		{"js-invocation", `{"arguments":["alice","hello there",3,true],"invocationId":"17","target":"SendMessage","type":1}`},
		{"completion", `{"type":3,"invocationId":"5","result":{"id":12,"name":"bob","tags":["a","b"]}}`},
		{"ping", `{"type":6}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rec := []byte(bc.rec)
			b.ReportAllocs()
			b.SetBytes(int64(len(rec)))
			for b.Loop() {
				if _, err := DecodeMessage(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendInvocationArgs encodes what the load generator's hub
// method sends to a user: a non-blocking Invocation whose argument is the
// 200-byte message it received, as a json.RawMessage (checked, then
// copied).
func BenchmarkAppendInvocationArgs(b *testing.B) {
	args := []any{json.RawMessage(benchPayload)}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendInvocationArgs(buf[:0], "", "m", args); err != nil {
			b.Fatal(err)
		}
	}
}
