package issuer_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/issuer"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// BenchmarkRefresh measures refresh-token rotations per second through the
// HTTP handler (form parsing, Rotate's Lua CAS and the epoch read against a
// real redis-server, minting with EdDSA), one chain, sequentially.
func BenchmarkRefresh(b *testing.B) {
	e := newEnv(b, nil)
	h := e.srv.Handler()
	rt := e.login(b, "alice").RefreshToken
	ctx := testContext(b)
	b.ReportAllocs()
	for b.Loop() {
		body := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("refresh: %d %s", rec.Code, rec.Body)
		}
		var tr issuer.TokenResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
			b.Fatal(err)
		}
		rt = tr.RefreshToken
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rotations/s")
}

// BenchmarkFootprint measures the heap an issuer holds once ready (New, Run,
// /readyz green, one login served), beside the baseline measured in the
// same run: the stream-fed verifier with default settings that the issuer
// embedded before it read revocations from Redis.
func BenchmarkFootprint(b *testing.B) {
	e := newEnv(b, nil)
	heapAfter := func(start func() (stop func())) float64 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		stop := start()
		runtime.GC()
		runtime.ReadMemStats(&after)
		stop()
		return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
	}
	b.Run("issuer", func(b *testing.B) {
		for b.Loop() {
			b.ReportMetric(heapAfter(func() func() {
				srv, err := issuer.New(e.cfg)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- srv.Run(ctx) }()
				eventually.True(b, 10*time.Second, "issuer ready", func() bool { return srv.Ready(ctx) == nil })
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodPost, "/v1/login", strings.NewReader(`{"username":"alice","password":"`+testPassword+`"}`))
				req.Header.Set("Content-Type", "application/json")
				srv.Handler().ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("login: %d %s", rec.Code, rec.Body)
				}
				return func() { cancel(); <-done; srv.Close() }
			}), "heap-MiB")
		}
	})
	b.Run("verifier-baseline", func(b *testing.B) {
		for b.Loop() {
			b.ReportMetric(heapAfter(func() func() {
				keys, err := verifier.StaticKeys(verifier.Key{ID: e.cfg.Keys[0].ID, Public: e.cfg.Keys[0].Private.Public()})
				if err != nil {
					b.Fatal(err)
				}
				v, err := verifier.New(verifier.Config{Issuer: testIssuer, Audiences: []string{testAudience},
					Algorithms: []string{verifier.EdDSA}, Keys: keys, JetStream: e.js, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- v.Run(ctx) }()
				if err := v.WaitReady(testContext(b)); err != nil {
					b.Fatal(err)
				}
				// Not runverifier.Ready: the verifier must be closed
				// before the next measurement, not when the benchmark ends.
				return func() { cancel(); <-done; v.Close() }
			}), "heap-MiB")
		}
	})
}
