package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/signalhub/signalhub/bench/internal/payload"
)

// A population is the set of connections one server process holds for a
// run, and the cases measured on it.
type population struct {
	kind   string // "fanout": N members of one group; "idle": the same, memory only; "pairs": N/2 pairs
	n      int    // connections
	shards int    // server processes holding them (idle only; see shard.go); 1 otherwise
}

func (p population) String() string {
	switch p.kind {
	case "pairs":
		return fmt.Sprintf("%s pairs", num(p.n/2))
	case "idle":
		if p.shards > 1 {
			return fmt.Sprintf("idle %s over %d processes", num(p.n), p.shards)
		}
		return fmt.Sprintf("idle %s", num(p.n))
	default:
		return fmt.Sprintf("%s %s", p.kind, num(p.n))
	}
}

// group is the group every fan-out connection joins.
const group = "bench"

// gen is the load generator.
type gen struct {
	cfg     *config
	log     *slog.Logger
	dialers []*http.Client // one per source address
	runs    atomic.Int64   // the last run number handed out
	rc      receiver
}

func newGen(cfg *config, log *slog.Logger) *gen {
	g := &gen{cfg: cfg, log: log}
	for i := range cfg.sources {
		ip := net.IPv4(127, 0, 0, byte(2+i))
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 30 * time.Second}
		g.dialers = append(g.dialers, &http.Client{Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: cfg.dialWorkers,
		}})
	}
	return g
}

// sample is one measured figure of one system in one round.
type sample struct {
	caseName string
	metric   string
	system   string
	round    int
	value    float64
}

