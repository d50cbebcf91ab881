package signalhub_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/protocol"
)

// statefulDial connects user with stateful reconnect asked for, as the
// official clients do (useStatefulReconnect on negotiate, handshake
// version 2), and sends a Ping: the server sends nothing numbered before
// the client has spoken.
func statefulDial(t *testing.T, f *fixture, user string) *client {
	t.Helper()
	c := f.Dial(t, dialOptions{
		Query:     url.Values{"user": {user}, "useStatefulReconnect": {"true"}},
		Handshake: `{"protocol":"json","version":2}`,
	})
	require.NoError(t, c.SendRecords(waitCtx(t), `{"type":6}`))
	return c
}

// resumeWS opens a new WebSocket for the connection of token, as the
// official clients do after a drop: no negotiate and no handshake.
func resumeWS(t *testing.T, f *fixture, token, user string) *client {
	t.Helper()
	ws, resp, err := f.DialWS(waitCtx(t), token, url.Values{"user": {user}}, nil)
	require.NoError(t, err, "resume: %v", resp)
	return newClient(t, ws, true)
}

// statefulOpts is a hub with stateful reconnect, a Record method counting
// the calls it gets, and the user middleware.
func statefulFixture(t *testing.T, opts signalhub.Options, records *atomic.Int64) *fixture {
	opts.StatefulReconnect = true
	opts.Methods = map[string]any{
		"Record": func(c *signalhub.Context, n int) int { records.Add(1); return n },
		"Join": func(c *signalhub.Context, g string) error {
			return c.Hub().AddToGroup(c.Context(), c.ConnectionID(), g)
		},
	}
	return newFixture(t, &opts, userClaims)
}

func TestStatefulNegotiate(t *testing.T) {
	t.Parallel()
	ctx := waitCtx(t)
	on := newFixture(t, &signalhub.Options{StatefulReconnect: true})
	off := newFixture(t, nil)
	wsOff := newFixture(t, &signalhub.Options{StatefulReconnect: true, Transports: signalhub.TransportLongPolling})
	ask := dialOptions{Query: url.Values{"useStatefulReconnect": {"true"}}}
	res, err := on.negotiate(ctx, ask)
	require.NoError(t, err)
	require.NotNil(t, res.UseStatefulReconnect)
	assert.True(t, *res.UseStatefulReconnect)
	res, err = on.negotiate(ctx, dialOptions{})
	require.NoError(t, err)
	assert.Nil(t, res.UseStatefulReconnect, "only when the client asks")
	for _, f := range []*fixture{off, wsOff} {
		res, err = f.negotiate(ctx, ask)
		require.NoError(t, err)
		assert.Nil(t, res.UseStatefulReconnect, "only when the hub allows it on WebSockets")
	}
}

func TestStatefulResume(t *testing.T) {
	t.Parallel()
	var records atomic.Int64
	f := statefulFixture(t, signalhub.Options{}, &records)
	ctx := waitCtx(t)
	c := statefulDial(t, f, "ann")
	c.ExpectResult(t, "1", "Record", 1) // numbered 1 both ways
	c.ExpectResult(t, "null", "Join", "room")
	f.mark(t, c, "m1")

	// The socket drops without a close; the connection waits.
	c.Drop()
	for i := range 3 {
		require.NoError(t, f.Hub.SendToGroup(ctx, "room", "Msg", i))
	}
	assert.Equal(t, []string{c.ID}, f.Hub.GroupMembers("room"), "still in its group while detached")
	attempts, connected, disconnected := f.Hooks(c.ID)
	assert.Equal(t, [3]int{1, 1, 0}, [3]int{attempts, connected, disconnected})

	r := resumeWS(t, f, c.Token, "ann")
	// The client's side of the resume: its Sequence and the invocation it
	// sent again (already processed: dropped), then a new one.
	require.NoError(t, r.SendRecords(ctx,
		`{"type":9,"sequenceId":1}`,
		`{"type":1,"invocationId":"1","target":"Record","arguments":[1]}`,
		`{"type":1,"invocationId":"2","target":"Join","arguments":["room"]}`,
		`{"type":1,"invocationId":"3","target":"Record","arguments":[3]}`,
	))
	// The server's side: Sequence first, then everything unacknowledged,
	// in order, then what waited.
	seq := r.ExpectNext(t)
	require.Equal(t, protocol.TypeSequence, seq.Type)
	assert.Equal(t, int64(1), seq.SequenceID, "nothing was acknowledged: from the first")
	for _, want := range []string{"1", "null"} {
		m := r.ExpectNext(t)
		require.Equal(t, protocol.TypeCompletion, m.Type, "%+v", m)
		assert.Equal(t, want, string(m.Result))
	}
	r.ExpectMarker(t, "m1")
	for i := range 3 {
		r.ExpectInvocation(t, "Msg", i)
	}
	res, errMsg, err := r.Completion(ctx, "3")
	require.NoError(t, err)
	assert.Empty(t, errMsg)
	assert.Equal(t, "3", string(res))
	assert.Equal(t, int64(2), records.Load(), "the repeated invocation ran once")

	// The server acknowledges what it got; the client's Ack empties the
	// server's buffer: the next resume replays nothing old.
	ack := r.ExpectNext(t)
	require.Equal(t, protocol.TypeAck, ack.Type)
	assert.Equal(t, int64(3), ack.SequenceID, "Record, Join, Record: the repeated two counted once")
	require.NoError(t, r.SendRecords(ctx, `{"type":8,"sequenceId":7}`)) // 2 completions, marker, 3 Msgs, completion 3
	r.Drop()
	r2 := resumeWS(t, f, c.Token, "ann")
	require.NoError(t, r2.SendRecords(ctx, `{"type":9,"sequenceId":4}`))
	seq = r2.ExpectNext(t)
	require.Equal(t, protocol.TypeSequence, seq.Type)
	assert.Equal(t, int64(8), seq.SequenceID, "all acknowledged: the next ID")
	require.NoError(t, f.Hub.SendToGroup(ctx, "room", "Msg", "after"))
	r2.ExpectInvocation(t, "Msg", "after")

	r2.Close()
	assert.NoError(t, f.WaitDisconnected(t, c.ID), "a clean close ends it")
	attempts, connected, disconnected = f.Hooks(c.ID)
	assert.Equal(t, [3]int{1, 1, 1}, [3]int{attempts, connected, disconnected})
	assert.Equal(t, http.StatusNotFound, f.wsStatus(t, c.Token, url.Values{"user": {"ann"}}, nil))
}

