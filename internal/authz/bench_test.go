package authz_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/jwtrevoke/jwtrevoke/internal/authz"
	"github.com/jwtrevoke/jwtrevoke/internal/redistest"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// BenchmarkCheck: one decision through each API on loopback, beside the
// deny-list way (a go-redis EXISTS per request against a real
// redis-server) measured in the same run. "seq" runs one request at a
// time (ns/op is the round trip); "5k/s" sends at up to 5,000 per second,
// open loop, and reports the rate held and the latency percentiles there.
func BenchmarkCheck(b *testing.B) {
	e := newEnv(b, authz.Config{})
	tok := e.iss.Token(b, verifiertest.TokenOptions{TTL: 50 * time.Minute})
	rdb := redistest.Run(b).Client(b)
	ctx := context.Background()
	if err := rdb.Set(ctx, "revoked:other", "1", 0).Err(); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/orders/7", Headers: map[string]string{"authorization": "Bearer " + tok}},
	}}}
	// rawClient is a keep-alive HTTP/1.1 client as lean as a proxy's
	// (nginx writes the request and reads the answer on a kept
	// connection), so that the figure is verifierd's, not net/http's
	// client. One connection per caller, as a proxy keeps a pool.
	rawReq := []byte("GET " + authz.CheckPath + " HTTP/1.1\r\nHost: verifierd\r\nAuthorization: Bearer " + tok + "\r\n\r\n")
	rawClient := func() func() error {
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.http.URL, "http://"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		br := bufio.NewReader(conn)
		return func() error {
			if _, err := conn.Write(rawReq); err != nil {
				return err
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	shared := func(f func() error) func() func() error { return func() func() error { return f } }
	// Each API's caller: newCaller returns a function making one
	// decision, one per worker (the raw client's connection is its own).
	apis := []struct {
		name      string
		newCaller func() func() error
	}{
		{"http-raw", rawClient},
		{"http", shared(func() error {
			r, err := http.NewRequestWithContext(ctx, http.MethodGet, e.http.URL+authz.CheckPath, nil)
			if err != nil {
				return err
			}
			r.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(r)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
			return nil
		})},
		{"grpc", shared(func() error {
			resp, err := e.grpc.Check(ctx, req)
			if err == nil && resp.GetOkResponse() == nil {
				b.Fatalf("denied: %v", resp.GetStatus())
			}
			return err
		})},
		{"redis-exists", shared(func() error { return rdb.Exists(ctx, "revoked:"+tok[len(tok)-16:]).Err() })},
	}
	for _, api := range apis {
		b.Run(api.name+"/seq", func(b *testing.B) {
			once := api.newCaller()
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if err := once(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			report(b, lat)
		})
		b.Run(api.name+"/5k/s", func(b *testing.B) {
			// Every millisecond, the sends due by then (5 on time; a
			// timer that fires late on this machine makes a few more):
			// 5,000/s, smooth to the millisecond. The rate held is
			// reported (checks/s). Sixteen workers take the sends, as a
			// proxy's connections would.
			const rate = 5000.0
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			work := make(chan struct{}, 16)
			var wg sync.WaitGroup
			for range 16 {
				once := api.newCaller()
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						start := time.Now()
						if err := once(); err != nil {
							b.Error(err)
						}
						d := time.Since(start)
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
				}()
			}
			tick := time.NewTicker(time.Millisecond)
			b.ResetTimer()
			begin := time.Now()
			for sent := 0; sent < b.N; {
				<-tick.C
				due := min(int(time.Since(begin).Seconds()*rate), b.N)
				for ; sent < due; sent++ {
					work <- struct{}{}
				}
			}
			close(work)
			wg.Wait()
			tick.Stop()
			b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "checks/s")
			report(b, lat)
		})
	}
}

// report adds the latency percentiles of a run.
func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(q(0.50), "p50-ns")
	b.ReportMetric(q(0.99), "p99-ns")
}
