package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/signalhub/signalhub/client"
)

const (
	// startTimeout bounds how long a chat may take to listen: a first
	// `make chat` fetches the bundle with npm and compiles.
	startTimeout = 10 * time.Minute
	// stopGrace is how long a chat may take to stop after an interrupt.
	stopGrace = 30 * time.Second
	// listening is what the chat logs once it serves.
	listening = "chat listening"
	// shuttingDown is what the hub logs when Shutdown starts.
	shuttingDown = "hub shutting down"
)

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// chatServer is a running chat as the check sees it.
type chatServer struct {
	base string // "http://127.0.0.1:port/"
	hub  string // the hub's path, "/chathub"
	http *http.Client
}

// startChat starts a chat with the command and waits until it logs that it
// listens on addr.
func startChat(ctx context.Context, dir, addr string, env []string, name string, args ...string) (*proc, *chatServer, error) {
	p, err := startProc(dir, env, name, args...)
	if err != nil {
		return nil, nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	line, err := p.waitFor(wctx, listening)
	if err != nil {
		_ = p.interrupt(stopGrace)
		return nil, nil, err
	}
	s := &chatServer{base: logValue(line, "url"), hub: logValue(line, "hub")}
	if s.base != "http://"+addr+"/" || !strings.HasPrefix(s.hub, "/") {
		_ = p.interrupt(stopGrace)
		return nil, nil, fmt.Errorf("the chat says %q; want it on http://%s/ with a hub path", line, addr)
	}
	s.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
	return p, s, nil
}

// stopChat interrupts the chat as Ctrl-C would and checks that its hub shut
// down gracefully.
func stopChat(p *proc, s *chatServer) error {
	s.http.CloseIdleConnections()
	if err := p.interrupt(stopGrace); err != nil {
		return err
	}
	if !p.has(shuttingDown) {
		return fmt.Errorf("after an interrupt the chat ended without %q; its output:\n%s", shuttingDown, p.output())
	}
	return nil
}

// logValue returns the value of key in a slog text line, unquoted.
func logValue(line, key string) string {
	m := regexp.MustCompile(`(?:^| )` + regexp.QuoteMeta(key) + `=("(?:[^"\\]|\\.)*"|\S*)`).FindStringSubmatch(line)
	if m == nil {
		return ""
	}
	if v, err := unquote(m[1]); err == nil {
		return v
	}
	return m[1]
}

func unquote(s string) (string, error) {
	if !strings.HasPrefix(s, `"`) {
		return s, nil
	}
	var v string
	err := json.Unmarshal([]byte(s), &v)
	return v, err
}

// get fetches path from the chat and returns the status, content type and
// body.
func (s *chatServer) get(ctx context.Context, path string) (int, string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.base, "/")+path, nil)
	if err != nil {
		return 0, "", nil, err
	}
	return s.do(req)
}

func (s *chatServer) do(req *http.Request) (int, string, []byte, error) {
	res, err := s.http.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	return res.StatusCode, res.Header.Get("Content-Type"), body, err
}

