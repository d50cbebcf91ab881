// Package chatapp is the chat of the examples: the hub methods of the
// SignalR docs' users-and-groups sample, a demo token endpoint and a page.
// examples/chat serves it on one node, examples/cluster on several nodes
// joined by Redis.
package chatapp

import (
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signalhub/signalhub"
)

//go:embed index.html
var indexHTML []byte

// App is the chat's HTTP surface: the hub at /chathub, the demo token
// endpoint at /token, the page at / and its client bundle.
type App struct {
	// Hub is the chat's hub.
	Hub *signalhub.Hub
	// Mux serves everything.
	Mux *http.ServeMux
	key []byte
}

// Config configures New.
type Config struct {
	// Key signs and verifies the demo tokens (HS256).
	Key []byte
	// BundlePath is the file served as /signalr.min.js; empty serves a
	// 404 that says how to install it.
	BundlePath string
	// Logger receives the hub's logs.
	Logger *slog.Logger
	// Hub are further hub options, such as a Backplane; Methods,
	// Authenticate and Logger are set by New.
	Hub signalhub.Options
}

// New builds the chat.
func New(cfg Config) (*App, error) {
	key, bundlePath, log := cfg.Key, cfg.BundlePath, cfg.Logger
	auth, err := signalhub.NewJWTAuthenticator(signalhub.JWTOptions{
		Key:        key,
		Algorithms: []string{"HS256"},
	})
	if err != nil {
		return nil, err
	}
	opts := cfg.Hub
	opts.Methods, opts.Authenticate, opts.Logger = Methods(), auth, log
	hub, err := signalhub.New(&opts)
	if err != nil {
		return nil, err
	}
	a := &App{Hub: hub, Mux: http.NewServeMux(), key: key}
	hub.Mount(a.Mux, "/chathub")
	a.Mux.HandleFunc("GET /token", a.serveToken)
	a.Mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(indexHTML)
	})
	a.Mux.HandleFunc("GET /signalr.min.js", func(w http.ResponseWriter, r *http.Request) {
		if bundlePath == "" {
			http.Error(w, "client bundle missing: run `make chat` (or `npm ci` in examples/chat)", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, bundlePath)
	})
	return a, nil
}

// Methods is the hub contract of the SignalR docs' users-and-groups
// sample.
func Methods() map[string]any {
	return map[string]any{
		"SendMessage": func(c *signalhub.Context, message string) error {
			return c.Hub().SendToAll(c.Context(), "ReceiveMessage", c.UserID(), message)
		},
		"SendMessageToCaller": func(c *signalhub.Context, message string) error {
			return c.Caller().Send(c.Context(), "ReceiveMessage", c.UserID(), message)
		},
		"SendPrivateMessage": func(c *signalhub.Context, user, message string) error {
			if user == "" {
				return signalhub.HubError{Message: "user is required"}
			}
			return c.Hub().SendToUser(c.Context(), user, "ReceiveMessage", c.UserID(), message)
		},
		"AddToGroup": func(c *signalhub.Context, group string) error {
			if err := joinOrLeave(c, group, true); err != nil {
				return err
			}
			return c.Hub().SendToGroup(c.Context(), group, "Send", c.ConnectionID()+" has joined the group "+group+".")
		},
		"RemoveFromGroup": func(c *signalhub.Context, group string) error {
			if err := joinOrLeave(c, group, false); err != nil {
				return err
			}
			return c.Hub().SendToGroup(c.Context(), group, "Send", c.ConnectionID()+" has left the group "+group+".")
		},
		"SendMessageToGroup": func(c *signalhub.Context, group, message string) error {
			if group == "" {
				return signalhub.HubError{Message: "group name is required"}
			}
			return c.Hub().SendToGroup(c.Context(), group, "ReceiveMessage", c.UserID(), message)
		},
		// The page's methods. They name the user rather than the
		// connection and say which group or person a message is for, so
		// the page can tell a group message from a private one.
		"JoinGroup": func(c *signalhub.Context, group string) error {
			if err := joinOrLeave(c, group, true); err != nil {
				return err
			}
			return c.Hub().SendToGroup(c.Context(), group, "GroupJoined", group, c.UserID())
		},
		"LeaveGroup": func(c *signalhub.Context, group string) error {
			if err := joinOrLeave(c, group, false); err != nil {
				return err
			}
			return c.Hub().SendToGroup(c.Context(), group, "GroupLeft", group, c.UserID())
		},
		"SendGroupMessage": func(c *signalhub.Context, group, message string) error {
			if group == "" {
				return signalhub.HubError{Message: "group name is required"}
			}
			if !slices.Contains(c.Hub().ConnectionGroups(c.ConnectionID()), group) {
				return signalhub.HubError{Message: "join the group " + group + " first"}
			}
			return c.Hub().SendToGroup(c.Context(), group, "GroupMessage", group, c.UserID(), message)
		},
		// SendPrivate reaches every connection of the recipient and of the
		// sender, so each of the sender's pages shows what was sent.
		"SendPrivate": func(c *signalhub.Context, user, message string) error {
			if user == "" {
				return signalhub.HubError{Message: "user is required"}
			}
			from := c.UserID()
			if from == "" {
				return signalhub.HubError{Message: "sign in to send private messages"}
			}
			to := []string{user}
			if from != user {
				to = append(to, from)
			}
			return c.Hub().SendToUsers(c.Context(), to, "PrivateMessage", from, user, message)
		},
		// Binary data and a time: MessagePack clients send and receive them
		// as Uint8Array and Date, JSON clients as base64 and ISO 8601
		// strings.
		"SendFileToGroup": func(c *signalhub.Context, group, name string, data []byte, modified time.Time) error {
			if group == "" {
				return signalhub.HubError{Message: "group name is required"}
			}
			return c.Hub().SendToGroup(c.Context(), group, "ReceiveFile", c.UserID(), name, data, modified)
		},
		"WhoAmI": func(c *signalhub.Context) whoAmI {
			w := whoAmI{ConnectionID: c.ConnectionID()}
			if id := c.UserID(); id != "" {
				w.UserIdentifier = &id
			}
			return w
		},
	}
}

