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
