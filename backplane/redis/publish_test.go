package redis_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/signalhub/signalhub/backplane"
	"github.com/signalhub/signalhub/backplane/redis"
)

// TestPublishNotRetried checks that a PUBLISH whose reply is lost is not
// sent again, although the client allows retries: the first may have been
// delivered. The server here hangs up on every PUBLISH after reading it.
func TestPublishNotRetried(t *testing.T) {
	addr, publishes := hangUpServer(t)
	client := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: 3})
	t.Cleanup(func() { _ = client.Close() })
	ctx := within(t, 10*time.Second)

	// The client on its own retries: this is what the engine must avoid.
	require.Error(t, client.Publish(ctx, "ch", "x").Err())
	require.Equal(t, int32(4), publishes.Swap(0), "PUBLISH sent by the client itself, retries included")

	bp, err := redis.New(redis.Options{Client: client, Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, bp.Start(ctx, func(string, []byte) {}))
	err = bp.Publish(ctx, "ch", []byte("x"))
	assert.ErrorIs(t, err, backplane.ErrUnavailable)
	assert.Equal(t, int32(1), publishes.Load(), "PUBLISH sent by the engine")
	require.NoError(t, bp.Close())
}

// hangUpServer serves a little of the Redis protocol on a loopback port:
// it answers every command with OK, rejects HELLO so that clients use
// RESP2, and closes the connection when it reads a PUBLISH, which it
// counts. It stops when the test ends, after the test's clients.
func hangUpServer(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		publishes atomic.Int32
		wg        sync.WaitGroup
		mu        sync.Mutex
		conns     = map[net.Conn]bool{}
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				rd := bufio.NewReader(c)
				for {
					args, err := readCommand(rd)
					if err != nil {
						return
					}
					var reply string
					switch strings.ToLower(args[0]) {
					case "publish":
						publishes.Add(1)
						return
					case "hello":
						reply = "-ERR unknown command 'hello'\r\n"
					case "ping":
						reply = "+PONG\r\n"
					default:
						reply = "+OK\r\n"
					}
					if _, err := io.WriteString(c, reply); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String(), &publishes
}

// readCommand reads one command, an array of bulk strings.
func readCommand(rd *bufio.Reader) ([]string, error) {
	n, err := readHeader(rd, '*')
	if err != nil {
		return nil, err
	}
	args := make([]string, n)
	for i := range args {
		size, err := readHeader(rd, '$')
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	if n == 0 {
		return nil, fmt.Errorf("empty command")
	}
	return args, nil
}

func readHeader(rd *bufio.Reader, kind byte) (int, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 3 || line[0] != kind {
		return 0, fmt.Errorf("unexpected %q", line)
	}
	return strconv.Atoi(strings.TrimSuffix(line[1:], "\r\n"))
}
