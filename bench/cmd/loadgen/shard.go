package main

// Idle populations larger than one process may hold.
//
// Every connection takes a descriptor in the server and one in the
// generator, and RLIMIT_NOFILE caps both per process. An idle population
// above that cap is split into shards: each shard is a server process of its
// own with a generator process of its own (this program, run with -hold)
// that opens the shard's connections and holds them. The figures are summed
// over the server processes, so that they read as one population of that
// size on this machine.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// shardCount returns how many processes a population of n needs when each
// may hold at most perProc connections.
func shardCount(n, perProc int) int {
	if perProc < 1 {
		return 1
	}
	return (n + perProc - 1) / perProc
}

// shardShare returns how many of n connections shard i of k holds: as even
// as possible, the first ones taking the remainder.
func shardShare(n, k, i int) int {
	s := n / k
	if i < n%k {
		s++
	}
	return s
}

// runSharded measures an idle population split over pop.shards server
// processes, each held by a generator process of its own.
func (g *gen) runSharded(ctx context.Context, sys *system, pop population, round int) (out []sample, err error) {
	log := g.log.With("system", sys.name, "population", pop.String(), "round", round, "processes", pop.shards)
	ctx, cancel := context.WithTimeout(ctx, g.cfg.runTimeout(pop))
	defer cancel()

	procs := make([]*proc, 0, pop.shards)
	holders := make([]*holder, 0, pop.shards)
	defer func() {
		var wg sync.WaitGroup
		for _, h := range holders {
			wg.Go(h.stop)
		}
		wg.Wait()
		for _, p := range procs {
			wg.Go(p.stop)
		}
		wg.Wait()
	}()
	for i := range pop.shards {
		var args []string
		if g.cfg.profileDir != "" {
			args = append(args, "-cpuprofile", filepath.Join(g.cfg.profileDir,
				fmt.Sprintf("%s-%s-%d-r%d-p%d.prof", sys.name, pop.kind, pop.n, round, i)))
		}
		p, err := startServer(ctx, filepath.Join(g.cfg.bin, sys.bin), args, log)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	s0 := make([]serverStats, len(procs))
	for i, p := range procs {
		if s0[i], err = p.stats(ctx); err != nil {
			return nil, err
		}
	}

	// Each shard is bounded as a population of its own share would be;
	// the first shard to fail stops the others.
	shardTimeout := g.cfg.runTimeout(population{"idle", shardShare(pop.n, pop.shards, 0), 1})
	start := time.Now()
	for i, p := range procs {
		h, err := startHolder(g.cfg, sys, p.addr, shardShare(pop.n, pop.shards, i), shardTimeout, log)
		if err != nil {
			return nil, err
		}
		holders = append(holders, h)
	}
	connCtx, connFailed := context.WithCancel(ctx)
	defer connFailed()
	errs := make([]error, len(holders))
	var wg sync.WaitGroup
	for i, h := range holders {
		wg.Go(func() {
			if errs[i] = h.wait(connCtx); errs[i] == nil {
				errs[i] = procs[i].waitConns(connCtx, h.n, shardTimeout/2)
			}
			if errs[i] != nil {
				connFailed()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	connectTime := time.Since(start)
	log.Info("connected", "conns", pop.n, "took", connectTime.Round(time.Millisecond))

	var sum serverStats
	for i, p := range procs {
		s1, err := p.stats(ctx)
		if err != nil {
			return nil, err
		}
		sum.RSS += s1.RSS - s0[i].RSS
		sum.HeapInuse += s1.HeapInuse - s0[i].HeapInuse
		sum.Goroutines += s1.Goroutines - s0[i].Goroutines
		sum.Conns += s1.Conns
	}
	if sum.Conns != pop.n {
		// A holder that died after reporting would make every figure
		// per connection too low.
		return nil, fmt.Errorf("the servers hold %d connections, not %d", sum.Conns, pop.n)
	}
	c, n := "idle "+num(pop.n), float64(pop.n)
	out = append(out,
		sample{c, mRSS, sys.name, round, float64(sum.RSS) / n / 1024},
		sample{c, mHeap, sys.name, round, float64(sum.HeapInuse) / n / 1024},
		sample{c, mGoroutines, sys.name, round, float64(sum.Goroutines) / n},
		sample{c, mConnRate, sys.name, round, n / connectTime.Seconds()})
	log.Info("held", "rss_kib_per_conn", fmt.Sprintf("%.1f", float64(sum.RSS)/n/1024))
	return out, nil
}

// holder is a generator process holding one shard's connections.
type holder struct {
	cmd   *exec.Cmd
	n     int
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
}

// startHolder starts this program with -hold to open n connections of sys
// to addr and hold them for at most holdFor.
func startHolder(cfg *config, sys *system, addr string, n int, holdFor time.Duration, log *slog.Logger) (*holder, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-hold", sys.name, "-hold-addr", addr, "-hold-n", strconv.Itoa(n), "-hold-for", holdFor.String(),
		"-sources", strconv.Itoa(cfg.sources), "-dial-workers", strconv.Itoa(cfg.dialWorkers))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = &prefixWriter{log: log.With("holder", addr), prefix: "holder: "}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h := &holder{cmd: cmd, n: n, stdin: stdin, lines: make(chan string, 1), done: make(chan struct{})}
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			h.lines <- s.Text()
		}
		close(h.lines)
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(h.done)
	}()
	return h, nil
}

// wait waits until the holder reports its connections open.
func (h *holder) wait(ctx context.Context) error {
	select {
	case line, ok := <-h.lines:
		if !ok || line != "HELD "+strconv.Itoa(h.n) {
			_ = h.cmd.Process.Kill()
			<-h.done
			return fmt.Errorf("holder for %d connections: %q (%v)", h.n, line, h.cmd.ProcessState)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop closes the holder's standard input, which makes it close its
// connections and exit, and kills it if it has not within ten seconds.
func (h *holder) stop() {
	_ = h.stdin.Close()
	awaitExit(h.cmd.Process, h.done)
}

// hold is the -hold mode: open n connections of the system to addr, keep
// them alive, print "HELD n" and hold them until standard input ends, or
// for holdFor at most (from the start).
func hold(cfg *config, sysName, addr string, n int, holdFor time.Duration, log *slog.Logger) error {
	var sys *system
	for _, s := range systems {
		if s.name == strings.TrimSpace(sysName) {
			sys = s
		}
	}
	if sys == nil {
		return fmt.Errorf("-hold: unknown system %q", sysName)
	}
	if n < 1 {
		return fmt.Errorf("-hold-n: %d is not a size", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), holdFor)
	defer cancel()
	g := newGen(cfg, log)
	var readers sync.WaitGroup
	readCtx, stopReading := context.WithCancel(context.Background())
	ka := startKeepAlive(readCtx, sys)
	clients, err := g.connect(ctx, readCtx, sys, addr, population{"idle", n, 1}, &readers, ka)
	defer func() {
		ka.end()
		closeClients(clients, stopReading, &readers)
	}()
	if err != nil {
		return err
	}
	fmt.Printf("HELD %d\n", n)
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-eof:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("held %d connections for %s without being told to stop", n, holdFor)
	}
}
