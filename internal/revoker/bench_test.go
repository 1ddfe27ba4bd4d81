package revoker

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRevoke measures acknowledged session revocations through the
// HTTP handler: decode, Redis record, JetStream publish with PubAck
// (file-store stream, embedded server) and the answer; the revoker's own
// verifier consumes the stream meanwhile. "serial" is one caller at a time
// (latency-bound); "parallel" is 8 callers per GOMAXPROCS.
func BenchmarkRevoke(b *testing.B) {
	e := newEnv(b, nil)
	h := e.srv.Handler()
	var n atomic.Int64
	revoke := func() (time.Duration, error) {
		body := fmt.Sprintf(`{"type":"session","sid":"bench-%d"}`, n.Add(1))
		req := httptest.NewRequest(http.MethodPost, "/v1/revocations", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testCredential)
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(start)
		if rec.Code != http.StatusCreated {
			return d, fmt.Errorf("status %d: %s", rec.Code, rec.Body)
		}
		return d, nil
	}
	report := func(b *testing.B, durations []time.Duration, elapsed time.Duration) {
		slices.Sort(durations)
		pct := func(p float64) float64 {
			return float64(durations[int(p*float64(len(durations)-1))]) / float64(time.Millisecond)
		}
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(float64(len(durations))/elapsed.Seconds(), "revocations/s")
	}

	b.Run("serial", func(b *testing.B) {
		durations := make([]time.Duration, 0, 1024)
		start := time.Now()
		for b.Loop() {
			d, err := revoke()
			if err != nil {
				b.Fatal(err)
			}
			durations = append(durations, d)
		}
		report(b, durations, time.Since(start))
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(8)
		var (
			mu        sync.Mutex // guards durations
			durations []time.Duration
		)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			local := make([]time.Duration, 0, 256)
			for pb.Next() {
				d, err := revoke()
				if err != nil {
					b.Error(err)
					return
				}
				local = append(local, d)
			}
			mu.Lock()
			durations = append(durations, local...)
			mu.Unlock()
		})
		elapsed := time.Since(start)
		if len(durations) > 0 {
			report(b, durations, elapsed)
		}
	})
	b.Run("batch-1000", func(b *testing.B) {
		// One POST /v1/revocations/batch of 1,000 sessions per op.
		var total int
		start := time.Now()
		for b.Loop() {
			items := make([]string, 1000)
			for i := range items {
				items[i] = fmt.Sprintf(`{"type":"session","sid":"batch-%d"}`, n.Add(1))
			}
			req := httptest.NewRequest(http.MethodPost, "/v1/revocations/batch", strings.NewReader(`{"revocations":[`+strings.Join(items, ",")+`]}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+testCredential)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || strings.Count(rec.Body.String(), `"status":201`) != 1000 {
				b.Fatalf("batch: %d %.300s", rec.Code, rec.Body)
			}
			total += 1000
		}
		b.ReportMetric(float64(total)/time.Since(start).Seconds(), "revocations/s")
	})
}

// BenchmarkBatch measures acknowledged revocations per second through the
// HTTP handler on an R3 stream (an embedded NATS cluster of three) and a
// real redis-server, for batches of 1,000 of mixed kinds (4 tokens by jti,
// 4 sessions, a subject and a key in every 10, every value new).
// "per-item" sends each revocation as its own POST /v1/revocations, 16 at
// a time: the single-revocation path per item, as the batch endpoint took
// it before it pipelined; "pipelined" sends them as one POST
// /v1/revocations/batch.
func BenchmarkBatch(b *testing.B) {
	e := newClusterEnv(b, nil)
	h := e.srv.Handler()
	var n atomic.Int64
	items := func() []string {
		exp := time.Now().Add(30 * time.Minute).Unix()
		out := make([]string, 1000)
		for i := range out {
			v := n.Add(1)
			switch i % 10 {
			case 0, 1, 2, 3:
				out[i] = fmt.Sprintf(`{"type":"token","jti":"bench-j%d","exp":%d}`, v, exp)
			case 4, 5, 6, 7:
				out[i] = fmt.Sprintf(`{"type":"session","sid":"bench-s%d"}`, v)
			case 8:
				out[i] = fmt.Sprintf(`{"type":"subject","sub":"bench-u%d"}`, v)
			case 9:
				out[i] = fmt.Sprintf(`{"type":"key","kid":"bench-k%d"}`, v)
			}
		}
		return out
	}
	post := func(path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testCredential)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	run := func(b *testing.B, revoke func([]string) error) {
		var total int
		var elapsed time.Duration
		for b.Loop() {
			b.StopTimer()
			batch := items()
			b.StartTimer()
			start := time.Now()
			if err := revoke(batch); err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(start)
			total += len(batch)
		}
		b.ReportMetric(float64(total)/elapsed.Seconds(), "revocations/s")
	}

	b.Run("per-item", func(b *testing.B) {
		run(b, func(batch []string) error {
			next := make(chan string)
			errs := make(chan error, len(batch))
			var wg sync.WaitGroup
			for range batchWorkers {
				wg.Go(func() {
					for body := range next {
						if rec := post("/v1/revocations", body); rec.Code != http.StatusCreated {
							errs <- fmt.Errorf("revocation: %d %.300s", rec.Code, rec.Body)
						}
					}
				})
			}
			for _, body := range batch {
				next <- body
			}
			close(next)
			wg.Wait()
			close(errs)
			return <-errs
		})
	})
	b.Run("pipelined", func(b *testing.B) {
		run(b, func(batch []string) error {
			rec := post("/v1/revocations/batch", `{"revocations":[`+strings.Join(batch, ",")+`]}`)
			if rec.Code != http.StatusOK || strings.Count(rec.Body.String(), `"status":201`) != len(batch) {
				return fmt.Errorf("batch: %d %.300s", rec.Code, rec.Body)
			}
			return nil
		})
	})
}