// runPopulation starts sys's server, connects pop and measures its cases.
func (g *gen) runPopulation(ctx context.Context, sys *system, pop population, round int) (out []sample, err error) {
	if pop.shards > 1 {
		return g.runSharded(ctx, sys, pop, round)
	}
	log := g.log.With("system", sys.name, "population", pop.String(), "round", round)
	add := func(caseName, metric string, v float64) {
		out = append(out, sample{caseName, metric, sys.name, round, v})
	}
	var args []string
	if g.cfg.profileDir != "" {
		args = append(args, "-cpuprofile", filepath.Join(g.cfg.profileDir,
			fmt.Sprintf("%s-%s-%d-r%d.prof", sys.name, pop.kind, pop.n, round)))
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.runTimeout(pop))
	defer cancel()
	p, err := startServer(ctx, filepath.Join(g.cfg.bin, sys.bin), args, log)
	if err != nil {
		return nil, err
	}
	var clients []*client
	var readers sync.WaitGroup
	readCtx, stopReading := context.WithCancel(context.Background())
	defer func() {
		p.stop()
		closeClients(clients, stopReading, &readers)
	}()

	s0, err := p.stats(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	ka := startKeepAlive(readCtx, sys)
	defer ka.end()
	clients, err = g.connect(ctx, readCtx, sys, p.addr, pop, &readers, ka)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := p.waitConns(ctx, pop.n, g.cfg.runTimeout(pop)/2); err != nil {
		return nil, err
	}
	connectTime := time.Since(start)
	log.Info("connected", "conns", pop.n, "took", connectTime.Round(time.Millisecond))

	if pop.kind != "pairs" {
		s1, err := p.stats(ctx)
		if err != nil {
			return nil, err
		}
		c := "idle " + num(pop.n)
		add(c, mRSS, float64(s1.RSS-s0.RSS)/float64(pop.n)/1024)
		add(c, mHeap, float64(s1.HeapInuse-s0.HeapInuse)/float64(pop.n)/1024)
		add(c, mGoroutines, float64(s1.Goroutines-s0.Goroutines)/float64(pop.n))
		add(c, mConnRate, float64(pop.n)/connectTime.Seconds())
	}

	switch pop.kind {
	case "fanout":
		for _, total := range g.cfg.fanoutRates {
			rate := total / float64(pop.n)
			d, err := g.fanoutFixed(ctx, p, pop.n, rate)
			if err != nil {
				return out, fmt.Errorf("fan-out at %g msg/s: %w", rate, err)
			}
			d.add(fmt.Sprintf("fan-out %s, %s msg/s", num(pop.n), fmtRate(rate)), add)
			log.Info("fan-out fixed rate", "msg_per_s", rate, "delivered", d.delivered, "lost", d.lost, "p99", time.Duration(d.p99))
		}
		d, err := g.fanoutFlat(ctx, p, pop.n)
		if err != nil {
			return out, fmt.Errorf("fan-out flat out: %w", err)
		}
		d.add(fmt.Sprintf("fan-out %s, flat out", num(pop.n)), add)
		log.Info("fan-out flat out", "delivered", d.delivered, "lost", d.lost, "per_s", int(d.perSecond()), "stalled", d.stalled)
	case "pairs":
		pairs := pop.n / 2
		d, err := g.pairsFixed(ctx, p, sys, clients, pairs)
		if err != nil {
			return out, fmt.Errorf("pairs at a fixed rate: %w", err)
		}
		d.add(fmt.Sprintf("user to user, %s pairs, %s msg/s each", num(pairs), fmtRate(g.cfg.pairRate)), add)
		log.Info("pairs fixed rate", "delivered", d.delivered, "lost", d.lost, "p99", time.Duration(d.p99))
		d, err = g.pairsFlat(ctx, p, sys, clients, pairs)
		if err != nil {
			return out, fmt.Errorf("pairs flat out: %w", err)
		}
		d.add(fmt.Sprintf("user to user, %s pairs, flat out", num(pairs)), add)
		log.Info("pairs flat out", "delivered", d.delivered, "lost", d.lost, "per_s", int(d.perSecond()), "stalled", d.stalled)
	}
	if n := g.rc.stale.Swap(0); n > 0 {
		log.Info("messages that arrived after their case ended", "count", n)
	}
	return out, nil
}

// connect opens pop's connections, dialWorkers at a time, each with its
// reader running and, from the moment it is open, kept alive by ka.
func (g *gen) connect(ctx, readCtx context.Context, sys *system, addr string, pop population, readers *sync.WaitGroup, ka *keepAliver) ([]*client, error) {
	clients := make([]*client, pop.n)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range min(g.cfg.dialWorkers, pop.n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= pop.n || ctx.Err() != nil {
					return
				}
				user, grp, pair := "u"+strconv.Itoa(i), group, -1
				if pop.kind == "pairs" {
					grp = ""
					if half := pop.n / 2; i < half {
						user = "s" + strconv.Itoa(i)
					} else {
						user, pair = "r"+strconv.Itoa(i-half), i-half
					}
				}
				var ws *websocket.Conn
				var rest []byte
				var err error
				// A refused dial (a full accept queue) is worth two retries.
				for try := range 3 {
					ws, rest, err = sys.dial(ctx, g.dialers[i%len(g.dialers)], addr, user, grp)
					if err == nil || ctx.Err() != nil {
						break
					}
					g.log.Debug("dial failed", "try", try, "err", err)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("connection %d: %w", i, err); cancel() })
					return
				}
				ws.SetReadLimit(1 << 20)
				c := &client{ws: ws, sys: sys, idx: i, pair: pair, last: -1}
				clients[i] = c
				ka.add(c)
				readers.Add(1)
				go c.readLoop(readCtx, &g.rc, rest, readers)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return clients, firstErr
	}
	return clients, nil
}

// closeClients stops the clients' readers, drops every connection and
// waits for the readers to return.
func closeClients(clients []*client, stopReading context.CancelFunc, readers *sync.WaitGroup) {
	stopReading()
	for _, c := range clients {
		if c != nil {
			c.ws.CloseNow()
		}
	}
	readers.Wait()
}

// keepAliver writes sys.keepAlive to every connection added to it, every
// keepAliveEvery, from the moment it is added: a population that takes
// longer to open than the server's client timeout must not lose its first
// connections while the last ones open.
type keepAliver struct {
	mu      sync.Mutex
	clients []*client
	stop    context.CancelFunc
	done    chan struct{}
}

// startKeepAlive starts keeping sys's connections alive; nil when the
// system needs no keep-alive from its clients. stop ends it.
func startKeepAlive(ctx context.Context, sys *system) *keepAliver {
	if sys.keepAlive == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	k := &keepAliver{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(k.done)
		t := time.NewTicker(keepAliveEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			k.mu.Lock()
			clients := k.clients[:len(k.clients):len(k.clients)]
			k.mu.Unlock()
			for _, c := range clients {
				if ctx.Err() != nil {
					return
				}
				_ = c.ws.Write(ctx, websocket.MessageText, sys.keepAlive)
			}
		}
	}()
	return k
}

// add has c kept alive; a nil keepAliver does nothing.
func (k *keepAliver) add(c *client) {
	if k == nil {
		return
	}
	k.mu.Lock()
	k.clients = append(k.clients, c)
	k.mu.Unlock()
}

