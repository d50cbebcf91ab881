package payload

import (
	"encoding/json"
	"testing"
)

func TestAppendScan(t *testing.T) {
	cases := []Message{{0, 0, 0}, {1, 42, 1767225600123456789}, {1 << 40, 1<<62 - 1, 1<<63 - 1}}
	for _, want := range cases {
		b := Append(nil, want.Run, want.Seq, want.Time)
		if len(b) != Size {
			t.Fatalf("len = %d, want %d", len(b), Size)
		}
		if !json.Valid(b) {
			t.Fatalf("not JSON: %s", b)
		}
		// Wrapped the way the systems wrap it, twice in one frame.
		frame := []byte(`{"type":1,"target":"m","arguments":[` + string(b) + "]}\x1e{\"push\":{\"pub\":{\"data\":" + string(b) + "}}}\n{}")
		var got []Message
		Scan(frame, func(m Message) { got = append(got, m) })
		if len(got) != 2 || got[0] != want || got[1] != want {
			t.Fatalf("Scan = %+v, want twice %+v", got, want)
		}
	}
}

func TestScanIgnoresGarbage(t *testing.T) {
	n := 0
	Scan([]byte(`{"r":}{"r":1,"s":x{"r":1,"s":2,"t":`), func(Message) { n++ })
	if n != 0 {
		t.Fatalf("found %d messages in garbage", n)
	}
}
