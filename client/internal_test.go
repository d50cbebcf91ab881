package client

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNegotiateURL(t *testing.T) {
	tests := []struct{ hub, want string }{
		{"http://h/hub", "http://h/hub/negotiate?negotiateVersion=1"},
		{"https://h/hub/", "https://h/hub/negotiate?negotiateVersion=1"},
		{"wss://h", "https://h/negotiate?negotiateVersion=1"},
		{"http://h/hub?b=2&a=1", "http://h/hub/negotiate?b=2&a=1&negotiateVersion=1"},
		{"http://h/hub?NegotiateVersion=1", "http://h/hub/negotiate?NegotiateVersion=1"},
		{"http://h/a%2Fb", "http://h/a%2Fb/negotiate?negotiateVersion=1"},
		{"http://h/hub#frag", "http://h/hub/negotiate?negotiateVersion=1"},
	}
	for _, tc := range tests {
		u, err := parseHubURL(tc.hub)
		require.NoError(t, err, tc.hub)
		assert.Equal(t, tc.want, negotiateURL(u).String(), tc.hub)
	}
}

func TestTruthy(t *testing.T) {
	for _, v := range []string{"", "null", "false", "0", `""`, " null "} {
		assert.False(t, truthy([]byte(v)), v)
	}
	for _, v := range []string{"1", "true", `"x"`, "{}", "[]"} {
		assert.True(t, truthy([]byte(v)), v)
	}
}

func TestGoroutineID(t *testing.T) {
	id := goroutineID()
	assert.NotZero(t, id)
	assert.Equal(t, id, goroutineID())
	other := make(chan uint64)
	go func() { other <- goroutineID() }()
	o := <-other
	assert.NotZero(t, o)
	assert.NotEqual(t, id, o)
}

// FuzzHandleData feeds arbitrary server messages to a session: the
// client must fail cleanly, never panic.
func FuzzHandleData(f *testing.F) {
	for _, s := range []string{
		"{}\x1e",
		`{"type":1,"target":"x","arguments":[1,"a",{"b":null}]}` + "\x1e",
		`{"type":1,"invocationId":"s1","target":"x","arguments":[]}` + "\x1e" + `{"type":6}` + "\x1e",
		`{"type":3,"invocationId":"0","result":42}` + "\x1e",
		`{"type":3,"invocationId":"0","error":"e"}` + "\x1e",
		`{"type":2,"invocationId":"0","item":1}` + "\x1e",
		`{"type":2,"invocationId":"1","item":[1]}` + "\x1e" + `{"type":3,"invocationId":"1"}` + "\x1e",
		`{"type":2,"invocationId":"1","item":null}` + "\x1e" + `{"type":3,"invocationId":"1","error":"e"}` + "\x1e",
		`{"type":7,"error":"bye","allowReconnect":true}` + "\x1e",
		`{"type":"1"}` + "\x1e",
		`{"type":1,"target":"x"`,
		"\x1e\x1e",
		"[]\x1e",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Room for every record, so that the reader never waits.
		c, err := New("http://127.0.0.1/hub", &Options{QueueLength: len(data) + 1, StreamBufferCapacity: len(data) + 1})
		require.NoError(t, err)
		defer c.Close()
		s := newSession(c, nil, "")
		done, err := s.register("0", "x")
		require.NoError(t, err)
		st, err := s.openStream("1", "y")
		require.NoError(t, err)
		err = s.handleData(data)
		if err != nil {
			var ce *CloseError
			assert.True(t, errors.Is(err, ErrProtocol) || errors.As(err, &ce), "unexpected error %v", err)
		}
		s.end(errors.New("done"))
		<-done
		<-st.ended
	})
}
