package signalhub_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
	"github.com/signalhub/signalhub/protocol"
)

// TestBadInput sends one bad input per case, each to a hub of its own on
// which a bystander connection is already open, and checks the server's
// exact answer and that the bystander is unaffected.
//
// To add a case: give it a name, the options it needs on top of
// badInputOptions (a limit, a short timeout, more methods), an act that
// sends the input and reports the answer (usually one of the helpers
// request, connectToken, handshake, exchange or records), and the answer
// it must get, built with httpAnswer, negotiateError, completions,
// closeMessage, protocolClose, handshakeRefused, dropped, noAnswer or
// accepted.
func TestBadInput(t *testing.T) {
	t.Parallel()
	cases := append(badInputCases(), badInputCancelCases()...)
	runBadInputCases(t, append(cases, badInputLimitCases()...))
}

// What the server did with a bad input: the Kind of a badOutcome.
const (
	outHTTP        = "HTTP answer"              // HTTPStatus, Text = body
	outCompletions = "Completions"              // Completions, before the probe's; the connection stays open
	outNoAnswer    = "no answer"                // nothing before the probe's Completion; the connection stays open
	outClose       = "Close message"            // Text, AllowReconnect, then a close frame with CloseStatus
	outHandshake   = "handshake error"          // Text, then a close frame with CloseStatus
	outAccepted    = "handshake accepted"       // "{}", and the connection works
	outDropped     = "closed without a message" // CloseStatus; -1 means no close frame
)

// badOutcome is what the server answered to a bad input. Only the fields
// its Kind names are set, so that a table row states the whole answer.
type badOutcome struct {
	Kind           string
	HTTPStatus     int
	Text           string // HTTP body (trimmed), or the error of a Close message or handshake response
	AllowReconnect bool
	CloseStatus    websocket.StatusCode
	Completions    []completionOut
}

// completionOut is one Completion the server sent.
type completionOut struct {
	ID     string
	Result string // JSON, as sent; "" for an error Completion
	Error  string
}

func httpAnswer(status int, body string) badOutcome {
	return badOutcome{Kind: outHTTP, HTTPStatus: status, Text: body}
}

// negotiateError is the negotiate answer the official clients read an
// error from: 200 with {"error": text}.
func negotiateError(text string) badOutcome {
	b, _ := json.Marshal(protocol.NegotiateError{Error: text})
	return httpAnswer(http.StatusOK, string(b))
}

// completions are the Completions sent before the probe's, in order.
func completions(cs ...completionOut) badOutcome {
	return badOutcome{Kind: outCompletions, Completions: cs}
}

func failed(id, errText string) completionOut      { return completionOut{ID: id, Error: errText} }
func returned(id, resultJSON string) completionOut { return completionOut{ID: id, Result: resultJSON} }

func closeMessage(text string, allowReconnect bool, status websocket.StatusCode) badOutcome {
	return badOutcome{Kind: outClose, Text: text, AllowReconnect: allowReconnect, CloseStatus: status}
}

// protocolClose is the Close message for a record the hub cannot decode.
func protocolClose(reason string) badOutcome {
	return closeMessage("Connection closed with an error. protocol: invalid message: "+reason, true, websocket.StatusPolicyViolation)
}

// handshakeRefused is a handshake error response followed by a normal
// close.
func handshakeRefused(text string) badOutcome {
	return badOutcome{Kind: outHandshake, Text: text, CloseStatus: websocket.StatusNormalClosure}
}

// dropped is a connection that ended without a message: with a close frame
// of that status, or -1 for none.
func dropped(status websocket.StatusCode) badOutcome {
	return badOutcome{Kind: outDropped, CloseStatus: status}
}

// handshakeError is a handshake error response followed by the close
// status (-1: the socket is dropped without a close frame).
func handshakeError(text string, status websocket.StatusCode) badOutcome {
	return badOutcome{Kind: outHandshake, Text: text, CloseStatus: status}
}

var (
	noAnswer = badOutcome{Kind: outNoAnswer}
	accepted = badOutcome{Kind: outAccepted}
)

// badInputAct sends a bad input on f, where the bystander by is open,
// and reports the answer.
type badInputAct func(t *testing.T, f *fixture, by *client) badOutcome

// badInputCase is one row of TestBadInput.
type badInputCase struct {
	name string
	// options adjusts badInputOptions for this case; nil keeps them.
	options func(o *signalhub.Options)
	act     badInputAct
	want    badOutcome
}

// badInputOptions are the hub options every case starts from.
func badInputOptions() *signalhub.Options {
	return &signalhub.Options{Methods: testMethods()}
}

// runBadInputCases runs each case in parallel on a hub of its own.
func runBadInputCases(t *testing.T, cases []badInputCase) {
	seen := make(map[string]bool)
	for _, tc := range cases {
		require.False(t, seen[tc.name], "duplicate case %q", tc.name)
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := badInputOptions()
			if tc.options != nil {
				tc.options(opts)
			}
			f := newFixture(t, opts)
			by := f.Dial(t, dialOptions{})
			got := tc.act(t, f, by)
			assert.Equal(t, tc.want, got, "the server's answer")
			checkBystander(t, f, by, "after "+tc.name)
		})
	}
}