// negotiate runs SignalR's negotiate, version 1, with token (if any) and
// checks the answer: a connection ID, a distinct connection token, and
// WebSockets among the transports.
func (s *chatServer) negotiate(ctx context.Context, token string) error {
	u := strings.TrimSuffix(s.base, "/") + s.hub + "/negotiate?negotiateVersion=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	status, _, body, err := s.do(req)
	if err != nil {
		return fmt.Errorf("negotiate: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("negotiate: status %d: %s", status, body)
	}
	var r struct {
		NegotiateVersion    int    `json:"negotiateVersion"`
		ConnectionID        string `json:"connectionId"`
		ConnectionToken     string `json:"connectionToken"`
		AvailableTransports []struct {
			Transport       string   `json:"transport"`
			TransferFormats []string `json:"transferFormats"`
		} `json:"availableTransports"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("negotiate: %w: %s", err, body)
	}
	ws := false
	for _, t := range r.AvailableTransports {
		ws = ws || t.Transport == "WebSockets"
	}
	if r.NegotiateVersion != 1 || r.ConnectionID == "" || r.ConnectionToken == "" || r.ConnectionToken == r.ConnectionID || !ws {
		return fmt.Errorf("negotiate: unexpected answer %s", body)
	}
	return nil
}

// checkChatWithoutBundle runs `go run ./examples/chat` in a clone where the
// page's bundle is not installed yet. The README says the hub is served
// and the program says how to get the bundle.
func checkChatWithoutBundle(ctx context.Context, clone string, logf func(string, ...any)) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, s, err := startChat(ctx, clone, addr, newcomerEnv(), "go", "run", "./examples/chat", "-addr", addr)
	if err != nil {
		return err
	}
	err = func() error {
		if !p.has("make chat") {
			return fmt.Errorf("the chat does not say how to get the page's bundle (`make chat`); its output:\n%s", p.output())
		}
		status, _, body, err := s.get(ctx, "/signalr.min.js")
		if err != nil {
			return err
		}
		if status != http.StatusNotFound || !strings.Contains(string(body), "make chat") {
			return fmt.Errorf("GET /signalr.min.js without the bundle: status %d, %q; want 404 saying how to get it", status, body)
		}
		return s.negotiate(ctx, "")
	}()
	if err == nil {
		logf("go run ./examples/chat: serves the hub on %s and says how to get the page's bundle", s.base)
	}
	return errors.Join(err, stopChat(p, s))
}

// checkMakeChat runs the README's `make chat` on a free loopback ADDR (the
// README's way to move it) and checks what a newcomer's browser would do:
// load the page and its client bundle, get a demo token, negotiate and
// connect.
func checkMakeChat(ctx context.Context, clone string, c command, logf func(string, ...any)) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	env := newcomerEnv(append(c.env, "ADDR="+addr)...)
	p, s, err := startChat(ctx, clone, addr, env, "make", append([]string{"chat"}, c.args...)...)
	if err != nil {
		return err
	}
	err = func() error {
		status, ctype, page, err := s.get(ctx, "/")
		if err != nil {
			return err
		}
		if status != http.StatusOK || !strings.HasPrefix(ctype, "text/html") {
			return fmt.Errorf("GET /: status %d, %s", status, ctype)
		}
		bundle := false
		for _, src := range scriptSources(string(page)) {
			u, err := url.Parse(src)
			if err != nil || u.IsAbs() {
				continue // a CDN script is not the chat's to serve
			}
			status, ctype, js, err := s.get(ctx, u.Path)
			if err != nil {
				return err
			}
			if status != http.StatusOK || !strings.Contains(ctype, "javascript") {
				return fmt.Errorf("GET %s (a script of the page): status %d, %s: %.200s", u.Path, status, ctype, js)
			}
			bundle = bundle || strings.Contains(string(js), "HubConnectionBuilder")
		}
		if !bundle {
			return errors.New("the page loads no script that holds the SignalR client (HubConnectionBuilder)")
		}

		status, _, token, err := s.get(ctx, "/token?user=newcomer")
		if err != nil {
			return err
		}
		if status != http.StatusOK || strings.Count(string(token), ".") != 2 {
			return fmt.Errorf("GET /token?user=newcomer: status %d, %q", status, token)
		}
		if err := s.negotiate(ctx, string(token)); err != nil {
			return err
		}
		return connectAsNewcomer(ctx, s, string(token))
	}()
	if err == nil {
		logf("make chat: page, bundle, token, negotiate and a connection as user %q on %s", "newcomer", s.base)
	}
	return errors.Join(err, stopChat(p, s))
}

// scriptSources returns the src attributes of a page's script elements.
func scriptSources(page string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?i)<script[^>]*\ssrc="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

// whoAmI is the answer of the chat's WhoAmI hub method.
type whoAmI struct {
	ConnectionID   string  `json:"connectionId"`
	UserIdentifier *string `json:"userIdentifier"`
}

// connectAsNewcomer connects to the chat's hub with the token, as the page
// does, and asks who it is.
func connectAsNewcomer(ctx context.Context, s *chatServer, token string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.Dial(cctx, strings.TrimSuffix(s.base, "/")+s.hub, &client.Options{
		AccessToken: func(context.Context) (string, error) { return token, nil },
		HTTPClient:  s.http,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fmt.Errorf("connecting to the hub: %w", err)
	}
	defer c.Close()
	who, err := client.InvokeAs[whoAmI](cctx, c, "WhoAmI")
	if err != nil {
		return fmt.Errorf("invoking WhoAmI: %w", err)
	}
	if who.UserIdentifier == nil || *who.UserIdentifier != "newcomer" || who.ConnectionID != c.ConnectionID() {
		return fmt.Errorf("WhoAmI answered %+v for connection %s; want user newcomer", who, c.ConnectionID())
	}
	return nil
}
