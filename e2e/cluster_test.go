package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects a process's output, read while it still writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProcess runs a command until the test ends, with its output kept
// for failure messages.
func startProcess(t *testing.T, name string, args ...string) *syncBuffer {
	out := &syncBuffer{}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start(), "start %s", name)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return out
}

// waitFor polls ready until it succeeds, for at most 30 s.
func waitFor(t *testing.T, what string, out fmt.Stringer, ready func() error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v\n%s", what, err, out)
		}
		time.Sleep(50 * time.Millisecond) // polling a process we started; nothing to await
	}
}

// TestClusterExampleWithOfficialClient runs examples/cluster (two nodes,
// one real redis-server) and drives it with @microsoft/signalr: alice on
// node 1 and bob on node 2 chat privately and in a group (cluster.mjs).
func TestClusterExampleWithOfficialClient(t *testing.T) {
	redisServer, err := exec.LookPath("redis-server")
	if err != nil {
		need(t, "redis-server is not installed (apt-get install redis-server, or run make test)")
	}
	if _, err := os.Stat("node_modules/@microsoft/signalr"); err != nil {
		need(t, "the official client is not installed: run `make test` (or `npm ci` in e2e)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		need(t, "node is not installed (apt-get install nodejs npm)")
	}

	redisAddr := freeAddr(t)
	_, redisPort, _ := net.SplitHostPort(redisAddr)
	redisOut := startProcess(t, redisServer, "--port", redisPort, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	waitFor(t, "redis-server", redisOut, func() error {
		c, err := net.Dial("tcp", redisAddr)
		if err == nil {
			c.Close()
		}
		return err
	})

	bin := filepath.Join(t.TempDir(), "cluster")
	build := exec.Command("go", "build", "-o", bin, "./examples/cluster")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/cluster: %v\n%s", err, out)
	}
	a, b := freeAddr(t), freeAddr(t)
	clusterOut := startProcess(t, bin, "-redis", redisAddr, "-addrs", a+","+b)
	for _, addr := range []string{a, b} {
		waitFor(t, "node "+addr, clusterOut, func() error {
			res, err := http.Get("http://" + addr + "/token?user=probe")
			if err != nil {
				return err
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", res.StatusCode)
			}
			return nil
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "cluster.mjs", "http://"+a, "http://"+b).CombinedOutput()
	if err != nil {
		t.Fatalf("node cluster.mjs: %v\n%s\n--- cluster ---\n%s", err, out, clusterOut)
	}
	require.Equal(t, "ok\n", string(out))
}