// checkBystander requires the connection that was open before the bad
// input to be untouched: its invocations work, a broadcast reaches it with
// nothing else before it, and it was never disconnected.
func checkBystander(t *testing.T, f *fixture, by *client, tag string) {
	t.Helper()
	by.ExpectResult(t, `"still here"`, "Echo", "still here")
	require.NoError(t, f.Hub.SendToAll(waitCtx(t), "Marker", tag))
	by.ExpectMarker(t, tag)
	by.mu.Lock()
	closed, readErr := by.closed, by.readErr
	by.mu.Unlock()
	assert.False(t, closed, "the bystander's connection closed: %v", readErr)
	attempts, connected, disconnected := f.Hooks(by.ID)
	assert.Equal(t, [3]int{1, 1, 0}, [3]int{attempts, connected, disconnected},
		"the bystander's OnConnected calls, successful ones, and OnDisconnected calls")
}

// bystanderToken in a request's query stands for the bystander's
// connection token.
const bystanderToken = "$bystander"

// request sends an HTTP request to the hub URL plus suffix and reports the
// answer.
func request(method, suffix, rawQuery string, header http.Header) badInputAct {
	return func(t *testing.T, f *fixture, by *client) badOutcome {
		t.Helper()
		q := strings.ReplaceAll(rawQuery, bystanderToken, by.Token)
		status, body, err := f.do(waitCtx(t), method, suffix, q, header)
		require.NoError(t, err)
		return httpAnswer(status, strings.TrimSpace(string(body)))
	}
}

