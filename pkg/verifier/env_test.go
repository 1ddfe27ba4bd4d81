package verifier

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// testMaxLifetime is the MaxTokenLifetime of the test verifiers and stream.
const testMaxLifetime = time.Hour

// env is one test world: an embedded JetStream server with the revocation
// stream, and a test issuer with a JWKS server.
type env struct {
	srv *verifiertest.Server
	iss *verifiertest.Issuer
	js  jetstream.JetStream // a publisher connection
}

func newEnv(tb testing.TB, opts ...verifiertest.IssuerOption) *env {
	tb.Helper()
	srv := verifiertest.RunJetStream(tb)
	srv.EnsureStream(tb, events.StreamOptions{MaxTokenLifetime: testMaxLifetime})
	_, js := srv.Connect(tb)
	return &env{srv: srv, iss: verifiertest.NewIssuer(tb, opts...), js: js}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// config returns a verifier configuration for e's issuer and server.
func (e *env) config(tb testing.TB) Config {
	tb.Helper()
	_, js := e.srv.Connect(tb)
	return Config{
		Issuer:           e.iss.Issuer(),
		Audiences:        []string{e.iss.Audience()},
		Algorithms:       []string{e.iss.Algorithm()},
		Keys:             jwks(tb, e.iss.JWKSURL()),
		JetStream:        js,
		MaxTokenLifetime: testMaxLifetime,
		Logger:           discardLogger(),
	}
}

// jwks returns a JWKS key source for url (run by the verifier that uses it).
func jwks(tb testing.TB, url string) KeySource {
	tb.Helper()
	k, err := NewJWKS(JWKSConfig{URL: url, Logger: discardLogger()})
	if err != nil {
		tb.Fatalf("NewJWKS: %v", err)
	}
	return k
}

// static returns a static key source of keys.
func static(tb testing.TB, keys ...Key) KeySource {
	tb.Helper()
	k, err := StaticKeys(keys...)
	if err != nil {
		tb.Fatalf("StaticKeys: %v", err)
	}
	return k
}

// start builds a verifier from cfg and runs it until the test ends.
func start(tb testing.TB, cfg Config) *Verifier {
	tb.Helper()
	v, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	run(tb, v)
	return v
}

// run runs v until the test ends.
func run(tb testing.TB, v *Verifier) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			var stacks strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			tb.Errorf("Run did not return within 10s of cancel; goroutines:\n%s", stacks.String())
		}
		v.Close()
	})
}

// verifier starts a verifier on e with cfg changed by mod, and waits until
// it is ready.
func (e *env) verifier(tb testing.TB, mod func(*Config)) *Verifier {
	tb.Helper()
	cfg := e.config(tb)
	if mod != nil {
		mod(&cfg)
	}
	v := start(tb, cfg)
	waitReady(tb, v)
	return v
}

func waitReady(tb testing.TB, v *Verifier) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		tb.Fatalf("verifier not ready within 20s: %v (health %+v)", err, v.Health())
	}
}

var eventSeq atomic.Int64

// eventID returns an id unique within the test binary.
func eventID(prefix string) string {
	return fmt.Sprintf("%s.%d.%d", prefix, time.Now().UnixNano(), eventSeq.Add(1))
}

// atomicDuration is a clock offset tests move while verifiers read it.
type atomicDuration struct{ n atomic.Int64 }

func (d *atomicDuration) Load() time.Duration   { return time.Duration(d.n.Load()) }
func (d *atomicDuration) Store(v time.Duration) { d.n.Store(int64(v)) }
