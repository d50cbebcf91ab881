// Command loadgen drives the benchmark servers in bench/cmd/*-server the
// same way over loopback and prints one markdown table of medians and
// ratios.
//
// For each round, each population (the connections of one run) and each
// system, in an order that rotates with the round, it starts the system's
// server program as a child process, opens the population's connections
// (minimal protocol clients over github.com/coder/websocket, one reader
// goroutine each, from several 127.0.0.x source addresses), and measures:
//
//   - idle: the server's RSS, heap and goroutines per connection, after a
//     forced GC, and how fast the connections were made;
//   - fan-out: every connection is a member of one group; the server
//     publishes to it at fixed rates (-fanout-rates, in deliveries per
//     second), then flat out in a closed loop;
//   - user to user: senders and receivers in pairs; each sender sends to
//     its receiver's user ID through the server, at a fixed rate, then flat
//     out with a window per pair.
//
// Every message is 200 bytes (bench/internal/payload) and carries its send
// time; receivers measure latency on the same clock, count what is missing
// and check order. CPU comes from /proc/PID/stat for the server and
// getrusage for the generator. docs/benchmarks.md explains every figure.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/signalhub/signalhub/bench/internal/server"
)

// config is the run's configuration, from the flags.
type config struct {
	bin          string
	systems      []*system
	rounds       int
	sizes        []int // fan-out populations
	idle         []int // idle-only populations
	pairs        int
	fanoutRates  []float64 // deliveries per second of each fixed-rate fan-out
	pairRate     float64   // messages per second per pair in the fixed-rate case
	duration     time.Duration
	batch        int
	window       int
	drainTimeout time.Duration
	sources      int
	dialWorkers  int
	profileDir   string
	out          string
	warmup       bool
	notes        []string // what the report should say about the configuration
}

// runTimeout bounds one population's run.
func (c *config) runTimeout(pop population) time.Duration {
	return 2*time.Minute + time.Duration(pop.n)*5*time.Millisecond + 4*c.duration
}

func main() {
	if err := run(); err != nil {
		slog.Error("loadgen", "err", err)
		os.Exit(1)
	}
}