// end stops the keep-alive and waits for its goroutine.
func (k *keepAliver) end() {
	if k == nil {
		return
	}
	k.stop()
	<-k.done
}

// keepAliveEvery is how often a client that must ping does: SignalR
// clients ping every 15 s and the hub gives up after 30 s of silence.
const keepAliveEvery = 10 * time.Second

// delivery is what a delivery case measured.
type delivery struct {
	delivered, expected, lost int64
	elapsed                   time.Duration
	p50, p99, max             int64 // ns
	serverCPU, genCPU         time.Duration
	stalled                   bool
}

func (d delivery) perSecond() float64 {
	if d.elapsed <= 0 {
		return 0
	}
	return float64(d.delivered) / d.elapsed.Seconds()
}

func (d delivery) add(caseName string, add func(caseName, metric string, v float64)) {
	add(caseName, mDeliveries, d.perSecond())
	add(caseName, mP50, float64(d.p50)/1e6)
	add(caseName, mP99, float64(d.p99)/1e6)
	add(caseName, mMax, float64(d.max)/1e6)
	add(caseName, mLost, float64(d.lost))
	add(caseName, mExpected, float64(d.expected))
	if d.delivered > 0 {
		add(caseName, mServerCPU, float64(d.serverCPU)/1e6/(float64(d.delivered)/1000))
		add(caseName, mGenCPU, float64(d.genCPU)/1e6/(float64(d.delivered)/1000))
	}
}

// measure is a phase in progress.
type measure struct {
	ph         *phase
	p          *proc
	t0         time.Time
	srv0, gen0 time.Duration
}

// begin starts a phase; pairs > 0 prepares it for a closed loop per pair.
func (g *gen) begin(p *proc, pairs int) (*measure, error) {
	ph := &phase{run: g.runs.Add(1)}
	if pairs > 0 {
		ph.pairs = make([]pairState, pairs)
		for i := range ph.pairs {
			ph.pairs[i].wake = make(chan struct{}, 1)
		}
	}
	g.rc.cur.Store(ph)
	srv0, err := p.cpu()
	if err != nil {
		return nil, err
	}
	return &measure{ph: ph, p: p, t0: time.Now(), srv0: srv0, gen0: selfCPU()}, nil
}

// end waits for expected deliveries as long as they keep coming (up to
// drainTimeout without one) and returns the figures. The phase ends at its
// last delivery.
func (g *gen) end(ctx context.Context, m *measure, expected int64, stalled bool) (delivery, error) {
	m.ph.delivered.waitProgress(ctx, expected, g.cfg.drainTimeout)
	srv1, err := m.p.cpu()
	gen1 := selfCPU()
	g.rc.cur.Store(nil)
	if err != nil {
		return delivery{}, err
	}
	d := delivery{
		delivered: m.ph.delivered.load(),
		expected:  expected,
		serverCPU: srv1 - m.srv0,
		genCPU:    gen1 - m.gen0,
		stalled:   stalled,
	}
	d.lost = max(0, d.expected-d.delivered)
	if last := m.ph.lastRecv.Load(); last > 0 {
		d.elapsed = time.Duration(last - m.t0.UnixNano())
	}
	q := m.ph.hist.quantiles(0.5, 0.99)
	d.p50, d.p99, d.max = q[0], q[1], m.ph.hist.max.Load()
	if n := m.ph.dups.Load(); n > 0 {
		g.log.Warn("messages delivered twice or out of order", "count", n)
	}
	return d, nil
}

// fanoutFixed publishes to the group of n at rate messages per second for
// the configured duration, paced by the server.
func (g *gen) fanoutFixed(ctx context.Context, p *proc, n int, rate float64) (delivery, error) {
	count := max(1, int(rate*g.cfg.duration.Seconds()))
	m, err := g.begin(p, 0)
	if err != nil {
		return delivery{}, err
	}
	if err := p.publish(ctx, group, count, rate, m.ph.run, 0); err != nil {
		return delivery{}, err
	}
	d, err := g.end(ctx, m, int64(count)*int64(n), false)
	// The schedule's period is count/rate; a system that keeps up
	// delivers at rate*n over it, not over the shorter span from the first
	// message to the last.
	d.elapsed = max(d.elapsed, time.Duration(float64(count)/rate*float64(time.Second)))
	return d, err
}

