package redis_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/signalhub/signalhub/backplane/redis"
)

// startTimeout bounds how long a redis-server may take to answer PING.
const startTimeout = 10 * time.Second

// runID sets this run's channel prefixes apart from those of other runs
// that share a server.
var runID = func() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

// server is a redis-server process of the test's own, on a loopback port.
type server struct {
	tb   testing.TB
	bin  string
	dir  string
	port int

	mu     sync.Mutex // guards cmd, exited and log
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	log    bytes.Buffer  // the server's output, shown if it fails
}

// redisServerBin finds redis-server through REDIS_SERVER_BIN or PATH. A
// missing binary skips the test, or fails it when CI is set.
func redisServerBin(tb testing.TB) string {
	tb.Helper()
	if bin := os.Getenv("REDIS_SERVER_BIN"); bin != "" {
		return bin
	}
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		return bin
	}
	const hint = "redis-server not found: install redis-server (apt-get install redis-server) or run make test"
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s (CI is set, so this fails instead of skipping; REDIS_SERVER_BIN names the binary)", hint)
	}
	tb.Skip(hint)
	return ""
}

// startServer starts a redis-server on a free loopback port and stops it
// when the test ends.
func startServer(tb testing.TB) *server {
	tb.Helper()
	s := &server{tb: tb, bin: redisServerBin(tb), dir: tb.TempDir()}
	tb.Cleanup(s.kill)
	var err error
	for range 3 { // another process may take the port between probe and start
		if s.port, err = freePort(); err != nil {
			tb.Fatalf("redis-server: %v", err)
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	tb.Fatalf("redis-server: %v", err)
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Addr returns the server's host:port.
func (s *server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start runs redis-server on s.port and waits until it answers PING.
func (s *server) start() error {
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--daemonize", "no")
	s.mu.Lock()
	s.log.Reset()
	cmd.Stdout, cmd.Stderr = &lockedWriter{s}, &lockedWriter{s}
	s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		err := ping(s.Addr())
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before answering PING: %s", s.output())
		default:
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("no answer to PING within %v: %v: %s", startTimeout, err, s.output())
		}
		time.Sleep(10 * time.Millisecond) // polling for the server, not synchronising goroutines
	}
}

// ping sends a PING over a fresh connection and checks for PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// kill stops the server with SIGKILL, as a crash would, and waits for it.
// It does nothing if the server is not running.
func (s *server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// restart starts the server again on the same port.
func (s *server) restart() {
	s.tb.Helper()
	if err := s.start(); err != nil {
		s.tb.Fatalf("redis-server: restart on port %d: %v", s.port, err)
	}
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// lockedWriter collects the server's output under s.mu.
type lockedWriter struct{ s *server }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.log.Write(p)
}

// client returns a new client of the server, closed when the test ends.
// Register it before anything that uses it, so that it closes last.
func (s *server) client(tb testing.TB) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr()})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// prefix returns a channel prefix of the test's own.
func prefix(tb testing.TB) string { return "test-" + runID + "-" + tb.Name() }

// testLogger sends the engine's logs to the test's output.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newBackplane returns an unstarted engine on its own client of s,
// closed (if the test did not) before the client when the test ends.
func newBackplane(tb testing.TB, s *server, prefix string) *redis.Backplane {
	tb.Helper()
	client := s.client(tb)
	bp, err := redis.New(redis.Options{Client: client, Prefix: prefix, Logger: testLogger(tb)})
	if err != nil {
		tb.Fatalf("redis.New: %v", err)
	}
	tb.Cleanup(func() { _ = bp.Close() })
	return bp
}

// within returns a context that ends after d or with the test.
func within(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}
