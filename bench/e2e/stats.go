package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
)

// errNotApplied is returned by parseApplied for a log line that is not a
// "revocation applied" record.
var errNotApplied = errors.New("bench: not a revocation-applied line")

// appliedMsg is the slog message cmd/example -log-applied writes.
const appliedMsg = "revocation applied"

// parseApplied reads one JSON log line of cmd/example -log-applied and
// returns the event id and the instant the replica applied it. It reads
// the three fields it needs by their exact spelling instead of decoding
// the whole line: eight replicas report every event, and at the batch
// phase's rates a full JSON decode per line took a noticeable share of
// the CPU the benchmark measures. Event ids need no JSON escape
// ([A-Za-z0-9._:-]), so one with an escape is not a valid report.
func parseApplied(line []byte) (id string, applied time.Time, err error) {
	if len(line) == 0 || line[0] != '{' || line[len(line)-1] != '}' || !bytes.Contains(line, []byte(`"msg":"`+appliedMsg+`"`)) {
		return "", time.Time{}, errNotApplied
	}
	_, rest, ok := bytes.Cut(line, []byte(`,"id":"`))
	if !ok {
		return "", time.Time{}, errNotApplied
	}
	idb, _, ok := bytes.Cut(rest, []byte{'"'})
	if !ok || len(idb) == 0 || bytes.IndexByte(idb, '\\') >= 0 {
		return "", time.Time{}, errNotApplied
	}
	_, rest, ok = bytes.Cut(line, []byte(`,"applied_unix_ns":`))
	if !ok {
		return "", time.Time{}, errNotApplied
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	ns, perr := strconv.ParseInt(string(rest[:end]), 10, 64)
	if perr != nil || end == len(rest) || (rest[end] != ',' && rest[end] != '}') {
		return "", time.Time{}, errNotApplied
	}
	return string(idb), time.Unix(0, ns), nil
}

// call is one revoke call the driver made.
type call struct {
	// Start is when the request was sent; every propagation is measured
	// from it.
	Start time.Time
	// Took is the call's latency (until the response was read).
	Took time.Duration
	// ID is the event id the revoker answered with; empty on failure.
	ID string
	// Err is why the call failed, if it did.
	Err error
}

// rateResult is what one rate produced.
type rateResult struct {
	// Target is the rate asked for, revocations per second.
	Target float64
	// Calls are every call made, in sending order.
	Calls []call
	// Elapsed is from the first call's start to the last call's end.
	Elapsed time.Duration
	// Applied holds, per acknowledged call (same index as Calls) and per
	// replica, the propagation time; a negative value means the replica
	// never reported the event applied within the wait.
	Applied [][]time.Duration
}

// summary is the row of the table for one rate.
type summary struct {
	Target, Sustained     float64
	Sent, Acked, Failed   int
	Missing               int
	Prop, Call            quantiles
	PropSamples, CallsSmp int
}

// quantiles are p50, p99 and max of a sample.
type quantiles struct{ P50, P99, Max time.Duration }

// quantile returns the q-quantile (0..1) of sorted by the nearest-rank
// method; 0 for an empty sample.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

func quantilesOf(sorted []time.Duration) quantiles {
	return quantiles{P50: quantile(sorted, .50), P99: quantile(sorted, .99), Max: quantile(sorted, 1)}
}

// propagations returns every (acknowledged call, replica) propagation time
// of r, sorted, and how many were never reported applied.
func (r rateResult) propagations() (sorted []time.Duration, missing int) {
	for _, per := range r.Applied {
		for _, d := range per {
			if d < 0 {
				missing++
				continue
			}
			sorted = append(sorted, d)
		}
	}
	slices.Sort(sorted)
	return sorted, missing
}

// callLatencies returns the latencies of the acknowledged calls, sorted.
func (r rateResult) callLatencies() []time.Duration {
	var out []time.Duration
	for _, c := range r.Calls {
		if c.Err == nil {
			out = append(out, c.Took)
		}
	}
	slices.Sort(out)
	return out
}

// summarize computes the table row of r.
func (r rateResult) summarize() summary {
	prop, missing := r.propagations()
	calls := r.callLatencies()
	s := summary{
		Target: r.Target, Sent: len(r.Calls), Acked: len(calls), Failed: len(r.Calls) - len(calls),
		Missing: missing, Prop: quantilesOf(prop), Call: quantilesOf(calls),
		PropSamples: len(prop), CallsSmp: len(calls),
	}
	if r.Elapsed > 0 {
		s.Sustained = float64(len(calls)) / r.Elapsed.Seconds()
	}
	return s
}

// ms formats d in milliseconds with two decimals.
func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }

// writeTable writes the results as a Markdown table (readable as text too).
func writeTable(w io.Writer, rows []summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| target/s\t sustained/s\t sent\t acked\t failed\t samples\t missing\t prop p50 ms\t prop p99 ms\t prop max ms\t call p50 ms\t call p99 ms\t call max ms\t")
	fmt.Fprintln(tw, "|---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t")
	for _, s := range rows {
		fmt.Fprintf(tw, "| %g\t %.1f\t %d\t %d\t %d\t %d\t %d\t %s\t %s\t %s\t %s\t %s\t %s\t\n",
			s.Target, s.Sustained, s.Sent, s.Acked, s.Failed, s.PropSamples, s.Missing,
			ms(s.Prop.P50), ms(s.Prop.P99), ms(s.Prop.Max), ms(s.Call.P50), ms(s.Call.P99), ms(s.Call.Max))
	}
	return tw.Flush()
}

