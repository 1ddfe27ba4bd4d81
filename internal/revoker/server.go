package revoker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx/prommetrics"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// Errors of [Server.Ready].
var (
	// ErrNotReady is wrapped by every readiness failure.
	ErrNotReady = errors.New("revoker: not ready")
)

// Backoff of the stream creation in [Server.Run].
const (
	minEnsureBackoff = 100 * time.Millisecond
	maxEnsureBackoff = 5 * time.Second
)

// Server is the revoker: the HTTP handlers plus the background work (stream
// creation, the outbox, the token checker's keys). Build it with [New], start [Server.Run],
// serve [Server.Handler], and [Server.Close] it after Run returned.
//
// A Server is safe for concurrent use.
type Server struct {
	cfg       Config
	creds     *httpx.Credentials
	checker   *verifier.Checker // signature and claims; revocation is read from Redis
	providers map[string]*Provider
	publisher *events.Publisher
	metrics   *metrics
	metricsH  http.Handler
	tracer    trace.Tracer
	ownMP     *sdkmetric.MeterProvider // non-nil when New created the registry

	// streamReady is set once Run has ensured the stream.
	streamReady atomic.Bool
	// outbox is what the outbox drainer last saw.
	outbox outboxState
	// fleet is the live replicas, from their announcements.
	fleet fleet
	// console serves /console when it is enabled (nil otherwise), and
	// recent is what it shows of the stream.
	console *console
	recent  recentFeed
}

// New validates cfg and builds a Server. It does not contact NATS or Redis:
// [Server.Run] creates the stream and drains the outbox.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg}
	if s.providers, err = providersByName(cfg.Providers); err != nil {
		return nil, err
	}
	if s.creds, err = httpx.NewCredentials(cfg.Credentials...); err != nil {
		return nil, fmt.Errorf("revoker: config: %w", err)
	}
	mp := cfg.MeterProvider
	s.metricsH = cfg.MetricsHandler
	if mp == nil && s.metricsH == nil {
		s.ownMP, s.metricsH, err = prommetrics.New()
		if err != nil {
			return nil, fmt.Errorf("revoker: %w", err)
		}
		mp = s.ownMP
	}
	if mp == nil {
		return nil, errors.New("revoker: config: MetricsHandler without MeterProvider")
	}
	if s.metrics, err = newMetrics(mp, &s.outbox); err != nil {
		return nil, fmt.Errorf("revoker: metrics: %w", err)
	}
	keys, err := cfg.keySource()
	if err != nil {
		s.shutdownMetrics()
		return nil, err
	}
	// Introspection and revocation by token check a token's signature and
	// claims here and its revocation against the Redis records: every
	// revocation is recorded there before it is published, so they hold
	// all the stream does and what the outbox has yet to deliver.
	s.checker, err = verifier.NewChecker(keys, verifier.CheckerConfig{
		Issuer:           cfg.Issuer,
		Audiences:        cfg.Audiences,
		Algorithms:       cfg.Algorithms,
		Leeway:           cfg.Leeway,
		MaxTokenLifetime: cfg.MaxTokenLifetime,
		EpochScopes:      cfg.EpochScopes,
		Now:              cfg.Now,
	})
	if err != nil {
		s.shutdownMetrics()
		return nil, fmt.Errorf("revoker: config: %w", err)
	}
	s.publisher = events.NewPublisher(cfg.JetStream, cfg.Stream)
	if len(cfg.ConsoleCredentials) > 0 {
		sessions, err := newConsoleSessions(cfg.ConsoleCredentials, cfg.ConsoleSession)
		if err != nil {
			s.shutdownMetrics()
			return nil, fmt.Errorf("revoker: config: %w", err)
		}
		s.console = &console{s: s, sessions: sessions}
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	s.tracer = tp.Tracer(meterName)
	return s, nil
}

