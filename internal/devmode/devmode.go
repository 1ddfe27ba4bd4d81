// Package devmode starts the whole jwtrevoke system in one process: an
// embedded NATS server with JetStream, a Redis the process provides itself
// (miniredis, speaking RESP over a real socket), the revoker, the issuer and
// example services — all talking through the same client code paths as in
// production (nats.go and go-redis over sockets, HTTP between services).
//
// It is for `make run` and for end-to-end tests. Its fixed demo values
// (users alice and bob with password "demo", service credential
// "dev-service-token", generated keys) are defined here and nowhere else:
// nothing of dev mode is reachable from the production binaries' config.
package devmode

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/jwtrevoke/jwtrevoke/internal/authz"
	"github.com/jwtrevoke/jwtrevoke/internal/example"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/issuer"
	"github.com/jwtrevoke/jwtrevoke/internal/process"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// The demo values of dev mode.
const (
	ServiceCredential = "dev-service-token"
	// ConsoleCredential logs in to the operators' console (revoker /console).
	ConsoleCredential = "dev-console-credential"
	DemoPassword      = "demo"
	Audience          = "api"
)

// demoUsers are the users POST /v1/login accepts in dev mode, alice and bob,
// both with DemoPassword (bcrypt, cost 10, precomputed).
func demoUsers() map[string][]byte {
	return map[string][]byte{
		"alice": []byte("$2a$10$5/ytE8UWywnDy72cZoybwu4zVzFzZQ4s4KIllqjgfeRopP2sov/Ju"),
		"bob":   []byte("$2a$10$XkBP5dXWxQnfXnlhBY020e0gpJnB4iqFaGtrYxl1pUU9jWaF/Tywm"),
	}
}

// Config says where dev mode listens. The zero value is `make run`'s: the
// ports of the design's HTTP contract, a fresh data directory, and Redis
// provided in-process.
type Config struct {
	// IssuerAddr, RevokerAddr: default ":8081", ":8082".
	IssuerAddr, RevokerAddr string
	// ExampleAddrs: one example service per address; default [":8080"].
	ExampleAddrs []string
	// AuthorizerAddr is verifierd's: the verifier as a local authorizer
	// for proxies (internal/authz); default ":8083".
	AuthorizerAddr string
	// RedisAddr, if set, is an external Redis to use instead of the
	// in-process one (the end-to-end tests use a real redis-server).
	RedisAddr string
	// DataDir holds JetStream's files; default a new temporary directory,
	// removed by Close.
	DataDir string
	// AccessTTL of access tokens; default 5 minutes.
	AccessTTL time.Duration
	// MaxStaleness of the example services' verifiers; default the
	// verifier's.
	MaxStaleness time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// OnVerified is passed to every example service (see example.Config).
	OnVerified func(replica int, c *verifier.Claims, at time.Time)
}

// System is a running dev-mode system.
type System struct {
	NATSURL     string
	RedisAddr   string
	IssuerURL   string
	RevokerURL  string
	ExampleURLs []string
	// AuthorizerURL is verifierd's base URL; its check is AuthorizerURL +
	// authz.CheckPath.
	AuthorizerURL string

	// Examples are the example services, in ExampleAddrs order.
	Examples []*example.Server
	// NATS is the embedded server (tests stop and restart it).
	NATS *server.Server

	log      *slog.Logger
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errMu    sync.Mutex
	firstErr error
	closers  []func()
}