// writeCSV writes the raw numbers: one row per call, with its number within
// the rate, its start (ms since the rate's first call), latency and error,
// then the propagation time to each replica in ms (empty when the call
// failed or the replica never reported it), then its phase ("rate", or
// "wait" for the ?wait=enforced phase, which may be nil) and, for the wait
// phase, the answer's enforcement: took_ms, complete, confirmed, replicas.
func writeCSV(w io.Writer, results []rateResult, wait *waitResult, replicas int) error {
	var b strings.Builder
	b.WriteString("target_rate,call,start_ms,call_ms,error")
	for i := range replicas {
		fmt.Fprintf(&b, ",replica%d_ms", i)
	}
	b.WriteString(",phase,enforcement_took_ms,enforcement_complete,enforcement_confirmed,enforcement_replicas\n")
	row := func(r rateResult, i int, phase string, e *revoker.Enforcement) {
		c := r.Calls[i]
		errText := ""
		if c.Err != nil {
			errText = strings.NewReplacer(",", ";", "\n", " ", "\"", "'").Replace(c.Err.Error())
		}
		fmt.Fprintf(&b, "%g,%d,%.3f,%s,%s", r.Target, i, float64(c.Start.Sub(r.Calls[0].Start))/1e6, ms(c.Took), errText)
		for j := range replicas {
			b.WriteByte(',')
			if i < len(r.Applied) && j < len(r.Applied[i]) && r.Applied[i][j] >= 0 {
				b.WriteString(ms(r.Applied[i][j]))
			}
		}
		b.WriteString("," + phase)
		if e != nil {
			fmt.Fprintf(&b, ",%d,%t,%d,%d\n", e.TookMs, e.Complete, e.Confirmed, e.Replicas)
		} else {
			b.WriteString(",,,,\n")
		}
	}
	for _, r := range results {
		for i := range r.Calls {
			row(r, i, "rate", nil)
		}
	}
	if wait != nil {
		for i := range wait.Calls {
			var e *revoker.Enforcement
			if i < len(wait.Answers) {
				e = wait.Answers[i].Enforcement
			}
			row(wait.rateResult, i, "wait", e)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// plotColors are the line colours of the CDF, one per rate.
var plotColors = [...]string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// writeCDF writes an SVG plot of the cumulative distribution of the
// propagation times (solid) and revoke-call latencies (dashed) of every
// rate, on a logarithmic millisecond axis.
func writeCDF(w io.Writer, results []rateResult, title string) error {
	const (
		width, height            = 760.0, 440.0
		left, right, top, bottom = 64.0, 200.0, 40.0, 52.0
		maxPoints                = 400
	)
	pw, ph := width-left-right, height-top-bottom
	type series struct {
		label, color string
		dashed       bool
		sorted       []time.Duration
	}
	var all []series
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, r := range results {
		color := plotColors[i%len(plotColors)]
		prop, _ := r.propagations()
		for _, s := range []series{
			{fmt.Sprintf("%g/s propagation", r.Target), color, false, prop},
			{fmt.Sprintf("%g/s revoke call", r.Target), color, true, r.callLatencies()},
		} {
			if len(s.sorted) == 0 {
				continue
			}
			lo = math.Min(lo, math.Max(float64(s.sorted[0])/1e6, 1e-3))
			hi = math.Max(hi, float64(s.sorted[len(s.sorted)-1])/1e6)
			all = append(all, s)
		}
	}
	if len(all) == 0 {
		lo, hi = 0.1, 1000
	}
	decLo, decHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if decHi <= decLo {
		decHi = decLo + 1
	}
	x := func(msv float64) float64 {
		v := math.Log10(math.Max(msv, math.Pow(10, decLo)))
		return left + (v-decLo)/(decHi-decLo)*pw
	}
	y := func(p float64) float64 { return top + (1-p)*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%g" height="%g" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%g" y="22" font-size="14" text-anchor="middle">%s</text>`+"\n", left+pw/2, xmlEscape(title))
	// Grid and axes.
	for d := decLo; d <= decHi; d++ {
		px := x(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#ddd"/>`+"\n", px, top, px, top+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", px, top+ph+16, strconv.FormatFloat(math.Pow(10, d), 'g', -1, 64))
	}
	for _, p := range []float64{0, .25, .5, .75, .9, .99} {
		py := y(p)
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", left, py, left+pw, py)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, py+4, p)
	}
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="black"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">milliseconds since the revoke call started (log scale)</text>`+"\n", left+pw/2, height-12)
	fmt.Fprintf(&b, `<text x="16" y="%g" text-anchor="middle" transform="rotate(-90 16 %g)">fraction of (revocation, replica) pairs</text>`+"\n", top+ph/2, top+ph/2)
	// Curves: a step CDF thinned to maxPoints points.
	for i, s := range all {
		n := len(s.sorted)
		step := max(1, n/maxPoints)
		var pts strings.Builder
		for k := 0; k < n; k += step {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(float64(s.sorted[k])/1e6), y(float64(k+1)/float64(n)))
		}
		fmt.Fprintf(&pts, "%.1f,%.1f", x(float64(s.sorted[n-1])/1e6), y(1))
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="5,4"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8"%s points="%s"/>`+"\n", s.color, dash, pts.String())
		ly := top + 10 + float64(i)*18
		fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="1.8"%s/>`+"\n", left+pw+12, ly, left+pw+40, ly, s.color, dash)
		fmt.Fprintf(&b, `<text x="%g" y="%g">%s (n=%d)</text>`+"\n", left+pw+46, ly+4, xmlEscape(s.label), n)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