// fanoutFlat publishes to the group of n as fast as the receivers take it,
// in a closed loop: batches of cfg.batch messages, published back to back,
// and batch b only once batch b-2 has reached every member. At most two
// batches are ever queued for a connection, well within every system's
// bounds, and every connection sees the same pattern whatever n is. At
// least two batches are sent, however long they take.
func (g *gen) fanoutFlat(ctx context.Context, p *proc, n int) (delivery, error) {
	k := g.cfg.batch
	m, err := g.begin(p, 0)
	if err != nil {
		return delivery{}, err
	}
	deadline := m.t0.Add(g.cfg.duration)
	b, stalled := 0, false
	for b < 2 || time.Now().Before(deadline) {
		if b >= 2 && !m.ph.delivered.waitProgress(ctx, int64(b-1)*int64(k)*int64(n), g.cfg.drainTimeout) {
			stalled = true
			break
		}
		if err := p.publish(ctx, group, k, 0, m.ph.run, int64(b*k)); err != nil {
			return delivery{}, err
		}
		b++
	}
	return g.end(ctx, m, int64(b)*int64(k)*int64(n), stalled)
}

// maxBatch bounds a flat-out batch, so that the two batches a connection
// may have queued (200 messages) fit in melody's and the raw server's
// buffers of 256.
const maxBatch = 100

// pairsFixed has each sender send to its receiver at pairRate messages per
// second, all paced by one goroutine that writes whatever is due every
// paceEvery.
func (g *gen) pairsFixed(ctx context.Context, p *proc, sys *system, clients []*client, pairs int) (delivery, error) {
	total := g.cfg.pairRate * float64(pairs)
	count := max(pairs, int(total*g.cfg.duration.Seconds()))
	m, err := g.begin(p, 0)
	if err != nil {
		return delivery{}, err
	}
	t := time.NewTicker(paceEvery)
	defer t.Stop()
	var buf []byte
	sent := 0
	for sent < count {
		select {
		case <-ctx.Done():
			return delivery{}, ctx.Err()
		case <-t.C:
		}
		due := min(count, int(time.Since(m.t0).Seconds()*total)+1)
		for ; sent < due; sent++ {
			pair := sent % pairs
			if buf, err = sendTo(ctx, sys, clients[pair], buf, pair, m.ph.run, int64(sent/pairs)); err != nil {
				return delivery{}, err
			}
		}
	}
	d, err := g.end(ctx, m, int64(count), false)
	d.elapsed = max(d.elapsed, time.Duration(float64(count)/total*float64(time.Second)))
	return d, err
}

// paceEvery is the pacing tick of pairsFixed.
const paceEvery = 5 * time.Millisecond

// pairsFlat has every sender send to its receiver as fast as it goes, each
// pair in a closed loop of its own: a sender keeps at most window messages
// on their way and waits for its receiver before the next.
func (g *gen) pairsFlat(ctx context.Context, p *proc, sys *system, clients []*client, pairs int) (delivery, error) {
	m, err := g.begin(p, pairs)
	if err != nil {
		return delivery{}, err
	}
	deadline := m.t0.Add(g.cfg.duration)
	var sent atomic.Int64
	var stalled atomic.Bool
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	window := int64(g.cfg.window)
	for i := range pairs {
		wg.Go(func() {
			ps := &m.ph.pairs[i]
			stall := time.NewTimer(time.Hour)
			defer stall.Stop()
			var buf []byte
			var err error
			seq := int64(0)
			defer func() { sent.Add(seq) }()
			for time.Now().Before(deadline) {
				for seq-ps.recv.Load() >= window {
					stall.Reset(g.cfg.drainTimeout)
					select {
					case <-ps.wake:
						continue
					case <-stall.C:
						stalled.Store(true)
					case <-ctx.Done():
					}
					return
				}
				if buf, err = sendTo(ctx, sys, clients[i], buf, i, m.ph.run, seq); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				seq++
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return delivery{}, firstErr
	}
	return g.end(ctx, m, sent.Load(), stalled.Load())
}

// sendTo writes one message from sender to the receiver of pair.
func sendTo(ctx context.Context, sys *system, c *client, buf []byte, pair int, run, seq int64) ([]byte, error) {
	var msg [payload.Size]byte
	body := payload.Append(msg[:0], run, seq, time.Now().UnixNano())
	buf = sys.appendSend(buf[:0], "r"+strconv.Itoa(pair), body)
	return buf, c.ws.Write(ctx, websocket.MessageText, buf)
}
