package signalhub_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub"
)

// FuzzLongPollingPost sends a fuzzed byte stream to a Long Polling
// connection in two POSTs, cut at a fuzzed point, as a client may cut its
// records anywhere. Whatever the bytes, a POST is answered 200, 400 with
// the reason the connection was closed for, 404 once it ended (by a Close
// message of the client), or 413 for a body over its bound; nothing
// panics, and another Long Polling connection of the hub stays connected.
func FuzzLongPollingPost(f *testing.F) {
	for _, s := range []struct {
		data string
		cut  uint16
	}{
		{`{"type":1,"invocationId":"1","target":"Add","arguments":[1,2]}` + rs, 10},
		{`{"type":6}` + rs + `{"type":1,"target":"Echo","arguments":["x"]}` + rs, 0},
		{`{"type":1,"invocationId":"1","target":"Echo","arguments":["` + strings.Repeat("y", 300) + `"]}` + rs, 200},
		{`{"type":7}` + rs + `{"type":6}` + rs, 12},
		{`{"type":1,"target":` + rs, 3},
		{`{"type":3,"invocationId":"s1","result":1}` + rs + `{"type":5,"invocationId":"x"}` + rs, 40},
		{strings.Repeat(`{"type":6}`+rs, 800), 4000},
		{"\x00\xff" + rs, 1},
	} {
		f.Add([]byte(s.data), s.cut)
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		hub, err := signalhub.New(&signalhub.Options{
			Logger:         slog.New(slog.DiscardHandler),
			Methods:        testMethods(),
			MaxMessageSize: 256, // a body bound of 8 KiB, within the fuzzer's reach
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = hub.Close() })
		serve := func(method, token, user string, body []byte) *httptest.ResponseRecorder {
			r := httptest.NewRequest(method, "/hub?id="+token, bytes.NewReader(body))
			if user != "" {
				r = r.WithContext(signalhub.ContextWithClaims(r.Context(), signalhub.Claims{"sub": user}))
			}
			w := httptest.NewRecorder()
			hub.ServeHTTP(w, r)
			return w
		}
		// open starts a Long Polling connection of user and shakes hands.
		open := func(user string) (id, token string) {
			r := httptest.NewRequest(http.MethodPost, "/hub/negotiate?negotiateVersion=1", nil)
			r = r.WithContext(signalhub.ContextWithClaims(r.Context(), signalhub.Claims{"sub": user}))
			w := httptest.NewRecorder()
			hub.ServeHTTP(w, r)
			require.Equal(t, http.StatusOK, w.Code)
			var neg negotiateResult
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &neg))
			require.Equal(t, http.StatusOK, serve(http.MethodGet, neg.ConnectionToken, user, nil).Code, "the first poll")
			require.Equal(t, http.StatusOK, serve(http.MethodPost, neg.ConnectionToken, user, []byte(handshakeV1)).Code, "the handshake")
			return neg.ConnectionID, neg.ConnectionToken
		}
		bystander, _ := open("bystander")
		_, token := open("fuzzer")

		at := int(cut) % (len(data) + 1)
		for _, part := range [][]byte{data[:at], data[at:]} {
			w := serve(http.MethodPost, token, "fuzzer", part)
			body := strings.TrimSpace(w.Body.String())
			switch w.Code {
			case http.StatusOK:
				require.Empty(t, body)
				continue
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
				require.NotEmpty(t, body, "a refusal says why")
			case http.StatusNotFound:
				require.Equal(t, "No Connection with that ID", body)
			default:
				t.Fatalf("POST answered %d: %s", w.Code, body)
			}
			break
		}
		require.Equal(t, []string{bystander}, hub.UserConnections("bystander"), "the other connection is untouched")
	})
}
