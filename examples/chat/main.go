// Command chat is the users-and-groups chat sample of the SignalR docs,
// served by a signalhub Hub mounted on a plain net/http mux.
//
//	go run ./examples/chat            # http://localhost:5000
//	go run ./examples/chat -addr 127.0.0.1:8080
//
// The page at / uses the official @microsoft/signalr browser bundle, which
// `make chat` installs with npm (or: cd examples/chat && npm ci).
//
// GET /token?user=NAME[&ttl=SECONDS] hands out a signed JWT for any name.
// It exists for the demo only: a real app issues tokens after checking who
// the user is.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/signalhub/signalhub/examples/chatapp"
)

func main() {
	addr := flag.String("addr", "localhost:5000", "address to listen on")
	jwtKey := flag.String("jwt-key", "", "HS256 key for demo tokens (default: random at start)")
	bundle := flag.String("bundle", "", "path of signalr.min.js (default: looked up under node_modules)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*addr, *jwtKey, *bundle, log); err != nil {
		log.Error("chat failed", "err", err)
		os.Exit(1)
	}
}

func run(addr, jwtKey, bundlePath string, log *slog.Logger) error {
	key := []byte(jwtKey)
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	if bundlePath == "" {
		bundlePath = chatapp.FindBundle()
	}
	if bundlePath == "" {
		log.Warn("the chat page's client bundle is missing; the hub works, but the page at / cannot load. " +
			"Run `make chat` from the repository root, or `npm ci` in examples/chat, to install it.")
	}

	app, err := chatapp.New(chatapp.Config{Key: key, BundlePath: bundlePath, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: app.Mux, ReadHeaderTimeout: 10 * time.Second}
	// http.Server.Shutdown does not wait for WebSockets: let the hub close
	// them, and wait for it below.
	hubDone := make(chan error, 1)
	srv.RegisterOnShutdown(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hubDone <- app.Hub.Shutdown(ctx)
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()

	log.Info("chat listening", "url", "http://"+ln.Addr().String()+"/", "hub", "/chathub")
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-hubDone
}
