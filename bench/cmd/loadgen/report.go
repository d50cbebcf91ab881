package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Metric names, as the table shows them.
const (
	mRSS        = "RSS per connection, KiB"
	mHeap       = "heap per connection, KiB"
	mGoroutines = "goroutines per connection"
	mConnRate   = "connections opened per second"
	mDeliveries = "deliveries per second"
	mP50        = "latency p50, ms"
	mP99        = "latency p99, ms"
	mMax        = "latency max, ms"
	mLost       = "lost messages, all rounds"
	mExpected   = "expected" // not shown: the denominator of mLost
	mServerCPU  = "server CPU per 1,000 deliveries, ms"
	mGenCPU     = "generator CPU per 1,000 deliveries, ms"
)

// metricOrder lists the metrics a case shows, in order, with whether a
// higher value is better.
var metricOrder = []struct {
	name   string
	higher bool
}{
	{mRSS, false}, {mHeap, false}, {mGoroutines, false}, {mConnRate, true},
	{mDeliveries, true}, {mP50, false}, {mP99, false}, {mMax, false}, {mLost, false},
	{mServerCPU, false}, {mGenCPU, false},
}

// report writes the markdown report.
func report(b *strings.Builder, cfg *config, pops []population, samples []sample, failures []string, wall time.Duration) {
	var names []string
	for _, s := range cfg.systems {
		names = append(names, s.name)
	}
	// values[case][metric][system] holds one value per round.
	values := map[string]map[string]map[string][]float64{}
	var cases []string
	for _, s := range samples {
		if values[s.caseName] == nil {
			values[s.caseName] = map[string]map[string][]float64{}
			cases = append(cases, s.caseName)
		}
		if values[s.caseName][s.metric] == nil {
			values[s.caseName][s.metric] = map[string][]float64{}
		}
		values[s.caseName][s.metric][s.system] = append(values[s.caseName][s.metric][s.system], s.value)
	}

	fmt.Fprintf(b, "Machine: %s.\n\n", machine())
	fmt.Fprintf(b, "Command: `%s`, %d rounds, wall time %s.\n\n", strings.Join(commandLine(), " "), cfg.rounds, wall.Round(time.Second))
	fmt.Fprintf(b, "Each cell is the median over the rounds and, in parentheses, its ratio to the best system in the row (1.00× is the best; whether higher or lower is better depends on the metric). Lost messages are summed over the rounds.\n\n")
	for _, n := range cfg.notes {
		fmt.Fprintf(b, "Note: %s.\n\n", n)
	}

	fmt.Fprintf(b, "| case | metric | %s |\n|---|---|%s\n", strings.Join(names, " | "), strings.Repeat("--:|", len(names)))
	for _, c := range cases {
		for _, m := range metricOrder {
			bySys := values[c][m.name]
			if bySys == nil {
				continue
			}
			cells := make([]string, len(names))
			if m.name == mLost {
				for i, n := range names {
					lost, exp := sum(bySys[n]), sum(values[c][mExpected][n])
					switch {
					case len(bySys[n]) == 0:
						cells[i] = "–"
					case lost == 0:
						cells[i] = "0"
					default:
						cells[i] = fmt.Sprintf("%s (%.2g%%)", num(int(lost)), 100*lost/exp)
					}
				}
			} else {
				meds := make([]float64, len(names))
				best := math.NaN()
				for i, n := range names {
					meds[i] = median(bySys[n])
					if math.IsNaN(meds[i]) {
						continue
					}
					if math.IsNaN(best) || (m.higher && meds[i] > best) || (!m.higher && meds[i] < best) {
						best = meds[i]
					}
				}
				for i := range names {
					switch {
					case math.IsNaN(meds[i]):
						cells[i] = "–"
					case best == 0 && meds[i] == 0:
						cells[i] = sig(meds[i]) + " (1.00×)"
					case best == 0:
						cells[i] = sig(meds[i])
					default:
						cells[i] = fmt.Sprintf("%s (%.2f×)", sig(meds[i]), meds[i]/best)
					}
				}
			}
			fmt.Fprintf(b, "| %s | %s | %s |\n", c, m.name, strings.Join(cells, " | "))
		}
	}

	growth(b, cfg, pops, names, values)

	if len(failures) > 0 {
		fmt.Fprintf(b, "\nFailed runs (their figures are missing above):\n\n")
		for _, f := range failures {
			fmt.Fprintf(b, "- %s\n", f)
		}
	}
}

func commandLine() []string {
	args := []string{"loadgen"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " \t'\"") {
			a = strconv.Quote(a)
		}
		args = append(args, a)
	}
	return args
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sum(v []float64) float64 {
	t := 0.0
	for _, x := range v {
		t += x
	}
	return t
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func sigOrDash(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return sig(v)
}

// sig formats v with three significant digits and thousands separators.
func sig(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return num(int(math.Round(v)))
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case a == 0:
		return "0"
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// num formats n with thousands separators.
func num(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtRate formats a rate in messages per second.
func fmtRate(r float64) string {
	if r == math.Trunc(r) {
		return num(int(r))
	}
	return sig(r)
}

// growth writes how memory per connection and server CPU per delivery
// change with the number of connections: RSS per connection by population,
// and server CPU per 1,000 deliveries by group size, at the first fixed
// rate (the same offered load at every size) and flat out.
func growth(b *strings.Builder, cfg *config, pops []population, names []string, values map[string]map[string]map[string][]float64) {
	var memPops, cpuPops []population
	for _, p := range pops {
		if p.kind != "pairs" {
			memPops = append(memPops, p)
		}
		if p.kind == "fanout" {
			cpuPops = append(cpuPops, p)
		}
	}
	slices.SortFunc(memPops, func(a, b population) int { return a.n - b.n })
	slices.SortFunc(cpuPops, func(a, b population) int { return a.n - b.n })
	type column struct {
		title  string
		pops   []population
		cs     func(population) string
		metric string
	}
	cols := []column{{"RSS per connection, KiB", memPops, func(p population) string { return "idle " + num(p.n) }, mRSS}}
	if len(cfg.fanoutRates) > 0 {
		r := cfg.fanoutRates[0]
		cols = append(cols, column{fmt.Sprintf("server CPU per 1,000 deliveries at %s deliveries/s, ms", num(int(r))), cpuPops,
			func(p population) string {
				return fmt.Sprintf("fan-out %s, %s msg/s", num(p.n), fmtRate(r/float64(p.n)))
			}, mServerCPU})
	}
	cols = append(cols, column{"server CPU per 1,000 deliveries flat out, ms", cpuPops,
		func(p population) string { return fmt.Sprintf("fan-out %s, flat out", num(p.n)) }, mServerCPU})
	for _, col := range cols {
		if len(col.pops) < 2 {
			continue
		}
		fmt.Fprintf(b, "\nGrowth of %s (medians), by connections; the last column is the largest size over the smallest.\n\n", col.title)
		head := []string{"system"}
		for _, p := range col.pops {
			head = append(head, num(p.n))
		}
		head = append(head, "growth")
		fmt.Fprintf(b, "| %s |\n|---|%s\n", strings.Join(head, " | "), strings.Repeat("--:|", len(head)-1))
		for _, n := range names {
			row := []string{n}
			var first, last float64
			for i, p := range col.pops {
				v := median(values[col.cs(p)][col.metric][n])
				row = append(row, sigOrDash(v))
				if i == 0 {
					first = v
				}
				last = v
			}
			row = append(row, ratio(last, first))
			fmt.Fprintf(b, "| %s |\n", strings.Join(row, " | "))
		}
	}
}
