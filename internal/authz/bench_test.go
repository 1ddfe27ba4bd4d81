package authz_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/jwtrevoke/jwtrevoke/internal/authz"
	"github.com/jwtrevoke/jwtrevoke/internal/redistest"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// BenchmarkCheck: one decision through each API on loopback, beside the
// deny-list way (a go-redis EXISTS per request against a real
// redis-server) measured in the same run. "seq" runs one request at a
// time (ns/op is the round trip); "5k/s" sends at up to 5,000 per second,
// open loop, and reports the rate held and the latency percentiles there;
// "5k/s-apart" does the same from a load generator in a process of its
// own (this test binary run again), as a proxy is, so that the client's
// goroutines and garbage do not share verifierd's runtime.
func BenchmarkCheck(b *testing.B) {
	e := newEnv(b, authz.Config{})
	redisSrv := redistest.Run(b)
	t := target{HTTP: e.http.URL, GRPC: e.grpcAddr, Redis: redisSrv.Addr(),
		Token: e.iss.Token(b, verifiertest.TokenOptions{TTL: 50 * time.Minute})}
	if err := redisSrv.Client(b).Set(context.Background(), "revoked:other", "1", 0).Err(); err != nil {
		b.Fatal(err)
	}
	for _, api := range apisFor(b, t) {
		b.Run(api.name+"/seq", func(b *testing.B) {
			once := api.newCaller(b)
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
			b.ResetTimer()
			lat, took := paced(b, api, b.N, 5000)
			b.ReportMetric(float64(b.N)/took.Seconds(), "checks/s")
			report(b, lat)
		})
		b.Run(api.name+"/5k/s-apart", func(b *testing.B) {
			job, _ := json.Marshal(loadJob{Target: t, API: api.name, N: b.N, Rate: 5000})
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), loadEnv+"="+string(job))
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			b.ResetTimer()
			if err := cmd.Run(); err != nil {
				b.Fatalf("load generator: %v: %s", err, errOut.String())
			}
			b.StopTimer()
			var res loadResult
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				b.Fatalf("load generator's answer %q: %v (%s)", out.String(), err, errOut.String())
			}
			b.ReportMetric(res.Rate, "checks/s")
			b.ReportMetric(float64(res.P50), "p50-ns")
			b.ReportMetric(float64(res.P99), "p99-ns")
		})
	}
}

// target is what the callers ask: verifierd's HTTP URL and gRPC address,
// redis-server's address, and the token.
type target struct{ HTTP, GRPC, Redis, Token string }

// tb is what building a caller needs of a test (a benchmark, or the load
// generator's stand-in).
type tb interface {
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// api is one way to ask: newCaller returns a function making one decision,
// one per worker (the lean client's connection is its own; the others
// share a client, as a proxy's workers share a pool).
type api struct {
	name      string
	newCaller func(tb) func() error
}

func apisFor(t tb, to target) []api {
	ctx := context.Background()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	conn, err := grpc.NewClient(to.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	gc := authv3.NewAuthorizationClient(conn)
	rdb := redis.NewClient(&redis.Options{Addr: to.Redis})
	t.Cleanup(func() { rdb.Close() })
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/orders/7", Headers: map[string]string{"authorization": "Bearer " + to.Token}},
	}}}
	shared := func(f func() error) func(tb) func() error { return func(tb) func() error { return f } }
	// A keep-alive HTTP/1.1 client as lean as a proxy's (nginx writes
	// the request and reads the answer on a kept connection), so that
	// the figure is verifierd's, not net/http's client.
	rawReq := []byte("GET " + authz.CheckPath + " HTTP/1.1\r\nHost: verifierd\r\nAuthorization: Bearer " + to.Token + "\r\n\r\n")
	raw := func(t tb) func() error {
		c, err := net.Dial("tcp", strings.TrimPrefix(to.HTTP, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		br := bufio.NewReader(c)
		return func() error {
			if _, err := c.Write(rawReq); err != nil {
				return err
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	return []api{
		{"http-raw", raw},
		{"http", shared(func() error {
			r, err := http.NewRequestWithContext(ctx, http.MethodGet, to.HTTP+authz.CheckPath, nil)
			if err != nil {
				return err
			}
			r.Header.Set("Authorization", "Bearer "+to.Token)
			resp, err := client.Do(r)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		})},
		{"grpc", shared(func() error {
			resp, err := gc.Check(ctx, req)
			if err == nil && resp.GetOkResponse() == nil {
				return fmt.Errorf("denied: %v", resp.GetStatus())
			}
			return err
		})},
		{"redis-exists", shared(func() error { return rdb.Exists(ctx, "revoked:"+to.Token[len(to.Token)-16:]).Err() })},
	}
}

// paced makes n decisions through a at rate, open loop: every millisecond,
// the sends due by then (5 on time at 5,000/s; a timer that fires late on
// this machine makes a few more), taken by sixteen workers as a proxy's
// connections would. It returns each decision's latency and the time all
// took.
func paced(t tb, a api, n int, rate float64) ([]time.Duration, time.Duration) {
	var mu sync.Mutex
	lat := make([]time.Duration, 0, n)
	work := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var failed error
	for range 16 {
		once := a.newCaller(t)
		wg.Go(func() {
			for range work {
				start := time.Now()
				err := once()
				d := time.Since(start)
				mu.Lock()
				lat = append(lat, d)
				if err != nil && failed == nil {
					failed = err
				}
				mu.Unlock()
			}
		})
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	begin := time.Now()
	for sent := 0; sent < n; {
		<-tick.C
		due := min(int(time.Since(begin).Seconds()*rate), n)
		for ; sent < due; sent++ {
			work <- struct{}{}
		}
	}
	close(work)
	wg.Wait()
	if failed != nil {
		t.Fatalf("%s: %v", a.name, failed)
	}
	return lat, time.Since(begin)
}

// report adds the latency percentiles of a run.
func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	p50, p99 := percentiles(lat)
	b.ReportMetric(float64(p50), "p50-ns")
	b.ReportMetric(float64(p99), "p99-ns")
}

func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	return q(0.50), q(0.99)
}

// The load generator: BenchmarkCheck runs this test binary again with
// loadEnv set to a loadJob; TestMain then makes the decisions and prints a
// loadResult instead of running tests.
const loadEnv = "JWTREVOKE_AUTHZ_LOAD"

type loadJob struct {
	Target target
	API    string
	N      int
	Rate   float64
}

type loadResult struct {
	Rate     float64
	P50, P99 time.Duration
}

// generator stands in for a testing.TB in the load generator process.
type generator struct{ cleanups []func() }

func (g *generator) Fatal(args ...any) { g.Fatalf("%s", fmt.Sprint(args...)) }
func (g *generator) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "load generator: "+format+"\n", args...)
	os.Exit(1)
}
func (g *generator) Cleanup(f func()) { g.cleanups = append(g.cleanups, f) }

// generate runs the job in $JWTREVOKE_AUTHZ_LOAD and prints its result.
func generate(spec string) {
	g := &generator{}
	var job loadJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		g.Fatalf("%s: %v", loadEnv, err)
	}
	apis := apisFor(g, job.Target)
	i := slices.IndexFunc(apis, func(a api) bool { return a.name == job.API })
	if i < 0 {
		g.Fatalf("no API %q", job.API)
	}
	lat, took := paced(g, apis[i], job.N, job.Rate)
	p50, p99 := percentiles(lat)
	out, _ := json.Marshal(loadResult{Rate: float64(job.N) / took.Seconds(), P50: p50, P99: p99})
	fmt.Println(string(out))
	for _, f := range slices.Backward(g.cleanups) {
		f()
	}
}
