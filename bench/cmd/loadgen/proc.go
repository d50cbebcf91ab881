package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a running server program.
type proc struct {
	cmd  *exec.Cmd
	addr string // host:port of its WebSocket endpoints and control API
	ctl  *http.Client
	done chan struct{} // closed when the process has exited
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// startServer starts the program bin with args and waits for its LISTEN
// line.
func startServer(ctx context.Context, bin string, args []string, log *slog.Logger) (*proc, error) {
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = &prefixWriter{log: log}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, ctl: &http.Client{Timeout: 2 * time.Minute}, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	lines := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			lines <- s.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
	}()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case line, ok := <-lines:
		addr, found := strings.CutPrefix(line, "LISTEN ")
		if !ok || !found {
			p.stop()
			return nil, fmt.Errorf("%s: no LISTEN line (got %q)", bin, line)
		}
		p.addr = addr
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited: %v", bin, cmd.ProcessState)
	case <-t.C:
	case <-ctx.Done():
	}
	p.stop()
	return nil, fmt.Errorf("%s did not start listening", bin)
}

// stop ends the process: SIGTERM, and SIGKILL if it has not exited within
// ten seconds.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	awaitExit(p.cmd.Process, p.done)
}

// awaitExit waits for a process that was told to stop to exit (done is
// closed), and kills it if it has not within ten seconds.
func awaitExit(p *os.Process, done <-chan struct{}) {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		_ = p.Kill()
		<-done
	}
}

// cpu returns the CPU time (user and system) the process has used so far.
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may contain spaces: fields count
	// from the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat", p.cmd.Process.Pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat", p.cmd.Process.Pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat", p.cmd.Process.Pid)
	}
	return time.Duration(u+s) * clockTick, nil
}

// serverStats mirrors the answer of GET /ctl/stats (bench/internal/server).
type serverStats struct {
	RSS        int64 `json:"rss"`
	HeapInuse  int64 `json:"heap"`
	Goroutines int   `json:"goroutines"`
	Conns      int   `json:"conns"`
}

func (p *proc) stats(ctx context.Context) (serverStats, error) {
	var s serverStats
	err := p.call(ctx, http.MethodGet, "/ctl/stats?gc=1", &s)
	return s, err
}

// waitConns waits until the server counts n connections.
func (p *proc) waitConns(ctx context.Context, n int, timeout time.Duration) error {
	return p.call(ctx, http.MethodGet, fmt.Sprintf("/ctl/wait?conns=%d&timeout=%s", n, timeout), nil)
}

// publish asks the server to publish count messages to group.
func (p *proc) publish(ctx context.Context, group string, count int, rate float64, run, seq int64) error {
	var r struct{ Published, Failed int }
	err := p.call(ctx, http.MethodPost, fmt.Sprintf("/ctl/publish?group=%s&count=%d&rate=%g&run=%d&seq=%d", group, count, rate, run, seq), &r)
	if err == nil && r.Failed > 0 {
		err = fmt.Errorf("%d of %d publishes failed", r.Failed, count)
	}
	return err
}

func (p *proc) call(ctx context.Context, method, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+p.addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.ctl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(body))
	}
	if into != nil {
		return json.Unmarshal(body, into)
	}
	return nil
}

// selfCPU returns the CPU time the generator has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// prefixWriter logs a server's stderr, line by line, up to maxServerLines
// lines per process (a system that closes slow connections may log one
// line for each).
type prefixWriter struct {
	log    *slog.Logger
	prefix string // "server: " when empty
	buf    []byte
	lines  int
}

const maxServerLines = 10

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 && len(w.buf) > 4096 {
			i = len(w.buf)
		}
		if i < 0 {
			break
		}
		w.lines++
		prefix := w.prefix
		if prefix == "" {
			prefix = "server: "
		}
		switch {
		case w.lines <= maxServerLines:
			w.log.Warn(prefix + string(w.buf[:i]))
		case w.lines == maxServerLines+1:
			w.log.Warn(prefix + "further lines not shown")
		}
		w.buf = w.buf[min(i+1, len(w.buf)):]
	}
	return len(p), nil
}