// Handler returns the HTTP handler of every endpoint. Unknown paths get a
// JSON 404, known paths with the wrong method a JSON 405.
func (s *Server) Handler() http.Handler {
	mux := httpx.NewMux()
	mux.Handle(http.MethodPost, "/v1/revocations", s.creds.Require(http.HandlerFunc(s.handleRevoke)))
	mux.Handle(http.MethodPost, "/v1/revocations/batch", s.creds.Require(http.HandlerFunc(s.handleBatch)))
	mux.Handle(http.MethodGet, "/v1/replicas", s.creds.Require(http.HandlerFunc(s.handleReplicas)))
	mux.Handle(http.MethodPost, "/oauth2/introspect", s.creds.AllowBasic().Require(http.HandlerFunc(s.handleIntrospect)))
	// A provider authenticates by the signature of its logout token.
	mux.Handle(http.MethodPost, "/v1/providers/{name}/backchannel-logout", http.HandlerFunc(s.handleBackchannel))
	// A Shared Signals transmitter authenticates with its stream's own
	// credential, and by the signature of its SETs.
	mux.Handle(http.MethodPost, "/v1/providers/{name}/events", http.HandlerFunc(s.handleEvents))
	if s.console != nil {
		s.console.routes(mux)
	}
	httpx.Health(mux, s.Ready, s.cfg.Logger)
	if s.metricsH != nil {
		mux.Handle(http.MethodGet, "/metrics", s.metricsH)
	}
	return mux
}

// Run keeps the token checker's keys fresh (a JWKS) and creates or updates
// the revocation stream, retrying with backoff until it succeeds (so the
// revoker may start before NATS), then drains the outbox (recorded
// revocations the stream has not acknowledged) until ctx ends; it returns
// nil then. It returns an error early only for a condition a retry cannot
// fix (see verifier.Checker.Run). Call it once.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	keysErr := make(chan error, 1)
	go func() {
		err := s.checker.Run(ctx)
		if err != nil {
			cancel()
		}
		keysErr <- err
	}()
	providersErr := s.runProviders(ctx, cancel)
	var polls sync.WaitGroup
	polls.Go(func() { s.followFleet(ctx) })
	if s.console != nil {
		polls.Go(func() { s.followRecent(ctx) })
	}
	for _, p := range s.providers {
		if p.Poll != nil {
			polls.Go(func() { s.pollLoop(ctx, p) })
		}
	}
	s.publish(ctx)
	cancel()
	polls.Wait()
	if err := <-keysErr; err != nil {
		return fmt.Errorf("revoker: keys: %w", err)
	}
	if err := <-providersErr; err != nil {
		return fmt.Errorf("revoker: keys: %w", err)
	}
	return nil
}

// publish ensures the stream, then drains the outbox until ctx ends.
func (s *Server) publish(ctx context.Context) {
	log := s.cfg.Logger
	backoff := minEnsureBackoff
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		_, err := events.EnsureStream(attemptCtx, s.cfg.JetStream, s.cfg.streamOptions())
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("revoker: cannot ensure the revocation stream yet, retrying", "stream", s.cfg.Stream, "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, maxEnsureBackoff)
	}
	s.streamReady.Store(true)
	log.Info("revoker: revocation stream ensured", "stream", s.cfg.Stream, "replicas", s.cfg.Replicas,
		"max_age", s.cfg.streamOptions().MaxAge())
	// Records of the layout before the outbox move to the current one
	// first (a no-op once done; safe on several replicas). Then recorded
	// revocations whose publish did not succeed (or whose revoker stopped)
	// are delivered from the outbox by every replica.
	if n, err := s.cfg.Store.MigrateLegacy(ctx); err != nil {
		log.Warn("revoker: records of the earlier Redis layout not migrated; retried at the next start", "err", err, "moved", n)
	} else if n > 0 {
		log.Info("revoker: migrated records of the earlier Redis layout", "moved", n)
	}
	s.drainOutbox(ctx)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Ready reports nil when the revoker can serve every endpoint: the stream is
// ensured, NATS is connected, Redis answers and the token checker has keys. Otherwise an error wrapping
// [ErrNotReady] says what is missing.
func (s *Server) Ready(ctx context.Context) error {
	if !s.streamReady.Load() {
		return fmt.Errorf("%w: %w", ErrNotReady, httpx.NotReadyBecause("stream not ensured yet", nil))
	}
	if st := s.cfg.JetStream.Conn().Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w: %w", ErrNotReady, httpx.NotReadyBecause("nats disconnected", fmt.Errorf("nats %s", st)))
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, httpx.NotReadyBecause("redis unreachable", err))
	}
	if !s.checker.KeysReady() {
		return fmt.Errorf("%w: %w", ErrNotReady, httpx.NotReadyBecause("keys not fetched yet", nil))
	}
	return nil
}

// Close releases the token checker and the private metrics registry.
// Call it after Run has returned. The JetStream connection and the Store's
// Redis client belong to the caller.
func (s *Server) Close() {
	s.checker.Close()
	s.shutdownMetrics()
}

func (s *Server) shutdownMetrics() {
	if s.ownMP != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.ownMP.Shutdown(ctx)
	}
}
