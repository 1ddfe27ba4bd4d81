package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
)

// waitMargin is issue 12's target for ?wait=enforced: its p99 round trip
// at most this much above the propagation p99 of plain revocations at the
// same rate.
const waitMargin = 5 * time.Millisecond

// waitResult is what the ?wait=enforced phase produced: its calls, paced
// and measured as a rate's, and the revoker's answer to each.
type waitResult struct {
	rateResult
	// Answers has the same index as Calls; the zero Result where the call
	// failed.
	Answers []revoker.Result
}

// waitSummary is the row of the wait table.
type waitSummary struct {
	Target, Sustained     float64
	Sent, Acked, Complete int
	// ReplicasMin and ReplicasMax bound the live fleet the answers
	// counted; ConfirmedMin is the fewest replicas an answer confirmed.
	ReplicasMin, ReplicasMax, ConfirmedMin int
	// Took is the answers' enforcement.took_ms (the wait after the
	// stream's acknowledgement, whole milliseconds); RoundTrip the client's
	// call latency.
	Took, RoundTrip quantiles
	// Prop is this phase's propagation over (revocation, replica) pairs;
	// AllApplied, per revocation, until the last replica applied it (what
	// the wait waits for); Missing the pairs never reported.
	Prop, AllApplied quantiles
	Missing          int
}

// summarize computes the wait table's row of w.
func (w waitResult) summarize() waitSummary {
	base := w.rateResult.summarize()
	s := waitSummary{
		Target: base.Target, Sustained: base.Sustained, Sent: base.Sent, Acked: base.Acked,
		RoundTrip: base.Call, Prop: base.Prop, Missing: base.Missing,
	}
	var took, all []time.Duration
	first := true
	for i, c := range w.Calls {
		if c.Err != nil || i >= len(w.Answers) || w.Answers[i].Enforcement == nil {
			continue
		}
		e := w.Answers[i].Enforcement
		if e.Complete {
			s.Complete++
		}
		if first {
			s.ReplicasMin, s.ReplicasMax, s.ConfirmedMin = e.Replicas, e.Replicas, e.Confirmed
			first = false
		}
		s.ReplicasMin, s.ReplicasMax = min(s.ReplicasMin, e.Replicas), max(s.ReplicasMax, e.Replicas)
		s.ConfirmedMin = min(s.ConfirmedMin, e.Confirmed)
		took = append(took, time.Duration(e.TookMs)*time.Millisecond)
		if i < len(w.Applied) && len(w.Applied[i]) > 0 && !slices.Contains(w.Applied[i], -1) {
			all = append(all, slices.Max(w.Applied[i]))
		}
	}
	slices.Sort(took)
	slices.Sort(all)
	s.Took, s.AllApplied = quantilesOf(took), quantilesOf(all)
	return s
}

// plainAt returns the row of the plain phase at rate, if the run had one.
func plainAt(rows []summary, rate float64) (summary, bool) {
	for _, r := range rows {
		if r.Target == rate {
			return r, true
		}
	}
	return summary{}, false
}

// writeWaitTable writes the wait phase's row as a Markdown table, with the
// propagation p99 of the plain phase at the same rate (plainOK false: the
// run had none).
func writeWaitTable(w io.Writer, s waitSummary, plain summary, plainOK bool) error {
	plainP99 := "-"
	if plainOK {
		plainP99 = ms(plain.Prop.P99)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| target/s\t sustained/s\t sent\t acked\t complete\t replicas\t min confirmed\t took p50 ms\t took p99 ms\t took max ms\t"+
		" round trip p50 ms\t round trip p99 ms\t round trip max ms\t prop p99 ms\t all-replicas p99 ms\t missing\t plain prop p99 ms\t")
	fmt.Fprintln(tw, "|---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t")
	fmt.Fprintf(tw, "| %g\t %.1f\t %d\t %d\t %d\t %s\t %d\t %s\t %s\t %s\t %s\t %s\t %s\t %s\t %s\t %d\t %s\t\n",
		s.Target, s.Sustained, s.Sent, s.Acked, s.Complete, span(s.ReplicasMin, s.ReplicasMax), s.ConfirmedMin,
		ms(s.Took.P50), ms(s.Took.P99), ms(s.Took.Max), ms(s.RoundTrip.P50), ms(s.RoundTrip.P99), ms(s.RoundTrip.Max),
		ms(s.Prop.P99), ms(s.AllApplied.P99), s.Missing, plainP99)
	return tw.Flush()
}

// span formats a range of counts: "8", or "7–8".
func span(lo, hi int) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

// waitVerdict is the line that judges issue 12's target: the p99 round
// trip of ?wait=enforced at most waitMargin above the propagation p99 of
// the plain phase at the same rate, with every answer complete.
func waitVerdict(s waitSummary, plain summary, plainOK bool) string {
	if !plainOK {
		return fmt.Sprintf("verdict: wait=enforced at %g/s: no plain %g/s phase in this run to compare with (add it to -rates)", s.Target, s.Target)
	}
	bound := plain.Prop.P99 + waitMargin
	met := s.Acked > 0 && s.Complete == s.Acked && s.RoundTrip.P99 <= bound
	return fmt.Sprintf("verdict: wait=enforced at %g/s: p99 round trip %s ms, target ≤ propagation p99 %s ms + %s ms = %s ms, %d of %d complete: %s",
		s.Target, ms(s.RoundTrip.P99), ms(plain.Prop.P99), ms(waitMargin), ms(bound), s.Complete, s.Acked, metText(met))
}

func metText(met bool) string {
	if met {
		return "met"
	}
	return "not met"
}