type whoAmI struct {
	ConnectionID   string  `json:"connectionId"`
	UserIdentifier *string `json:"userIdentifier"`
}

func joinOrLeave(c *signalhub.Context, group string, join bool) error {
	if group == "" {
		return signalhub.HubError{Message: "group name is required"}
	}
	hub := c.Hub()
	var err error
	if join {
		err = hub.AddToGroup(c.Context(), c.ConnectionID(), group)
	} else {
		err = hub.RemoveFromGroup(c.Context(), c.ConnectionID(), group)
	}
	// Say what the user can fix; other errors stay generic.
	switch {
	case errors.Is(err, signalhub.ErrInvalidName):
		return signalhub.HubError{Message: "group name is too long or has characters that are not allowed"}
	case errors.Is(err, signalhub.ErrTooManyGroups):
		return signalhub.HubError{Message: "you are in too many groups: leave one first"}
	}
	return err
}

// serveToken issues a demo token: GET /token?user=NAME[&ttl=SECONDS].
func (a *App) serveToken(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if user == "" {
		http.Error(w, "user is required", http.StatusBadRequest)
		return
	}
	ttl := time.Hour
	if s := r.URL.Query().Get("ttl"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			http.Error(w, "ttl must be a positive number of seconds", http.StatusBadRequest)
			return
		}
		ttl = time.Duration(n) * time.Second
	}
	tok, err := a.token(user, ttl)
	if err != nil {
		http.Error(w, "cannot sign token", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(tok))
}

func (a *App) token(user string, ttl time.Duration) (string, error) {
	if len(a.key) == 0 {
		return "", errors.New("no key")
	}
	now := time.Now()
	claims := jwt.MapClaims{"sub": user, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(a.key)
}

// bundleRel is where npm puts the browser bundle, relative to
// examples/chat, whose package-lock.json pins it.
const bundleRel = "node_modules/@microsoft/signalr/dist/browser/signalr.min.js"

// FindBundle looks for the npm-installed bundle whether the program runs
// from the repository root, from examples, or from examples/chat; it
// returns "" when it is not installed.
func FindBundle() string {
	for _, dir := range []string{".", "examples/chat", "chat", "../chat"} {
		p := dir + "/" + bundleRel
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
