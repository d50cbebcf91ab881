// Package server is the part every benchmark server program shares: flags,
// the listener, the control API the load generator drives, and process
// statistics. Each program supplies only its system's WebSocket endpoint and
// its native way to send to a group, so that whatever the control plane
// costs, it costs every system the same.
//
// The control API, under /ctl/ on the same listener:
//
//	POST /ctl/publish?group=G&count=N&rate=R&run=X&seq=S
//	    publishes N messages to group G through the system's own API, R per
//	    second paced by a ticker (R <= 0: back to back), with sequence
//	    numbers from S. Each message is built (payload.Append) and
//	    time-stamped right before it is handed to the system. Answers when
//	    the last one is handed over.
//	GET /ctl/wait?conns=N&timeout=D
//	    waits until N connections have connected and joined what they
//	    asked for (the system's own connect hook counts them), or answers
//	    504 after D.
//	GET /ctl/stats?gc=1
//	    RSS (VmRSS), heap in use, goroutines and connections as JSON; with
//	    gc=1 after runtime.GC and debug.FreeOSMemory, so that RSS counts
//	    what is retained rather than garbage not yet collected.
//
// The program prints "LISTEN host:port" as its first line on stdout once it
// accepts connections; logs go to stderr.
package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/signalhub/signalhub/bench/internal/payload"
)

// System is one system under test, as a server program sets it up.
type System struct {
	// Name names the system in logs.
	Name string
	// Register mounts the system's WebSocket endpoint on mux.
	Register func(mux *http.ServeMux)
	// Publish hands msg to the system for delivery to every member of
	// group. msg is fresh for every call and never reused, so a system
	// may keep it.
	Publish func(group string, msg []byte) error
}

// Counter counts the connections that have completed their system's
// connect hook. It is safe for concurrent use.
type Counter struct {
	mu      sync.Mutex // guards n and waiters
	n       int
	waiters []waiter
}

type waiter struct {
	target int
	ch     chan struct{}
}

// Add changes the count by delta and wakes the waiters it satisfies.
func (c *Counter) Add(delta int) {
	c.mu.Lock()
	c.n += delta
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if c.n >= w.target {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
	c.mu.Unlock()
}

// Load returns the count.
func (c *Counter) Load() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Wait blocks until the count reaches target or ctx ends.
func (c *Counter) Wait(ctx context.Context, target int) error {
	c.mu.Lock()
	if c.n >= target {
		c.mu.Unlock()
		return nil
	}
	w := waiter{target: target, ch: make(chan struct{})}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d of %d connections: %w", c.Load(), target, ctx.Err())
	}
}

// Conns counts the program's connections; its connect and disconnect hooks
// call Conns.Add.
var Conns Counter

// Stats is the answer of GET /ctl/stats.
type Stats struct {
	RSS        int64 `json:"rss"`        // VmRSS in bytes
	HeapInuse  int64 `json:"heap"`       // runtime.MemStats.HeapInuse in bytes
	Goroutines int   `json:"goroutines"` // runtime.NumGoroutine
	Conns      int   `json:"conns"`      // open client connections (Conns)
}

// Main runs the server program for sys: it parses the flags, raises the
// open-file limit, and serves until SIGTERM or SIGINT, when it returns
// without closing the connections (the program then exits).
func Main(sys System) {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free one)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	log := slog.Default().With("system", sys.Name)
	if err := RaiseFileLimit(); err != nil {
		log.Warn("cannot raise the open-file limit", "err", err)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Error("cpuprofile", "err", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Error("cpuprofile", "err", err)
			os.Exit(1)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}

	mux := http.NewServeMux()
	sys.Register(mux)
	mux.HandleFunc("POST /ctl/publish", publishHandler(sys, log))
	mux.HandleFunc("GET /ctl/wait", waitHandler)
	mux.HandleFunc("GET /ctl/stats", statsHandler)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve", "err", err)
			os.Exit(1)
		}
	}()
	fmt.Printf("LISTEN %s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-ctx.Done()
	// No graceful close: the generator has what it measured, and closing
	// thousands of WebSockets one by one would only slow the next run.
}

// RaiseFileLimit sets the soft RLIMIT_NOFILE to the hard limit.
func RaiseFileLimit() error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	return nil
}

func publishHandler(sys System, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		group := q.Get("group")
		count, err1 := strconv.Atoi(q.Get("count"))
		rate, err2 := strconv.ParseFloat(q.Get("rate"), 64)
		run, err3 := strconv.ParseInt(q.Get("run"), 10, 64)
		seq, err4 := strconv.ParseInt(q.Get("seq"), 10, 64)
		if err := errors.Join(err1, err2, err3, err4); err != nil || group == "" || count < 0 {
			http.Error(w, "group, count, rate, run and seq are required", http.StatusBadRequest)
			return
		}
		var tick <-chan time.Time
		if rate > 0 {
			t := time.NewTicker(time.Duration(float64(time.Second) / rate))
			defer t.Stop()
			tick = t.C
		}
		failed := 0
		var firstErr error
		for i := range count {
			if tick != nil && i > 0 {
				select {
				case <-tick:
				case <-r.Context().Done():
					return
				}
			}
			msg := payload.Append(make([]byte, 0, payload.Size), run, seq+int64(i), time.Now().UnixNano())
			if err := sys.Publish(group, msg); err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
			}
		}
		if firstErr != nil {
			log.Warn("publish failed", "group", group, "failed", failed, "err", firstErr)
		}
		writeJSON(w, map[string]int{"published": count - failed, "failed": failed})
	}
}

func waitHandler(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("conns"))
	if err != nil {
		http.Error(w, "conns is required", http.StatusBadRequest)
		return
	}
	timeout, err := time.ParseDuration(r.URL.Query().Get("timeout"))
	if err != nil {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if err := Conns.Wait(ctx, n); err != nil {
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
		return
	}
	writeJSON(w, map[string]int{"conns": Conns.Load()})
}

func statsHandler(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("gc") == "1" {
		runtime.GC()
		debug.FreeOSMemory()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, err := vmRSS()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, Stats{RSS: rss, HeapInuse: int64(ms.HeapInuse), Goroutines: runtime.NumGoroutine(), Conns: Conns.Load()})
}

// vmRSS reads the process's resident set size from /proc/self/status.
func vmRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