// Start starts everything and returns once every service is ready (the
// example services have replayed the stream). Stop it with Close.
func Start(ctx context.Context, cfg Config) (_ *System, err error) {
	if cfg.IssuerAddr == "" {
		cfg.IssuerAddr = ":8081"
	}
	if cfg.RevokerAddr == "" {
		cfg.RevokerAddr = ":8082"
	}
	if len(cfg.ExampleAddrs) == 0 {
		cfg.ExampleAddrs = []string{":8080"}
	}
	if cfg.AuthorizerAddr == "" {
		cfg.AuthorizerAddr = ":8083"
	}
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s := &System{log: cfg.Logger, cancel: cancel}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	// NATS with JetStream.
	dir := cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "jwtrevoke-dev-"); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { _ = os.RemoveAll(dir) })
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		return nil, fmt.Errorf("devmode: nats: %w", err)
	}
	ns.Start()
	s.closers = append(s.closers, ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		return nil, errors.New("devmode: nats did not start within 10s")
	}
	s.NATS, s.NATSURL = ns, ns.ClientURL()

	// Redis.
	s.RedisAddr = cfg.RedisAddr
	if s.RedisAddr == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("devmode: redis: %w", err)
		}
		s.closers = append(s.closers, mr.Close)
		s.RedisAddr = mr.Addr()
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{s.RedisAddr}})
	s.closers = append(s.closers, func() { _ = rdb.Close() })
	st, err := store.New(store.Config{Client: rdb})
	if err != nil {
		return nil, err
	}

	// Listeners first: the services need each other's URLs.
	issuerLn, err := httpx.Listen(cfg.IssuerAddr, nil, cfg.Logger)
	if err != nil {
		return nil, err
	}
	revokerLn, err := httpx.Listen(cfg.RevokerAddr, nil, cfg.Logger)
	if err != nil {
		return nil, err
	}
	s.IssuerURL, s.RevokerURL = localURL(issuerLn.Addr()), localURL(revokerLn.Addr())

	key, err := issuer.GenerateKey(verifier.EdDSA)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	connect := func(name string) (jetstream.JetStream, error) {
		nc, err := nats.Connect(s.NATSURL, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			return nil, fmt.Errorf("devmode: %s: nats: %w", name, err)
		}
		s.closers = append(s.closers, nc.Close)
		return jetstream.New(nc)
	}
	maxLifetime := max(cfg.AccessTTL, verifier.DefaultMaxTokenLifetime)

	// Revoker.
	js, err := connect("revoker")
	if err != nil {
		return nil, err
	}
	// The revoker ensures the stream too; doing it first spares the other
	// services a round of "stream not found" retries at start.
	if _, err := events.EnsureStream(ctx, js, events.StreamOptions{MaxTokenLifetime: maxLifetime, Leeway: verifier.DefaultLeeway}); err != nil {
		return nil, fmt.Errorf("devmode: %w", err)
	}
	rev, err := revoker.New(revoker.Config{
		JetStream: js, Store: st, Credentials: []string{ServiceCredential}, ConsoleCredentials: []string{ConsoleCredential},
		MaxTokenLifetime: maxLifetime,
		Issuer:           s.IssuerURL, Audiences: []string{Audience}, Algorithms: []string{verifier.EdDSA},
		Keys:   []verifier.Key{{ID: key.ID, Algorithm: verifier.EdDSA, Public: key.Private.Public()}},
		Logger: cfg.Logger.With("service", "revoker"),
	})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, rev.Close)

	// Issuer (Redis only: it reads no stream).
	iss, err := issuer.New(issuer.Config{
		Issuer: s.IssuerURL, Audiences: []string{Audience}, Keys: []issuer.SigningKey{key},
		AccessTTL: cfg.AccessTTL, RefreshSecret: secret, Store: st,
		Revoker:            revoker.NewClient(s.RevokerURL, ServiceCredential, nil),
		ServiceCredentials: []string{ServiceCredential}, Users: demoUsers(),
		SetCookie: true, InsecureCookie: true,
		Logger: cfg.Logger.With("service", "issuer"),
	})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, iss.Close)

	// Example services.
	var exampleLns []*httpx.Server
	for i, addr := range cfg.ExampleAddrs {
		if js, err = connect(fmt.Sprintf("example-%d", i)); err != nil {
			return nil, err
		}
		var onVerified func(*verifier.Claims, time.Time)
		if cfg.OnVerified != nil {
			replica := i
			onVerified = func(c *verifier.Claims, at time.Time) { cfg.OnVerified(replica, c, at) }
		}
		keys, err := verifier.NewJWKS(verifier.JWKSConfig{URL: s.IssuerURL + "/.well-known/jwks.json", Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		ex, err := example.New(example.Config{
			Verifier: verifier.Config{
				Issuer: s.IssuerURL, Audiences: []string{Audience}, Algorithms: []string{verifier.EdDSA},
				Keys: keys, JetStream: js, Service: fmt.Sprintf("example-%d", i), ServiceVersion: process.Version(),
				MaxTokenLifetime: maxLifetime, MaxStaleness: cfg.MaxStaleness,
			},
			Cookie:     "jwtrevoke_at",
			Logger:     cfg.Logger.With("service", fmt.Sprintf("example-%d", i)),
			OnVerified: onVerified,
		})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, ex.Close)
		ln, err := httpx.Listen(addr, ex.Handler(), cfg.Logger)
		if err != nil {
			return nil, err
		}
		s.Examples = append(s.Examples, ex)
		s.ExampleURLs = append(s.ExampleURLs, localURL(ln.Addr()))
		exampleLns = append(exampleLns, ln)
	}

	// verifierd: a verifier of its own behind the authorizer, as in a
	// sidecar.
	if js, err = connect("verifierd"); err != nil {
		return nil, err
	}
	akeys, err := verifier.NewJWKS(verifier.JWKSConfig{URL: s.IssuerURL + "/.well-known/jwks.json", Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	av, err := verifier.New(verifier.Config{
		Issuer: s.IssuerURL, Audiences: []string{Audience}, Algorithms: []string{verifier.EdDSA},
		Keys: akeys, JetStream: js, MaxTokenLifetime: maxLifetime, MaxStaleness: cfg.MaxStaleness,
		Service: "verifierd", ServiceVersion: process.Version(), Logger: cfg.Logger.With("service", "verifierd"),
	})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, av.Close)
	az, err := authz.New(authz.Config{Verifier: av, Cookie: "jwtrevoke_at", Logger: cfg.Logger.With("service", "verifierd")})
	if err != nil {
		return nil, err
	}
	amux := httpx.NewMux()
	httpx.Health(amux, process.VerifierReady(av, js), cfg.Logger)
	authzLn, err := httpx.ListenBare(cfg.AuthorizerAddr, az.Handler(amux), cfg.Logger)
	if err != nil {
		return nil, err
	}
	s.AuthorizerURL = localURL(authzLn.Addr())

	// Run everything. The services run first; the HTTP servers then serve.
	s.run(runCtx, "revoker", rev.Run)
	s.run(runCtx, "issuer", iss.Run)
	issuerLn.SetHandler(iss.Handler())
	revokerLn.SetHandler(rev.Handler())
	s.run(runCtx, "issuer http", issuerLn.Serve)
	s.run(runCtx, "revoker http", revokerLn.Serve)
	for i, ex := range s.Examples {
		s.run(runCtx, fmt.Sprintf("example-%d", i), ex.Run)
		s.run(runCtx, fmt.Sprintf("example-%d http", i), exampleLns[i].Serve)
	}
	s.run(runCtx, "verifierd", av.Run)
	s.run(runCtx, "verifierd http", authzLn.Serve)
	readyCtx, readyCancel := context.WithTimeout(ctx, 30*time.Second)
	defer readyCancel()
	for _, ready := range []func(context.Context) error{rev.Ready, iss.Ready} {
		if err := waitReady(readyCtx, ready); err != nil {
			return nil, fmt.Errorf("devmode: not ready: %w", err)
		}
	}
	for _, ex := range s.Examples {
		if err := ex.Verifier().WaitReady(readyCtx); err != nil {
			return nil, fmt.Errorf("devmode: example not ready: %w", err)
		}
	}
	if err := av.WaitReady(readyCtx); err != nil {
		return nil, fmt.Errorf("devmode: verifierd not ready: %w", err)
	}
	return s, nil
}

// run runs f until the system stops, recording the first error.
func (s *System) run(ctx context.Context, name string, f func(context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(ctx); err != nil && ctx.Err() == nil {
			s.errMu.Lock()
			if s.firstErr == nil {
				s.firstErr = fmt.Errorf("devmode: %s: %w", name, err)
			}
			s.errMu.Unlock()
			s.log.Error("service stopped", "service", name, "err", err)
			s.cancel()
		}
	}()
}

// waitReady polls ready until it answers nil or ctx ends.
func waitReady(ctx context.Context, ready func(context.Context) error) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Err returns the first error a service stopped with, if any.
func (s *System) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.firstErr
}

// Close stops every service and server, in reverse order of start.
func (s *System) Close() {
	s.cancel()
	s.wg.Wait()
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// localURL turns a listen address into a URL a local client can use.
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
