package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
)

// batchTarget is issue 12's throughput target for POST
// /v1/revocations/batch with the R3 stream, acknowledged revocations per
// second.
const batchTarget = 10_000

// batchCall is one POST /v1/revocations/batch the benchmark made.
type batchCall struct {
	Start time.Time
	Took  time.Duration
	// Items are the answer's results, in the order sent; nil when the
	// call failed.
	Items []revoker.BatchItem
	Err   error
}

// batchResult is what the batch phase produced.
type batchResult struct {
	Size, Concurrency int
	Calls             []batchCall
	// Elapsed is from the first batch sent to the last answer read.
	Elapsed time.Duration
	// Applied is from the first batch sent until every replica applied
	// the acknowledged event of the highest sequence (replicas apply in
	// stream order, so every other one too); negative when some replica
	// never reported it. Missing counts the (acknowledged revocation,
	// replica) pairs never reported.
	Applied time.Duration
	Missing int
}

// runBatches sends total token revocations (jti prefix-i, expiring in 50
// minutes) in batches of size through POST /v1/revocations/batch, at most
// concurrency batches in flight, each bounded by timeout; it stops sending
// when ctx ends.
func runBatches(ctx context.Context, hc *http.Client, revokerURL, credential, prefix string, total, size, concurrency int, timeout time.Duration) batchResult {
	r := batchResult{Size: size, Concurrency: concurrency, Calls: make([]batchCall, (total+size-1)/size)}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(concurrency, len(r.Calls)) {
		wg.Go(func() {
			for b := range next {
				r.Calls[b] = sendBatch(ctx, hc, revokerURL, credential, prefix, b*size, min(total, (b+1)*size), timeout)
			}
		})
	}
	sent := 0
send:
	for b := range r.Calls {
		select {
		case next <- b:
			sent++
		case <-ctx.Done():
			break send
		}
	}
	close(next)
	wg.Wait()
	r.Calls = r.Calls[:sent]
	if sent > 0 {
		first := r.firstStart()
		last := first
		for _, c := range r.Calls {
			last = later(last, c.Start.Add(c.Took))
		}
		r.Elapsed = last.Sub(first)
	}
	return r
}

// sendBatch sends revocations from..to-1 as one batch.
func sendBatch(ctx context.Context, hc *http.Client, revokerURL, credential, prefix string, from, to int, timeout time.Duration) batchCall {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	exp := float64(time.Now().Add(50 * time.Minute).Unix())
	body := struct {
		Revocations []revoker.Request `json:"revocations"`
	}{Revocations: make([]revoker.Request, 0, to-from)}
	for i := from; i < to; i++ {
		body.Revocations = append(body.Revocations, revoker.Request{Type: "token", JTI: prefix + "-" + strconv.Itoa(i), Exp: &exp})
	}
	var ans revoker.BatchAnswer
	start := time.Now()
	err := postJSON(ctx, hc, revokerURL+"/v1/revocations/batch", credential, body, http.StatusOK, &ans)
	c := batchCall{Start: start, Took: time.Since(start), Err: err}
	switch {
	case err != nil:
		c.Err = fmt.Errorf("bench: batch: %w", err)
	case len(ans.Results) != to-from:
		c.Err = fmt.Errorf("bench: batch: %d results for %d revocations", len(ans.Results), to-from)
	default:
		c.Items = ans.Results
	}
	return c
}

// acked returns the acknowledged items (status 201) of r and the id of
// the one with the highest sequence ("" when none).
func (r batchResult) acked() (ids []string, last string) {
	var lastSeq uint64
	for _, c := range r.Calls {
		for _, it := range c.Items {
			if it.Status != http.StatusCreated {
				continue
			}
			ids = append(ids, it.ID)
			if it.Seq > lastSeq {
				lastSeq, last = it.Seq, it.ID
			}
		}
	}
	return ids, last
}

// firstStart is when r's first batch was sent.
func (r batchResult) firstStart() time.Time {
	var t time.Time
	for _, c := range r.Calls {
		if t.IsZero() || c.Start.Before(t) {
			t = c.Start
		}
	}
	return t
}

// batchSummary is the row of the batch table.
type batchSummary struct {
	Size, Concurrency, Batches, FailedBatches int
	// Sent counts the revocations in batches that were sent; Acked those
	// answered 201, Recorded those answered 503 but recorded (the outbox
	// delivers them), Refused the others.
	Sent, Acked, Recorded, Refused int
	// PerSecond is Acked per second of Elapsed.
	PerSecond float64
	Elapsed   time.Duration
	Call      quantiles
	Applied   time.Duration
	Missing   int
}

// summarize computes the batch table's row of r.
func (r batchResult) summarize() batchSummary {
	s := batchSummary{Size: r.Size, Concurrency: r.Concurrency, Batches: len(r.Calls), Elapsed: r.Elapsed, Applied: r.Applied, Missing: r.Missing}
	var took []time.Duration
	for _, c := range r.Calls {
		took = append(took, c.Took)
		if c.Err != nil {
			s.FailedBatches++
			continue
		}
		for _, it := range c.Items {
			s.Sent++
			switch {
			case it.Status == http.StatusCreated:
				s.Acked++
			case it.Recorded:
				s.Recorded++
			default:
				s.Refused++
			}
		}
	}
	slices.Sort(took)
	s.Call = quantilesOf(took)
	if r.Elapsed > 0 {
		s.PerSecond = float64(s.Acked) / r.Elapsed.Seconds()
	}
	return s
}

// writeBatchTable writes the batch phase's row as a Markdown table.
func writeBatchTable(w io.Writer, s batchSummary) error {
	applied, after := "never", "-"
	if s.Applied >= 0 {
		applied, after = ms(s.Applied), ms(s.Applied-s.Elapsed)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| batch size\t concurrency\t batches\t failed batches\t revocations\t acked\t recorded\t refused\t wall s\t acked/s\t"+
		" batch p50 ms\t batch p99 ms\t batch max ms\t all applied ms\t after last answer ms\t missing\t")
	fmt.Fprintln(tw, "|---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t")
	fmt.Fprintf(tw, "| %d\t %d\t %d\t %d\t %d\t %d\t %d\t %d\t %.3f\t %.0f\t %s\t %s\t %s\t %s\t %s\t %d\t\n",
		s.Size, s.Concurrency, s.Batches, s.FailedBatches, s.Sent, s.Acked, s.Recorded, s.Refused, s.Elapsed.Seconds(), s.PerSecond,
		ms(s.Call.P50), ms(s.Call.P99), ms(s.Call.Max), applied, after, s.Missing)
	return tw.Flush()
}

// batchVerdict is the line that judges issue 12's throughput target.
func batchVerdict(s batchSummary) string {
	return fmt.Sprintf("verdict: batch throughput %.0f acknowledged revocations/s (%d in %.3f s), target ≥ %d/s: %s",
		s.PerSecond, s.Acked, s.Elapsed.Seconds(), batchTarget, metText(s.PerSecond >= batchTarget))
}