func TestStatefulResumeTimeout(t *testing.T) {
	t.Parallel()
	var records atomic.Int64
	f := statefulFixture(t, signalhub.Options{DisconnectTimeout: 100 * time.Millisecond}, &records)
	c := statefulDial(t, f, "ann")
	c.ExpectResult(t, "1", "Record", 1)
	c.Drop()
	assert.Error(t, f.WaitDisconnected(t, c.ID), "the drop's error, once the client did not come back")
	assert.Equal(t, http.StatusNotFound, f.wsStatus(t, c.Token, url.Values{"user": {"ann"}}, nil))
}

// A client may come back before the server noticed the drop (its network
// changed): its new socket takes the connection over from the old one.
// Another user's request with the token is refused.
func TestStatefulResumeTakesOver(t *testing.T) {
	t.Parallel()
	var records atomic.Int64
	f := statefulFixture(t, signalhub.Options{}, &records)
	c := statefulDial(t, f, "ann")
	c.ExpectResult(t, "1", "Record", 1)
	assert.Equal(t, http.StatusForbidden, f.wsStatus(t, c.Token, url.Values{"user": {"mallory"}}, nil), "another user's resume")

	r := resumeWS(t, f, c.Token, "ann")
	_, err := c.WaitClosed(waitCtx(t))
	require.NoError(t, err, "the old socket is closed")
	require.NoError(t, r.SendRecords(waitCtx(t), `{"type":9,"sequenceId":2}`))
	seq := r.ExpectNext(t)
	require.Equal(t, protocol.TypeSequence, seq.Type)
	assert.Equal(t, int64(1), seq.SequenceID)
	m := r.ExpectNext(t)
	assert.Equal(t, "1", string(m.Result), "the unacknowledged Completion again")
	r.ExpectResult(t, "2", "Record", 2)
	assert.Equal(t, int64(2), records.Load())
}

func TestStatefulServerClosesWhileDetached(t *testing.T) {
	t.Parallel()
	var records atomic.Int64
	f := statefulFixture(t, signalhub.Options{}, &records)
	ann, bob := statefulDial(t, f, "ann"), statefulDial(t, f, "bob")
	f.mark(t, ann, "up")
	f.mark(t, bob, "up")
	ann.Drop()
	bob.Drop()
	// Not after DisconnectTimeout (15 s): at once.
	require.NoError(t, f.Hub.DisconnectUser(waitCtx(t), "ann", "bye"))
	assert.ErrorIs(t, f.WaitDisconnected(t, ann.ID), signalhub.ErrUserDisconnected)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, f.Hub.Shutdown(ctx), "Shutdown does not wait for a detached connection's timeout")
	assert.ErrorIs(t, f.WaitDisconnected(t, bob.ID), signalhub.ErrHubClosed)
}

func TestStatefulReplayBufferFull(t *testing.T) {
	t.Parallel()
	var records atomic.Int64
	f := statefulFixture(t, signalhub.Options{StatefulReconnectBufferSize: 300}, &records)
	c := statefulDial(t, f, "ann")
	ctx := waitCtx(t)
	payload := fmt.Sprintf("%0100d", 0)
	for i := range 6 {
		require.NoError(t, f.Hub.SendToConnection(ctx, c.ID, "Msg", i, payload))
	}
	// Three records of about 100 bytes fill the buffer: the rest waits
	// for the client's Ack.
	for i := range 3 {
		c.ExpectInvocation(t, "Msg", i, payload)
	}
	_, err := c.Next(timeoutCtx(t, 200*time.Millisecond))
	require.Error(t, err, "a negative check: nothing more before an Ack")
	require.NoError(t, c.SendRecords(ctx, `{"type":8,"sequenceId":3}`))
	for i := 3; i < 6; i++ {
		c.ExpectInvocation(t, "Msg", i, payload)
	}
}

func TestStatefulBadSequence(t *testing.T) {
	t.Parallel()
	var records atomic.Int64
	f := statefulFixture(t, signalhub.Options{}, &records)
	c := statefulDial(t, f, "ann")
	c.ExpectResult(t, "1", "Record", 1)
	require.NoError(t, c.SendRecords(waitCtx(t), `{"type":9,"sequenceId":5}`))
	m := c.ExpectNext(t)
	for m.Type == protocol.TypeAck {
		m = c.ExpectNext(t)
	}
	require.Equal(t, protocol.TypeClose, m.Type)
	assert.Equal(t, "Connection closed with an error. Sequence ID greater than amount of messages we've received.", m.Error)
	assert.ErrorIs(t, f.WaitDisconnected(t, c.ID), signalhub.ErrProtocol)
}