func run() error {
	exe, _ := os.Executable()
	cfg := &config{}
	flag.StringVar(&cfg.bin, "bin", filepath.Dir(exe), "directory of the server programs")
	systemsFlag := flag.String("systems", "signalhub,centrifuge,melody,raw", "systems to run, comma-separated")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds; each figure is the median over rounds")
	sizesFlag := flag.String("sizes", "1000,5000", "group sizes (connections) of the fan-out cases, comma-separated")
	idleFlag := flag.String("idle", "", "further idle-only populations, comma-separated")
	flag.IntVar(&cfg.pairs, "pairs", 1000, "pairs in the user-to-user cases (0: none)")
	ratesFlag := flag.String("fanout-rates", "10000,50000", "deliveries per second of each fixed-rate fan-out, comma-separated (messages per second = this / group size)")
	flag.Float64Var(&cfg.pairRate, "pair-rate", 5, "messages per second per pair in the fixed-rate user-to-user case")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "how long each delivery case sends")
	flag.IntVar(&cfg.batch, "batch", 50, "messages per publish request in the flat-out fan-out (at most 100)")
	flag.IntVar(&cfg.window, "window", 4, "messages a sender may have on their way in the flat-out user-to-user case")
	flag.DurationVar(&cfg.drainTimeout, "drain", 5*time.Second, "how long outstanding messages may stop coming before they count as lost")
	flag.IntVar(&cfg.sources, "sources", 4, "127.0.0.x source addresses to connect from (127.0.0.2 onwards)")
	flag.IntVar(&cfg.dialWorkers, "dial-workers", 64, "connections being opened at once")
	flag.StringVar(&cfg.profileDir, "cpuprofile-dir", "", "have every server write a CPU profile into this directory")
	flag.StringVar(&cfg.out, "out", "", "also write the report to this file")
	flag.BoolVar(&cfg.warmup, "warmup", true, "start with a short run per system that is not counted")
	large := flag.Bool("large", false, "the larger run: group sizes 1000,5000,20000, 100000 idle connections (over several processes where the open-file limit requires), 16 source addresses")
	verbose := flag.Bool("v", false, "log every step")
	// The -hold mode is how a run starts the generator processes of an
	// idle population split over several processes (shard.go).
	holdSystem := flag.String("hold", "", "internal: hold connections of this system for a sharded idle run")
	holdAddr := flag.String("hold-addr", "", "internal: the server address for -hold")
	holdN := flag.Int("hold-n", 0, "internal: how many connections -hold opens")
	holdFor := flag.Duration("hold-for", 10*time.Minute, "internal: how long -hold holds them at most")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *large {
		*sizesFlag, *idleFlag, cfg.sources = "1000,5000,20000", "100000", max(cfg.sources, 16)
	}
	var err error
	if cfg.sizes, err = parseInts(*sizesFlag); err != nil {
		return fmt.Errorf("-sizes: %w", err)
	}
	if cfg.idle, err = parseInts(*idleFlag); err != nil {
		return fmt.Errorf("-idle: %w", err)
	}
	for _, f := range strings.Split(*ratesFlag, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("-fanout-rates: %q is not a rate", f)
		}
		cfg.fanoutRates = append(cfg.fanoutRates, r)
	}
	for _, name := range strings.Split(*systemsFlag, ",") {
		i := slices.IndexFunc(systems, func(s *system) bool { return s.name == strings.TrimSpace(name) })
		if i < 0 {
			return fmt.Errorf("-systems: unknown system %q", name)
		}
		cfg.systems = append(cfg.systems, systems[i])
	}
	if cfg.rounds < 1 || cfg.sources < 1 || cfg.sources > 250 || cfg.batch < 1 || cfg.batch > maxBatch || cfg.window < 1 || cfg.dialWorkers < 1 {
		return fmt.Errorf("-rounds, -sources (up to 250), -batch (up to 100), -window and -dial-workers must be positive")
	}
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return err
		}
	}

	// Every connection is a descriptor in the server and one here: the
	// hard open-file limit caps what a population can be.
	if err := server.RaiseFileLimit(); err != nil {
		log.Warn("cannot raise the open-file limit", "err", err)
	}
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	maxConns := int(lim.Cur) - 500
	if *holdSystem != "" {
		if *holdN > maxConns {
			return fmt.Errorf("-hold-n: %d is above this process's open-file limit", *holdN)
		}
		return hold(cfg, *holdSystem, *holdAddr, *holdN, *holdFor, log)
	}
	capped := func(n int) int {
		if n > maxConns {
			cfg.notes = append(cfg.notes, fmt.Sprintf("%s connections asked for, %s run: the open-file limit is %s per process (RLIMIT_NOFILE, hard), and each connection takes a descriptor in the server and one in the generator",
				num(n), num(maxConns), num(int(lim.Cur))))
			return maxConns
		}
		return n
	}
	var pops []population
	for _, n := range cfg.sizes {
		pops = append(pops, population{"fanout", capped(n), 1})
	}
	for _, n := range cfg.idle {
		// An idle population needs no single process to see all of it:
		// one above the limit is split over several (shard.go).
		k := shardCount(n, maxConns)
		if k > 1 {
			cfg.notes = append(cfg.notes, fmt.Sprintf("idle %s is held by %d server processes of up to %s connections each, each with a generator process of its own, and its figures are summed over them: the open-file limit is %s per process (RLIMIT_NOFILE, hard), and each connection takes a descriptor in the server and one in the generator",
				num(n), k, num(shardShare(n, k, 0)), num(int(lim.Cur)))+
				"; its connections opened per second count all of them dialing and accepting at once")
		}
		if !slices.ContainsFunc(pops, func(p population) bool { return p.n == n }) {
			pops = append(pops, population{"idle", n, k})
		}
	}
	if cfg.pairs > 0 {
		pops = append(pops, population{"pairs", capped(2*cfg.pairs) / 2 * 2, 1})
	}

	// Each source address has the ephemeral port range to itself, and a
	// population's ports may still be in TIME_WAIT when the next system's
	// connect: ask for room for two populations.
	ports := ephemeralPorts()
	for _, p := range pops {
		if need := (2*p.n + ports - 1) / ports; need > cfg.sources {
			return fmt.Errorf("%s connections need at least -sources %d (%d ephemeral ports per source address, and room for the previous run's in TIME_WAIT)", num(p.n), need, ports)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := newGen(cfg, log)
	start := time.Now()
	// The generator's first run, and each server binary's first start, pay
	// for warming up (heap growth, page faults, cold caches); a short run
	// per system that counts for nothing takes that out of round 1.
	if smallest := slices.MinFunc(pops, func(a, b population) int { return a.n - b.n }); cfg.warmup {
		d := cfg.duration
		cfg.duration = time.Second
		for _, sys := range cfg.systems {
			if _, err := g.runPopulation(ctx, sys, population{"fanout", min(smallest.n, 1000), 1}, 0); err != nil {
				log.Warn("warm-up failed", "system", sys.name, "err", err)
			}
		}
		cfg.duration = d
	}
	var samples []sample
	var failures []string
	for round := range cfg.rounds {
		for _, pop := range pops {
			for k := range cfg.systems {
				sys := cfg.systems[(k+round)%len(cfg.systems)]
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s, err := g.runPopulation(ctx, sys, pop, round+1)
				samples = append(samples, s...)
				if err != nil {
					log.Error("run failed", "system", sys.name, "population", pop.String(), "round", round+1, "err", err)
					failures = append(failures, fmt.Sprintf("%s, %s, round %d: %v", sys.name, pop, round+1, err))
				}
			}
		}
	}
	wall := time.Since(start)

	var b strings.Builder
	report(&b, cfg, pops, samples, failures, wall)
	fmt.Print(b.String())
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ephemeralPorts returns the size of the kernel's ephemeral port range
// (net.ipv4.ip_local_port_range), or Linux's default when it cannot be read.
func ephemeralPorts() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && hi >= lo {
				return hi - lo + 1
			}
		}
	}
	return 60999 - 32768 + 1
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 2 {
			return nil, fmt.Errorf("%q is not a size", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// machine describes the machine for the report.
func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				mem = fmt.Sprintf(", %.0f GiB memory", float64(kb)/(1<<20))
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d CPUs (%s)%s, Linux %s, %s", runtime.NumCPU(), model, mem, strings.TrimSpace(string(kernel)), runtime.Version())
}