// connectToken opens a WebSocket with token ("" for none). A refused
// upgrade is reported as its HTTP answer; an accepted one shakes hands
// (see shakeHands).
func connectToken(t *testing.T, f *fixture, token string) badOutcome {
	t.Helper()
	ws, resp, err := f.DialWS(waitCtx(t), token, nil, nil)
	if err != nil {
		require.NotNil(t, resp, "no HTTP response: %v", err)
		body, rerr := io.ReadAll(resp.Body)
		require.NoError(t, rerr)
		return httpAnswer(resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return shakeHands(t, newClient(t, ws, true), handshakeV1)
}

// handshake opens a negotiated WebSocket, sends frames, the handshake
// attempt, each as a text message, and reports the answer. An empty last
// frame is not sent.
func handshake(frames ...string) badInputAct {
	return func(t *testing.T, f *fixture, by *client) badOutcome {
		t.Helper()
		c := f.Open(t)
		for _, fr := range frames[:len(frames)-1] {
			require.NoError(t, c.SendRaw(waitCtx(t), []byte(fr)))
		}
		return shakeHands(t, c, frames[len(frames)-1])
	}
}

// shakeHands sends frame (nothing when empty) and reads the handshake
// response. After "{}" the probe must work.
func shakeHands(t *testing.T, c *client, frame string) badOutcome {
	t.Helper()
	ctx := waitCtx(t)
	if frame != "" {
		require.NoError(t, c.SendRaw(ctx, []byte(frame)))
	}
	rec, err := c.NextRecord(ctx)
	if err != nil {
		readErr, werr := c.WaitClosed(ctx)
		require.NoError(t, werr, "%v", err)
		return dropped(websocket.CloseStatus(readErr))
	}
	if string(rec) == "{}" {
		require.NoError(t, c.SendRaw(ctx, []byte(probeRecord)))
		require.Equal(t, noAnswer, observe(t, c), "the probe after the handshake")
		return accepted
	}
	var resp struct {
		Error *string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(rec, &resp), "handshake response %q", rec)
	require.NotNil(t, resp.Error, "handshake response %q", rec)
	out := handshakeRefused(*resp.Error)
	out.CloseStatus = websocket.CloseStatus(c.ExpectClosed(t))
	return out
}

// The probe is the invocation sent after every bad record: its Completion
// shows that the connection still works, and that whatever the server
// sent about the bad input came before it (invocations run one at a time,
// in order, with the default MaxParallelInvocations).
const (
	probeID     = "probe"
	probeRecord = `{"type":1,"invocationId":"` + probeID + `","target":"Echo","arguments":["probe"]}` + rs
)

// exchange opens a connection, sends frames as text messages, the probe
// appended to the last one, and reports the answer.
func exchange(frames ...string) badInputAct {
	return func(t *testing.T, f *fixture, by *client) badOutcome {
		t.Helper()
		c := f.Dial(t, dialOptions{})
		ctx := waitCtx(t)
		for i, fr := range frames {
			if i == len(frames)-1 {
				fr += probeRecord
			}
			require.NoError(t, c.SendRaw(ctx, []byte(fr)))
		}
		return observe(t, c)
	}
}

// records is exchange with records, each without its separator, in one
// message.
func records(recs ...string) badInputAct {
	return exchange(strings.Join(recs, rs) + rs)
}

// invocation is a blocking Invocation record, ID "1", of target with the
// arguments given as JSON. target goes into the JSON as it is.
func invocation(target, argsJSON string) string {
	return `{"type":1,"invocationId":"1","target":"` + target + `","arguments":` + argsJSON + `}`
}

// observe collects the Completions that arrive before the probe's, or up
// to a Close message, or until the connection ends without one.
func observe(t *testing.T, c *client) badOutcome {
	t.Helper()
	ctx := waitCtx(t)
	var out badOutcome
	for {
		r, err := c.take(ctx, "the server's answer", func(r received) bool { return !isPing(r) }, isPing)
		if err != nil {
			readErr, werr := c.WaitClosed(ctx)
			require.NoError(t, werr, "%v", err)
			out.Kind, out.CloseStatus = outDropped, websocket.CloseStatus(readErr)
			return out
		}
		require.NoError(t, r.err, "undecodable record %s", r)
		switch m := r.msg; m.Type {
		case protocol.TypeCompletion:
			if m.InvocationID == probeID {
				assert.Equal(t, `"probe"`, string(m.Result), "the probe's result")
				out.Kind = outNoAnswer
				if out.Completions != nil {
					out.Kind = outCompletions
				}
				return out
			}
			out.Completions = append(out.Completions, completionOut{ID: m.InvocationID, Result: string(m.Result), Error: m.Error})
		case protocol.TypeClose:
			out.Kind, out.Text, out.AllowReconnect = outClose, m.Error, m.AllowReconnect
			out.CloseStatus = websocket.CloseStatus(c.ExpectClosed(t))
			return out
		default:
			require.FailNow(t, "unexpected record", "%s", r)
		}
	}
}

// binaryFrame opens a connection and sends data in a binary message.
func binaryFrame(data string) badInputAct {
	return func(t *testing.T, f *fixture, by *client) badOutcome {
		t.Helper()
		c := f.Dial(t, dialOptions{})
		require.NoError(t, c.ws.Write(waitCtx(t), websocket.MessageBinary, []byte(data)))
		return observe(t, c)
	}
}

// limitMessage is the Close message for a record over the default
// MaxMessageSize.
const limitMessage = "Connection closed with an error. The maximum message size of 32768B was exceeded."

const (
	// negotiateTimeout and handshakeTimeout are the short timeouts of the
	// cases that wait for them; long enough for the bystander, dialled
	// first, to finish its own negotiate and handshake under -race.
	negotiateTimeout = time.Second
	handshakeTimeout = 500 * time.Millisecond
)

func badInputCases() []badInputCase {
	longID := strings.Repeat("i", 30000)
	return []badInputCase{
		// Negotiate and the other HTTP requests.
		{
			name: "negotiate: negotiateVersion not an integer",
			act:  request(http.MethodPost, "/negotiate", "negotiateVersion=abc", nil),
			want: negotiateError("The client requested a non-integer protocol version."),
		},
		{
			name: "negotiate: negative negotiateVersion",
			act:  request(http.MethodPost, "/negotiate", "negotiateVersion=-1", nil),
			want: negotiateError("The client requested version '-1', but the server does not support this version."),
		},
		{
			name: "negotiate: negotiateVersion beyond int64",
			act:  request(http.MethodPost, "/negotiate", "negotiateVersion=99999999999999999999", nil),
			want: negotiateError("The client requested a non-integer protocol version."),
		},
		{
			name: "negotiate with GET",
			act:  request(http.MethodGet, "/negotiate", "negotiateVersion=1", nil),
			want: httpAnswer(http.StatusMethodNotAllowed, "Method not allowed."),
		},
		{
			name: "POST with the bystander's token (SSE or long polling send)",
			act:  request(http.MethodPost, "", "id="+bystanderToken, nil),
			want: httpAnswer(http.StatusMethodNotAllowed, "POST requests are not allowed for WebSocket connections."),
		},
		{
			name: "DELETE with the bystander's token",
			act:  request(http.MethodDelete, "", "id="+bystanderToken, nil),
			want: httpAnswer(http.StatusBadRequest, "Cannot terminate this connection using the DELETE endpoint."),
		},
		{
			name: "GET with the bystander's token, no upgrade (long polling)",
			act:  request(http.MethodGet, "", "id="+bystanderToken, nil),
			want: httpAnswer(http.StatusBadRequest, "Cannot change transports mid-connection"),
		},
		{
			name: "GET with the bystander's token, Accept text/event-stream (SSE)",
			act:  request(http.MethodGet, "", "id="+bystanderToken, http.Header{"Accept": {"text/event-stream"}}),
			want: httpAnswer(http.StatusBadRequest, "Cannot change transports mid-connection"),
		},
		{
			name: "GET with an unknown id, no upgrade, Accept text/event-stream (SSE)",
			act:  request(http.MethodGet, "", "id=abc", http.Header{"Accept": {"text/event-stream"}}),
			want: httpAnswer(http.StatusNotFound, "No Connection with that ID"),
		},
		{
			name: "GET with an unknown id, no upgrade (long polling)",
			act:  request(http.MethodGet, "", "id=abc", nil),
			want: httpAnswer(http.StatusNotFound, "No Connection with that ID"),
		},
		{
			name: "POST with an unknown id",
			act:  request(http.MethodPost, "", "id=abc", nil),
			want: httpAnswer(http.StatusNotFound, "No Connection with that ID"),
		},
		{
			name: "POST without an id",
			act:  request(http.MethodPost, "", "", nil),
			want: httpAnswer(http.StatusBadRequest, "Connection ID required"),
		},
		{
			name: "DELETE with an unknown id",
			act:  request(http.MethodDelete, "", "id=abc", nil),
			want: httpAnswer(http.StatusNotFound, "No Connection with that ID"),
		},
		{
			name: "SSE or long polling with a WebSocket-only hub",
			options: func(o *signalhub.Options) {
				o.Transports = signalhub.TransportWebSockets
			},
			act:  request(http.MethodGet, "", "id=abc", http.Header{"Accept": {"text/event-stream"}}),
			want: httpAnswer(http.StatusNotFound, "ServerSentEvents transport not supported by this end point type"),
		},
		{
			name: "GET without id, no upgrade",
			act:  request(http.MethodGet, "", "", nil),
			want: httpAnswer(http.StatusBadRequest, "Connection ID required"),
		},

		// The WebSocket connect.
		{
			name: "connect with an unknown token",
			act: func(t *testing.T, f *fixture, by *client) badOutcome {
				return connectToken(t, f, "no-such-token")
			},
			want: httpAnswer(http.StatusNotFound, "No Connection with that ID"),
		},
		{
			name: "connect with the public connection ID instead of the token",
			act: func(t *testing.T, f *fixture, by *client) badOutcome {
				neg, err := f.negotiate(waitCtx(t), dialOptions{})
				require.NoError(t, err)
				return connectToken(t, f, neg.ConnectionID)
			},
			want: httpAnswer(http.StatusNotFound, "No Connection with that ID"),
		},
		{
			name: "connect with the bystander's token, already attached",
			act: func(t *testing.T, f *fixture, by *client) badOutcome {
				return connectToken(t, f, by.Token)
			},
			want: httpAnswer(http.StatusConflict, ""),
		},
		{
			name: "connect with the token of an ended connection",
			act: func(t *testing.T, f *fixture, by *client) badOutcome {
				c := f.Dial(t, dialOptions{})
				c.Close()
				require.NoError(t, f.WaitDisconnected(t, c.ID))
				return connectToken(t, f, c.Token)
			},
			want: httpAnswer(http.StatusNotFound, "No Connection with that ID"),
		},
		{
			name:    "connect with an expired token",
			options: func(o *signalhub.Options) { o.NegotiateTimeout = negotiateTimeout },
			act: func(t *testing.T, f *fixture, by *client) badOutcome {
				neg, err := f.negotiate(waitCtx(t), dialOptions{})
				require.NoError(t, err)
				// Expiry has no event to wait for: connect compares the
				// clock with the deadline negotiate set, which is at most
				// negotiateTimeout after the answer arrived here. So a
				// timer to just past that bound is exact, not a guess.
				<-time.After(negotiateTimeout + time.Millisecond)
				return connectToken(t, f, neg.ConnectionToken)
			},
			want: httpAnswer(http.StatusNotFound, "No Connection with that ID"),
		},
		{
			// No option makes negotiate mandatory: a WebSocket without id
			// is a skipNegotiation client and gets a connection.
			name: "connect without id",
			act: func(t *testing.T, f *fixture, by *client) badOutcome {
				return connectToken(t, f, "")
			},
			want: accepted,
		},

		// The handshake.
		{
			name: "handshake: protocol messagepack, version 3",
			act:  handshake(`{"protocol":"messagepack","version":3}` + rs),
			want: handshakeRefused("The server does not support version 3 of the 'messagepack' protocol."),
		},
		{
			name: "handshake: protocol xml",
			act:  handshake(`{"protocol":"xml","version":1}` + rs),
			want: handshakeRefused("The protocol 'xml' is not supported."),
		},
		{
			name: "handshake: version 2, as stateful reconnect clients send",
			act:  handshake(`{"protocol":"json","version":2}` + rs),
			want: accepted,
		},
		{
			name: "handshake: version 3",
			act:  handshake(`{"protocol":"json","version":3}` + rs),
			want: handshakeRefused("The server does not support version 3 of the 'json' protocol."),
		},
		{
			name: "handshake: version -1",
			act:  handshake(`{"protocol":"json","version":-1}` + rs),
			want: handshakeRefused("The server does not support version -1 of the 'json' protocol."),
		},
		{
			name: "handshake: version a string",
			act:  handshake(`{"protocol":"json","version":"1"}` + rs),
			want: handshakeRefused("An unexpected error occurred during connection handshake. protocol: invalid message: handshake: json: cannot unmarshal string into Go struct field .version of type int"),
		},
		{
			name: "handshake: malformed JSON",
			act:  handshake(`{"protocol":"json",` + rs),
			want: handshakeRefused("An unexpected error occurred during connection handshake. protocol: invalid message: handshake: unexpected end of JSON input"),
		},
		{
			name: "handshake: an invocation instead",
			act:  handshake(invocation("Echo", `["x"]`) + rs),
			want: handshakeRefused("An unexpected error occurred during connection handshake. protocol: invalid message: handshake: missing 'protocol'"),
		},
		{
			name:    "handshake: none within HandshakeTimeout",
			options: func(o *signalhub.Options) { o.HandshakeTimeout = handshakeTimeout },
			act:     handshake(""),
			want:    handshakeError("Handshake was canceled.", -1),
		},
		{
			name:    "handshake: no separator within HandshakeTimeout",
			options: func(o *signalhub.Options) { o.HandshakeTimeout = handshakeTimeout },
			act:     handshake(`{"protocol":"json","version":1}`),
			want:    handshakeError("Handshake was canceled.", -1),
		},
		{
			name: "handshake: split across frames",
			act:  handshake(`{"protocol":"js`, `on","version":1}`, rs),
			want: accepted,
		},
		{
			name: "handshake: larger than MaxMessageSize, no separator",
			act:  handshake(`{"protocol":"json","version":1,"pad":"` + strings.Repeat("a", 33<<10)),
			want: handshakeError("An unexpected error occurred during connection handshake. The maximum message size of 32768B was exceeded.", websocket.StatusMessageTooBig),
		},
		{
			name: "handshake: in a binary frame",
			act: func(t *testing.T, f *fixture, by *client) badOutcome {
				c := f.Open(t)
				require.NoError(t, c.ws.Write(waitCtx(t), websocket.MessageBinary, []byte(handshakeV1)))
				return shakeHands(t, c, "")
			},
			want: handshakeError("An unexpected error occurred during connection handshake. Binary messages are not supported by the 'json' protocol.", websocket.StatusUnsupportedData),
		},

		// Framing.
		{
			name: "record split across frames, inside a UTF-8 sequence",
			act:  exchange(`{"type":1,"invocationId":"1","target":"Echo","arguments":["h`+"\xc3", "\xa9llo\"]}", rs),
			want: completions(returned("1", `"héllo"`)),
		},
		{
			// The server buffers a partial record until its separator
			// arrives.
			name: "record without separator, completed by a later frame",
			act:  exchange(invocation("Add", "[1,2]"), rs),
			want: completions(returned("1", `3`)),
		},
		{
			name: "record without separator, growing past MaxMessageSize",
			act: exchange(
				`{"type":1,"invocationId":"1","target":"Echo","arguments":["`+strings.Repeat("a", 20<<10),
				strings.Repeat("a", 20<<10)),
			want: closeMessage(limitMessage, true, websocket.StatusMessageTooBig),
		},
		{
			name: "several records in one frame",
			act: records(
				`{"type":6}`,
				`{"type":1,"invocationId":"1","target":"Add","arguments":[1,2]}`,
				`{"type":1,"target":"Echo","arguments":["non-blocking"]}`,
				`{"type":1,"invocationId":"2","target":"Add","arguments":[3,4]}`),
			want: completions(returned("1", `3`), returned("2", `7`)),
		},
		{
			name: "empty frame",
			act:  exchange("", ""),
			want: noAnswer,
		},
		{
			name: "record larger than MaxMessageSize",
			act:  records(invocation("Echo", `["`+strings.Repeat("a", 32<<10)+`"]`)),
			want: closeMessage(limitMessage, true, websocket.StatusMessageTooBig),
		},
		{
			name: "binary frame",
			act:  binaryFrame(invocation("Echo", `["x"]`) + rs),
			want: closeMessage("Connection closed with an error. Binary messages are not supported by the 'json' protocol.", true, websocket.StatusUnsupportedData),
		},

		// Records that are not hub messages.
		{
			name: "malformed JSON",
			act:  records(`{"type":1,"target":`),
			want: protocolClose("unexpected end of JSON input"),
		},
		{
			name: "empty record",
			act:  records(""),
			want: protocolClose("unexpected end of JSON input"),
		},
		{
			name: "not an object",
			act:  records(`[1,2,3]`),
			want: protocolClose("json: cannot unmarshal array into Go value of type protocol.wireMessage"),
		},
		{
			name: "raw control character in a string",
			act:  records(invocation("Echo", "[\"a\x01b\"]")),
			want: protocolClose("invalid character '\\x01' in string literal"),
		},
		{
			// 0x1E ends the record wherever it is.
			name: "raw record separator in a string",
			act:  records(invocation("Echo", `["a`+rs+`b"]`)),
			want: protocolClose("unexpected end of JSON input"),
		},

		// Message types.
		{
			name: "type 99",
			act:  records(`{"type":99,"whatever":[1]}`),
			want: noAnswer,
		},
		{
			name: "type 0",
			act:  records(`{"type":0}`),
			want: noAnswer,
		},
		{
			name: "type -1",
			act:  records(`{"type":-1}`),
			want: noAnswer,
		},
		{
			name: "type a string",
			act:  records(`{"type":"1","invocationId":"1","target":"Echo","arguments":["x"]}`),
			want: protocolClose("json: cannot unmarshal string into Go struct field wireMessage.type of type int"),
		},
		{
			name: "type not an integer",
			act:  records(`{"type":1.5}`),
			want: protocolClose("json: cannot unmarshal number 1.5 into Go struct field wireMessage.type of type int"),
		},
		{
			name: "type missing",
			act:  records(`{"invocationId":"1","target":"Echo","arguments":["x"]}`),
			want: protocolClose("missing 'type'"),
		},
		{
			name: "Ping",
			act:  records(`{"type":6}`),
			want: noAnswer,
		},
		{
			// The server closes normally, without a Close message, and
			// reads nothing after it (the probe gets no answer).
			name: "Close from the client",
			act:  records(`{"type":7}`),
			want: dropped(websocket.StatusNormalClosure),
		},
		{
			name: "Completion for an invocation the server never made",
			act:  records(`{"type":3,"invocationId":"never","result":1}`),
			want: noAnswer,
		},
		{
			name: "StreamItem for an unknown id",
			act:  records(`{"type":2,"invocationId":"unknown","item":1}`),
			want: noAnswer,
		},
		{
			name: "StreamInvocation",
			act:  records(`{"type":4,"invocationId":"1","target":"Echo","arguments":["x"]}`),
			want: completions(failed("1", "The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation.")),
		},
		{
			name: "Ack and Sequence without stateful reconnect",
			act:  records(`{"type":8,"sequenceId":1}`, `{"type":9,"sequenceId":1}`),
			want: noAnswer,
		},
		{
			name: "Ack without sequenceId",
			act:  records(`{"type":8}`),
			want: protocolClose("missing 'sequenceId' on Ack"),
		},

		// Invocation fields.
		{
			name: "invocation without target",
			act:  records(`{"type":1,"invocationId":"1","arguments":["x"]}`),
			want: protocolClose("missing 'target' on Invocation"),
		},
		{
			name: "target a number",
			act:  records(`{"type":1,"invocationId":"1","target":7,"arguments":["x"]}`),
			want: protocolClose("json: cannot unmarshal number into Go struct field wireMessage.target of type string"),
		},
		{
			name: "arguments not an array",
			act:  records(`{"type":1,"invocationId":"1","target":"Echo","arguments":"x"}`),
			want: protocolClose("json: cannot unmarshal string into Go struct field wireMessage.arguments of type []json.RawMessage"),
		},
		{
			name: "arguments null",
			act:  records(`{"type":1,"invocationId":"1","target":"Echo","arguments":null}`),
			want: protocolClose("missing 'arguments' on Invocation"),
		},
		{
			name: "invocationId a number",
			act:  records(`{"type":1,"invocationId":1,"target":"Echo","arguments":["x"]}`),
			want: protocolClose("json: cannot unmarshal number into Go struct field wireMessage.invocationId of type string"),
		},
		{
			// Taken as absent: a non-blocking invocation, never answered.
			name: "invocationId null",
			act:  records(`{"type":1,"invocationId":null,"target":"Echo","arguments":["x"]}`),
			want: noAnswer,
		},
		{
			name: "headers not strings",
			act:  records(`{"type":1,"invocationId":"1","target":"Echo","arguments":["x"],"headers":{"a":1}}`),
			want: protocolClose("json: cannot unmarshal number into Go struct field wireMessage.headers of type string"),
		},
		{
			name: "very long invocation ID",
			act:  records(`{"type":1,"invocationId":"` + longID + `","target":"Echo","arguments":["x"]}`),
			want: completions(returned(longID, `"x"`)),
		},

		// Methods and arguments.
		{
			name: "unknown method",
			act:  records(invocation("NoSuchMethod", `[]`)),
			want: completions(failed("1", "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.")),
		},
		{
			name: "too few arguments",
			act:  records(invocation("Add", `[1]`)),
			want: completions(failed("1", "Failed to invoke 'Add' due to an error on the server.")),
		},
		{
			name:    "too many arguments, DetailedErrors",
			options: func(o *signalhub.Options) { o.DetailedErrors = true },
			act:     records(invocation("Add", `[1,2,3]`)),
			want:    completions(failed("1", "Failed to invoke 'Add' due to an error on the server. InvalidDataException: Invocation provides 3 argument(s) but target expects 2.")),
		},
		{
			name: "15000 arguments",
			act:  records(invocation("Add", "["+strings.Repeat("0,", 14999)+"0]")),
			want: completions(failed("1", "Failed to invoke 'Add' due to an error on the server.")),
		},
		{
			name: "wrong argument type",
			act:  records(invocation("Add", `["one",2]`)),
			want: completions(failed("1", "Failed to invoke 'Add' due to an error on the server.")),
		},
		{
			// encoding/json leaves an int alone for null, so null binds
			// as 0.
			name: "null for an int argument",
			act:  records(invocation("Add", `[null,2]`)),
			want: completions(returned("1", `2`)),
		},
		{
			name: "nesting at the JSON decoder's depth limit (10000)",
			act:  records(invocation("Sum", "["+strings.Repeat("[", 9998)+strings.Repeat("]", 9998)+"]")),
			want: completions(failed("1", "Failed to invoke 'Sum' due to an error on the server.")),
		},
		{
			name: "nesting one beyond the JSON decoder's depth limit",
			act:  records(invocation("Sum", "["+strings.Repeat("[", 9999)+strings.Repeat("]", 9999)+"]")),
			want: protocolClose("invalid character '[' exceeded max depth"),
		},
		{
			name:    "100000 nested arrays, MaxMessageSize raised to fit",
			options: func(o *signalhub.Options) { o.MaxMessageSize = 256 << 10 },
			act:     records(invocation("Sum", "["+strings.Repeat("[", 100000)+strings.Repeat("]", 100000)+"]")),
			want:    protocolClose("invalid character '[' exceeded max depth"),
		},
		{
			name: "100000 unclosed '['",
			act:  records(invocation("Sum", "["+strings.Repeat("[", 100000))),
			want: closeMessage(limitMessage, true, websocket.StatusMessageTooBig),
		},
		{
			// encoding/json replaces each invalid byte with U+FFFD.
			name: "invalid UTF-8 in a string argument",
			act:  records(invocation("Echo", "[\"a\xffb\"]")),
			want: completions(returned("1", "\"a\uFFFDb\"")),
		},
		{
			name: "invalid UTF-8 in the target",
			act:  records(invocation("Echo\xff", `["x"]`)),
			want: completions(failed("1", "Failed to invoke 'Echo\uFFFD' due to an error on the server. HubException: Method does not exist.")),
		},
		{
			name: "NUL in the target",
			act:  records(invocation(`Echo\u0000`, `["x"]`)),
			want: completions(failed("1", "Failed to invoke 'Echo\x00' due to an error on the server. HubException: Method does not exist.")),
		},
		{
			// The Completion escapes them: the record separator in
			// particular must not split it.
			name: "control characters in the target",
			act:  records(invocation(`\u001e\u0007\n`, `["x"]`)),
			want: completions(failed("1", "Failed to invoke '\x1e\x07\n' due to an error on the server. HubException: Method does not exist.")),
		},
	}
}

// joinMethod adds the Join hub method, which puts the caller in a group,
// and X-User authentication, and shows errors in detail.
func joinMethod(o *signalhub.Options) {
	o.DetailedErrors = true
	o.Methods["Join"] = func(c *signalhub.Context, group string) error {
		return c.Hub().AddToGroup(c.Context(), c.ConnectionID(), group)
	}
	o.Authenticate = func(r *http.Request) (signalhub.Claims, error) {
		if u := r.Header.Get("X-User"); u != "" {
			return signalhub.Claims{"sub": u}, nil
		}
		if u := r.URL.Query().Get("user"); u != "" { // for what a header cannot carry
			return signalhub.Claims{"sub": u}, nil
		}
		return nil, nil
	}
}

func asUser(u string) http.Header { return http.Header{"X-User": {u}} }

// badInputLimitCases are names and rates beyond the hub's limits.
func badInputLimitCases() []badInputCase {
	joinFailed := func(detail string) badOutcome {
		return completions(failed("1", "An unexpected error occurred invoking 'Join' on the server. "+detail))
	}
	return []badInputCase{
		{
			name:    "group name longer than MaxGroupNameLength",
			options: joinMethod,
			act:     records(invocation("Join", `["`+strings.Repeat("g", 257)+`"]`)),
			want:    joinFailed("signalhub: add to group: group name of 257 bytes is longer than 256: signalhub: invalid name"),
		},
		{
			name:    "group name with a control character",
			options: joinMethod,
			act:     records(invocation("Join", `["bell\u0007"]`)),
			want:    joinFailed("signalhub: add to group: group name contains the character U+0007: signalhub: invalid name"),
		},
		{
			name:    "group name with an escape sequence",
			options: joinMethod,
			act:     records(invocation("Join", `["\u001b[2J"]`)),
			want:    joinFailed("signalhub: add to group: group name contains the character U+001B: signalhub: invalid name"),
		},
		{
			name:    "empty group name",
			options: joinMethod,
			act:     records(invocation("Join", `[""]`)),
			want:    joinFailed("signalhub: add to group: group name: signalhub: empty name"),
		},
		{
			name: "one group more than MaxGroupsPerConnection",
			options: func(o *signalhub.Options) {
				joinMethod(o)
				o.MaxGroupsPerConnection = 1
			},
			act: records(
				`{"type":1,"invocationId":"0","target":"Join","arguments":["first"]}`,
				invocation("Join", `["second"]`)),
			want: completions(returned("0", "null"),
				failed("1", `An unexpected error occurred invoking 'Join' on the server. signalhub: join group "second": the connection is in 1 groups already: signalhub: connection is in too many groups`)),
		},
		{
			name:    "user ID longer than MaxUserIDLength",
			options: joinMethod,
			act:     request(http.MethodPost, "/negotiate", "negotiateVersion=1", asUser(strings.Repeat("u", 257))),
			want:    httpAnswer(http.StatusForbidden, "The user ID is too long, is not valid UTF-8 or contains control characters."),
		},
		{
			name:    "user ID with a control character",
			options: joinMethod,
			act:     request(http.MethodPost, "/negotiate", "negotiateVersion=1&user=eve%00", nil),
			want:    httpAnswer(http.StatusForbidden, "The user ID is too long, is not valid UTF-8 or contains control characters."),
		},
		{
			name: "one connection more than MaxConnectionsPerUser",
			options: func(o *signalhub.Options) {
				joinMethod(o)
				o.MaxConnectionsPerUser = 1
			},
			act: func(t *testing.T, f *fixture, by *client) badOutcome {
				f.Dial(t, dialOptions{Header: asUser("alice")})
				return request(http.MethodPost, "/negotiate", "negotiateVersion=1", asUser("alice"))(t, f, by)
			},
			want: httpAnswer(http.StatusTooManyRequests, "The user already has 1 connections, the most allowed."),
		},
		{
			name:    "one connection more than MaxConnections",
			options: func(o *signalhub.Options) { o.MaxConnections = 1 }, // the bystander's
			act:     request(http.MethodPost, "/negotiate", "negotiateVersion=1", nil),
			want:    httpAnswer(http.StatusServiceUnavailable, "The server has reached its connection limit; try again later."),
		},
		{
			name:    "invocations beyond InvocationRate",
			options: func(o *signalhub.Options) { o.InvocationRate, o.InvocationBurst = 0.001, 2 },
			// The probe would be refused too: read the three Completions.
			act: func(t *testing.T, f *fixture, by *client) badOutcome {
				c := f.Dial(t, dialOptions{})
				ctx := waitCtx(t)
				out := badOutcome{Kind: outCompletions}
				for _, id := range []string{"1", "2", "3"} {
					require.NoError(t, c.SendRecords(ctx, `{"type":1,"invocationId":"`+id+`","target":"Add","arguments":[1,2]}`))
					res, errMsg, err := c.Completion(ctx, id)
					require.NoError(t, err)
					out.Completions = append(out.Completions, completionOut{ID: id, Result: string(res), Error: errMsg})
				}
				return out
			},
			want: completions(returned("1", "3"), returned("2", "3"),
				failed("3", "Failed to invoke 'Add': the rate limit of 0.001 invocations per second was exceeded.")),
		},
	}
}

// badInputCancelCases are CancelInvocation messages, which must never
// produce a Completion of their own: no stream runs that they could cancel.
func badInputCancelCases() []badInputCase {
	// Block waits until Release runs; two may run at once, so that Release
	// can run while Block waits.
	release := make(chan struct{})
	blocking := func(o *signalhub.Options) {
		o.MaxParallelInvocations = 2
		o.Methods["Block"] = func(c *signalhub.Context) (string, error) {
			select {
			case <-release:
				return "done", nil
			case <-c.Context().Done():
				return "", c.Context().Err()
			}
		}
		o.Methods["Release"] = func(c *signalhub.Context) { close(release) }
	}
	return []badInputCase{
		{
			// The protocol: "Unknown ID → ignore" (ASP.NET Core only logs).
			name: "CancelInvocation for an unknown id",
			act:  records(`{"type":5,"invocationId":"unknown"}`),
			want: noAnswer,
		},
		{
			// An invocation gets exactly one Completion: a CancelInvocation
			// for a (non-streaming) invocation does not answer for it.
			name:    "CancelInvocation for a running invocation",
			options: blocking,
			act: func(t *testing.T, f *fixture, by *client) badOutcome {
				c := f.Dial(t, dialOptions{})
				ctx := waitCtx(t)
				require.NoError(t, c.SendRecords(ctx,
					invocation("Block", `[]`),
					`{"type":5,"invocationId":"1"}`,
					`{"type":1,"target":"Release","arguments":[]}`))
				// Every Completion of invocation 1 up to the one with its
				// result.
				var got []completionOut
				for len(got) < 10 {
					res, errMsg, err := c.Completion(ctx, "1")
					require.NoError(t, err)
					got = append(got, completionOut{ID: "1", Result: string(res), Error: errMsg})
					if errMsg == "" {
						break
					}
				}
				require.NoError(t, c.SendRaw(ctx, []byte(probeRecord)))
				require.Equal(t, noAnswer, observe(t, c), "after the Completions of invocation 1")
				return completions(got...)
			},
			want: completions(returned("1", `"done"`)),
		},
	}
}
