package hubtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Stream calls the streaming hub method target and collects its items
// until the stream ends, waiting up to Timeout for the whole stream. It
// returns the items received and the stream's error: a
// *client.InvocationError when the hub method failed, before or during the
// stream, or context.DeadlineExceeded when the stream outlasted Timeout.
//
// Arguments may be streams to the hub (iter.Seq, iter.Seq2[T, error] or
// <-chan T), as for Invoke and Send: slices.Values(items) uploads a slice.
func (c *Client) Stream(target string, args ...any) ([]json.RawMessage, error) {
	ctx, cancel := waitCtx()
	defer cancel()
	var items []json.RawMessage
	for item, err := range c.Conn.Stream(ctx, target, args...) {
		if err != nil {
			return items, err
		}
		items = append(items, item)
	}
	return items, nil
}

// MustStream is Stream failing the test if the stream ends with an error.
func (c *Client) MustStream(target string, args ...any) []json.RawMessage {
	c.srv.tb.Helper()
	items, err := c.Stream(target, args...)
	if err != nil {
		c.srv.tb.Fatalf("hubtest: %s streaming %s: %v; items so far: %s", c.name(), target, err, formatItems(items))
	}
	return items
}

// OpenStream calls the streaming hub method target and returns the stream
// for the test to read item by item, then End or Cancel it. The stream is
// cancelled when the test ends, if it has not ended before.
//
// Items the test has not read yet wait in the client's buffer; once
// client.Options.StreamBufferCapacity of them wait, the client stops
// reading the connection (see client.Options.StreamStallTimeout), so read
// a stream before waiting for other messages of the same client.
func (c *Client) OpenStream(target string, args ...any) *Stream {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stream{
		c:      c,
		target: target,
		cancel: cancel,
		next:   make(chan streamEvent),
		done:   make(chan struct{}),
	}
	go s.read(ctx, args)
	c.srv.tb.Cleanup(s.Cancel)
	return s
}

// Stream is a stream from the hub, opened by OpenStream. Its methods are
// meant for the test's goroutine: they fail the test with tb.Fatalf.
type Stream struct {
	c      *Client
	target string
	cancel context.CancelFunc
	next   chan streamEvent // unbuffered: the reader hands over one event per wait
	done   chan struct{}    // closed when the reader goroutine has exited

	items []json.RawMessage // read so far, for failure messages
	end   *streamEvent      // the stream's end, once read
}

// streamEvent is an item, or the end of the stream with its error.
type streamEvent struct {
	item  json.RawMessage
	err   error
	ended bool
}

// read ranges over the stream and hands each item, then the end, to the
// test. It stops when Cancel ends ctx.
func (s *Stream) read(ctx context.Context, args []any) {
	defer close(s.done)
	for item, err := range s.c.Conn.Stream(ctx, s.target, args...) {
		ev := streamEvent{item: item, err: err, ended: err != nil}
		select {
		case s.next <- ev:
		case <-ctx.Done():
			return
		}
		if ev.ended {
			return
		}
	}
	select {
	case s.next <- streamEvent{ended: true}:
	case <-ctx.Done():
	}
}

// wait returns the next item or the end, waiting up to Timeout.
func (s *Stream) wait() streamEvent {
	s.c.srv.tb.Helper()
	if s.end != nil {
		return *s.end
	}
	t := time.NewTimer(Timeout)
	defer t.Stop()
	select {
	case ev := <-s.next:
		if ev.ended {
			s.end = &ev
		} else {
			s.items = append(s.items, ev.item)
		}
		return ev
	case <-s.done:
		s.end = &streamEvent{err: fmt.Errorf("hubtest: stream %s was cancelled", s.target), ended: true}
		return *s.end
	case <-t.C:
		s.c.srv.tb.Fatalf("hubtest: %s: stream %s sent neither an item nor its end within %v; items so far: %s",
			s.c.name(), s.target, Timeout, formatItems(s.items))
		return streamEvent{}
	}
}

// Next returns the next item, waiting up to Timeout, and fails the test
// if the stream ends instead.
func (s *Stream) Next() json.RawMessage {
	s.c.srv.tb.Helper()
	ev := s.wait()
	if ev.ended {
		s.c.srv.tb.Fatalf("hubtest: %s: stream %s ended (%s) where an item was expected; items so far: %s",
			s.c.name(), s.target, endText(ev.err), formatItems(s.items))
	}
	return ev.item
}

// Expect requires the next items to be items, in order, compared as JSON
// values.
func (s *Stream) Expect(items ...any) {
	s.c.srv.tb.Helper()
	want, err := jsonArgs(items)
	if err != nil {
		s.c.srv.tb.Fatalf("hubtest: %v", err)
	}
	for _, w := range want {
		got := s.Next()
		if !sameJSON([]json.RawMessage{got}, []json.RawMessage{w}) {
			s.c.srv.tb.Fatalf("hubtest: %s: stream %s: want item %s, got %s; items so far: %s",
				s.c.name(), s.target, w, got, formatItems(s.items))
		}
	}
}

// End waits up to Timeout for the stream to end and returns its error: nil
// when it completed, a *client.InvocationError when the hub method failed.
// It fails the test if an item comes instead.
func (s *Stream) End() error {
	s.c.srv.tb.Helper()
	ev := s.wait()
	if !ev.ended {
		s.c.srv.tb.Fatalf("hubtest: %s: stream %s sent %s where its end was expected; items so far: %s",
			s.c.name(), s.target, ev.item, formatItems(s.items))
	}
	return ev.err
}

// ExpectEnd requires the stream to complete without an error, with no
// further item.
func (s *Stream) ExpectEnd() {
	s.c.srv.tb.Helper()
	if err := s.End(); err != nil {
		s.c.srv.tb.Fatalf("hubtest: %s: stream %s ended with %v; items so far: %s",
			s.c.name(), s.target, err, formatItems(s.items))
	}
}

// Cancel stops reading the stream, like breaking out of a loop over
// client.Conn.Stream: the hub is sent a CancelInvocation, which ends the
// hub method's Context. It returns once the client has let go of the
// stream, and may be called again.
func (s *Stream) Cancel() {
	s.cancel()
	t := time.NewTimer(Timeout)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.c.srv.tb.Errorf("hubtest: %s: stream %s still runs %v after it was cancelled", s.c.name(), s.target, Timeout)
	}
}

func endText(err error) string {
	if err == nil {
		return "completed"
	}
	return err.Error()
}

func formatItems(items []json.RawMessage) string {
	if len(items) == 0 {
		return "none"
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = string(it)
	}
	return strings.Join(out, ", ")
}
