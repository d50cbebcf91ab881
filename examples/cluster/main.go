// Command cluster runs the chat of examples/chat on several hub nodes in
// one process, joined by Redis: a user connected to one node and a user
// connected to another chat privately and in groups.
//
//	redis-server --port 6379 &
//	go run ./examples/cluster                       # nodes on :5001 and :5002
//	go run ./examples/cluster -addrs localhost:5001,localhost:5002,localhost:5003
//
// Open http://localhost:5001/ as alice and http://localhost:5002/ as bob.
// Each node is a separate signalhub.Hub with its own Redis client, exactly
// as it would be on separate machines; the demo token key is shared so that
// a token from one node works on all of them.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/signalhub/signalhub"
	redisbp "github.com/signalhub/signalhub/backplane/redis"
	"github.com/signalhub/signalhub/examples/chatapp"
)

func main() {
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis address")
	addrs := flag.String("addrs", "localhost:5001,localhost:5002", "comma-separated addresses, one node each")
	jwtKey := flag.String("jwt-key", "", "HS256 key for demo tokens, shared by the nodes (default: random at start)")
	bundle := flag.String("bundle", "", "path of signalr.min.js (default: looked up under examples/chat/node_modules)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*redisAddr, strings.Split(*addrs, ","), *jwtKey, *bundle, log); err != nil {
		log.Error("cluster failed", "err", err)
		os.Exit(1)
	}
}

// node is one hub of the cluster with its HTTP server.
type node struct {
	app *chatapp.App
	srv *http.Server
	ln  net.Listener
	rdb *goredis.Client
}

func run(redisAddr string, addrs []string, jwtKey, bundlePath string, log *slog.Logger) error {
	key := []byte(jwtKey)
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	if bundlePath == "" {
		bundlePath = chatapp.FindBundle()
	}
	var nodes []*node
	defer func() {
		for _, n := range nodes {
			_ = n.rdb.Close()
		}
	}()
	for i, addr := range addrs {
		n, err := startNode(fmt.Sprintf("node%d", i+1), addr, redisAddr, key, bundlePath, log)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() { errc <- n.srv.Serve(n.ln) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("a node stopped", "err", err)
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			_ = n.srv.Shutdown(shutdownCtx)
			_ = n.app.Hub.Shutdown(shutdownCtx)
		})
	}
	wg.Wait()
	return nil
}

func startNode(id, addr, redisAddr string, key []byte, bundlePath string, log *slog.Logger) (*node, error) {
	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w (start one with: redis-server --port %s)", redisAddr, err, portOf(redisAddr))
	}
	bp, err := redisbp.New(redisbp.Options{Client: rdb, Prefix: "chat", Logger: log})
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	app, err := chatapp.New(chatapp.Config{
		Key: key, BundlePath: bundlePath, Logger: log.With("node_id", id),
		Hub: signalhub.Options{Backplane: bp, NodeID: id},
	})
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = app.Hub.Close()
		_ = rdb.Close()
		return nil, err
	}
	log.Info("node listening", "node_id", id, "url", "http://"+ln.Addr().String()+"/", "hub", "/chathub")
	return &node{app: app, srv: &http.Server{Handler: app.Mux, ReadHeaderTimeout: 10 * time.Second}, ln: ln, rdb: rdb}, nil
}

func portOf(addr string) string {
	if _, port, err := net.SplitHostPort(addr); err == nil {
		return port
	}
	return "6379"
}
