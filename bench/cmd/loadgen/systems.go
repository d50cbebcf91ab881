package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/coder/websocket"
)

// A system is one server under test as the generator drives it: how its
// clients connect, how a client sends a one-to-one message, and what a
// client must do to stay connected.
type system struct {
	name string
	bin  string // the server program, in -bin
	// dial opens a connection for user, joining group when it is not
	// empty, and completes the system's handshake. It returns the rest of
	// the first frame if that frame carried more than the handshake.
	dial func(ctx context.Context, hc *http.Client, addr, user, group string) (ws *websocket.Conn, rest []byte, err error)
	// appendSend appends the frame that asks the server to send msg to
	// the user to.
	appendSend func(dst []byte, to string, msg []byte) []byte
	// keepAlive, when set, is written to every connection every
	// keepAliveEvery, because the server closes clients that stay silent.
	keepAlive []byte
	// reply, when set, sees every frame and returns what the client must
	// answer (nil for nothing), e.g. Centrifuge's pong to its pings.
	reply func(frame []byte) []byte
}

var systems = []*system{
	{
		name: "signalhub",
		bin:  "signalhub-server",
		dial: dialSignalR,
		appendSend: func(dst []byte, to string, msg []byte) []byte {
			dst = append(dst, `{"type":1,"target":"Send","arguments":["`...)
			dst = append(dst, to...)
			dst = append(dst, `",`...)
			dst = append(dst, msg...)
			return append(dst, "]}\x1e"...)
		},
		// SignalR clients ping every 15 s; the hub closes a client that
		// sends nothing for 30 s.
		keepAlive: []byte("{\"type\":6}\x1e"),
	},
	{
		name: "centrifuge",
		bin:  "centrifuge-server",
		dial: dialCentrifuge,
		appendSend: func(dst []byte, to string, msg []byte) []byte {
			dst = append(dst, `{"send":{"data":["`...)
			dst = append(dst, to...)
			dst = append(dst, `",`...)
			dst = append(dst, msg...)
			return append(dst, "]}}"...)
		},
		reply: centrifugePong,
	},
	{
		name:       "melody",
		bin:        "melody-server",
		dial:       dialPlain,
		appendSend: appendPlainSend,
		// melody pings with WebSocket frames, which the reader answers.
	},
	{
		name:       "raw",
		bin:        "raw-server",
		dial:       dialPlain,
		appendSend: appendPlainSend,
	},
}

func query(user, group string) string {
	v := url.Values{"user": {user}}
	if group != "" {
		v.Set("group", group)
	}
	return v.Encode()
}

// dialSignalR connects as the official SignalR clients do: negotiate
// (version 1), the WebSocket with the connection token, then the JSON
// handshake.
func dialSignalR(ctx context.Context, hc *http.Client, addr, user, group string) (*websocket.Conn, []byte, error) {
	q := query(user, group)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/hub/negotiate?negotiateVersion=1&"+q, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("negotiate: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("negotiate: %s %s %v", resp.Status, bytes.TrimSpace(body), err)
	}
	var neg struct {
		ConnectionToken string `json:"connectionToken"`
		Error           string `json:"error"`
	}
	if err := json.Unmarshal(body, &neg); err != nil || neg.ConnectionToken == "" {
		return nil, nil, fmt.Errorf("negotiate: %s %v", body, err)
	}
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/hub?id="+url.QueryEscape(neg.ConnectionToken)+"&"+q, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		return nil, nil, err
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte("{\"protocol\":\"json\",\"version\":1}\x1e")); err != nil {
		ws.CloseNow()
		return nil, nil, err
	}
	_, frame, err := ws.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, nil, fmt.Errorf("handshake: %w", err)
	}
	first, rest, _ := bytes.Cut(frame, []byte{0x1e})
	if string(first) != "{}" {
		ws.CloseNow()
		return nil, nil, fmt.Errorf("handshake: %s", first)
	}
	return ws, rest, nil
}

// dialCentrifuge connects with Centrifuge's JSON protocol: the WebSocket,
// then a connect command, whose reply must come back without an error.
func dialCentrifuge(ctx context.Context, hc *http.Client, addr, user, group string) (*websocket.Conn, []byte, error) {
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/connection/websocket?"+query(user, group), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		return nil, nil, err
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"id":1,"connect":{}}`)); err != nil {
		ws.CloseNow()
		return nil, nil, err
	}
	_, frame, err := ws.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	first, rest, _ := bytes.Cut(frame, []byte{'\n'})
	if !bytes.HasPrefix(first, []byte(`{"id":1,"connect":`)) {
		ws.CloseNow()
		return nil, nil, fmt.Errorf("connect: %s", first)
	}
	return ws, rest, nil
}

// centrifugePong answers a frame that holds a server ping, an empty reply
// "{}" on a line of its own, with an empty command.
func centrifugePong(frame []byte) []byte {
	for len(frame) > 0 {
		var line []byte
		line, frame, _ = bytes.Cut(frame, []byte{'\n'})
		if string(line) == "{}" {
			return []byte("{}")
		}
	}
	return nil
}

// dialPlain connects to melody and the raw server: a WebSocket, no
// protocol on top.
func dialPlain(ctx context.Context, hc *http.Client, addr, user, group string) (*websocket.Conn, []byte, error) {
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws?"+query(user, group), &websocket.DialOptions{HTTPClient: hc})
	return ws, nil, err
}

func appendPlainSend(dst []byte, to string, msg []byte) []byte {
	dst = append(dst, to...)
	dst = append(dst, '\n')
	return append(dst, msg...)
}
