// Package issuer is jwtrevoke's token service: it mints short-lived access
// JWTs signed with asymmetric keys and opaque refresh tokens rotated on every
// use, serves its JWKS, and turns logouts into revocations by asking the
// revoker.
//
// # Clocks (promise 7)
//
// Access tokens carry iat and exp with microsecond precision. A subject's
// logout epoch is set by the revoker's clock (store.RaiseEpoch); verifiers
// reject a token whose iat is not after it.
//
//   - Refresh takes the new token's iat before it checks the session and the
//     subject's epoch. A logout-all that becomes visible in Redis after that
//     check carries an epoch taken after the revoker received the request, so
//     (clocks agreeing) it is at or after that iat and covers the new token.
//   - Login and session creation read the subject's epoch and, if the
//     issuer's clock is not past it (the revoker's clock runs ahead), move iat
//     to the epoch plus one microsecond: a user who logs in after a
//     logout-all gets a token that verifies, even within the same second.
//   - Skew caveat: if the revoker's clock is behind the issuer's by d, a
//     logout-all racing a refresh can miss a token minted up to d before it
//     was recorded; that token lives at most AccessTTL. Keep the hosts on NTP
//     (d in milliseconds) or the verifier leeway small.
package issuer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx/prommetrics"
	"github.com/jwtrevoke/jwtrevoke/internal/keyset"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// Server is the issuer. Build it with [New], serve [Server.Handler], run
// [Server.Run] beside it, and [Server.Close] it after Run returned. A Server
// is safe for concurrent use.
type Server struct {
	cfg      Config
	keys     *signingKeys
	maxFrame int // the largest frameLen of the configured keys
	jwks     []byte
	checker  *verifier.Checker  // signature, claims and expiry of presented tokens
	creds    *httpx.Credentials // nil: /v1/sessions disabled
	dummy    []byte             // bcrypt hash for unknown users
	log      *slog.Logger

	ownMeter       *sdkmetric.MeterProvider // non-nil when New made it
	metricsHandler http.Handler
	minted         metric.Int64Counter
	refreshes      metric.Int64Counter
	reuse          metric.Int64Counter
	revokerErrors  metric.Int64Counter
}

// New validates cfg and builds a Server. It does not contact Redis.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}

	var publics []keyset.Key
	var algs []string
	var order []signer // the signing key first, then the others
	seen := map[string]bool{}
	for i, k := range cfg.Keys {
		sg, err := newSigner(k)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %w", ErrInvalidConfig, i, err)
		}
		if seen[sg.kid] {
			return nil, fmt.Errorf("%w: duplicate kid %q", ErrInvalidConfig, sg.kid)
		}
		seen[sg.kid] = true
		s.maxFrame = max(s.maxFrame, frameLen(sg))
		publics = append(publics, sg.public)
		if !slices.Contains(algs, sg.alg) {
			algs = append(algs, sg.alg)
		}
		if (cfg.SigningKeyID == "" && i == 0) || sg.kid == cfg.SigningKeyID {
			order = append([]signer{sg}, order...)
		} else {
			order = append(order, sg)
		}
	}
	if cfg.SigningKeyID != "" && !seen[cfg.SigningKeyID] {
		return nil, fmt.Errorf("%w: SigningKeyID %q names no key", ErrInvalidConfig, cfg.SigningKeyID)
	}
	s.keys = newSigningKeys(order)
	if s.jwks, err = keyset.MarshalJWKS(publics...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if len(cfg.ServiceCredentials) > 0 {
		if s.creds, err = httpx.NewCredentials(cfg.ServiceCredentials...); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	if cfg.Users != nil {
		if s.dummy, err = dummyHash(cfg.Users); err != nil {
			return nil, err
		}
	}

	mp := cfg.MeterProvider
	s.metricsHandler = cfg.MetricsHandler
	if mp == nil {
		var h http.Handler
		s.ownMeter, h, err = prommetrics.New()
		if err != nil {
			return nil, err
		}
		mp, s.metricsHandler = s.ownMeter, h
	}
	if err := s.newMetrics(mp); err != nil {
		s.Close()
		return nil, err
	}

	ownKeys, err := verifier.StaticKeys(publics...)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	// Presented tokens are checked by signature and claims here and for
	// revocation against the Redis records (live): every revocation is
	// recorded there before it is published, so the issuer needs no copy
	// of the stream.
	s.checker, err = verifier.NewChecker(ownKeys, verifier.CheckerConfig{
		Issuer:           cfg.Issuer,
		Audiences:        cfg.Audiences,
		Algorithms:       algs,
		Leeway:           cfg.Leeway,
		MaxTokenLifetime: cfg.AccessTTL,
		Now:              cfg.Now,
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return s, nil
}

func (s *Server) newMetrics(mp metric.MeterProvider) error {
	m := mp.Meter("github.com/jwtrevoke/jwtrevoke/internal/issuer")
	var errs [4]error
	s.minted, errs[0] = m.Int64Counter("jwtrevoke.issuer.tokens.minted",
		metric.WithDescription("Access tokens minted, by grant (login, session, refresh)."))
	s.refreshes, errs[1] = m.Int64Counter("jwtrevoke.issuer.refresh",
		metric.WithDescription("Refresh attempts, by outcome."))
	s.reuse, errs[2] = m.Int64Counter("jwtrevoke.issuer.refresh.reuse",
		metric.WithDescription("Retired refresh tokens presented: the session was revoked."))
	s.revokerErrors, errs[3] = m.Int64Counter("jwtrevoke.issuer.revoker.errors",
		metric.WithDescription("Calls to the revoker that failed."))
	if err := errors.Join(errs[:]...); err != nil {
		return fmt.Errorf("issuer: metrics: %w", err)
	}
	return nil
}

// keyCheckInterval is how often Run asks Redis whether the signing key is
// revoked.
const keyCheckInterval = time.Second

// Run follows key revocations until ctx ends, then returns nil: about once a
// second it asks Redis whether the signing key is recorded revoked (every
// revocation is recorded there before it is published) and, if so, moves
// to the next configured key. A Redis that does not answer is reported by
// Ready, not here.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(keyCheckInterval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, keyCheckInterval)
		_ = s.checkSigningKey(cctx)
		cancel()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Ready reports whether the issuer can serve: Redis answers and a signing
// key is not revoked. It asks Redis about the signing key as Run does, so
// a replica is never ready with a key revoked before it started.
func (s *Server) Ready(ctx context.Context) error {
	err := s.checkSigningKey(ctx)
	if errors.Is(err, errKeysRevoked) {
		return httpx.NotReadyBecause(keysRevokedReason, errKeysRevoked)
	}
	if err != nil {
		return fmt.Errorf("issuer: %w", httpx.NotReadyBecause("redis unreachable", err))
	}
	return nil
}

// checkSigningKey asks Redis whether the active signing key is recorded
// revoked and moves past every one that is. It returns errKeysRevoked when
// none is left, or Redis's error.
func (s *Server) checkSigningKey(ctx context.Context) error {
	for sg := s.keys.active(); sg != nil; sg = s.keys.active() {
		err := s.cfg.Store.Check(ctx, store.Query{KID: sg.kid})
		if !errors.Is(err, verifier.ErrKeyRevoked) {
			return err
		}
		s.keyRevoked(sg.kid)
	}
	return errKeysRevoked
}

// keyRevoked stops signing with kid if it is one of the issuer's keys.
func (s *Server) keyRevoked(kid string) {
	if !s.keys.revoke(kid) {
		return
	}
	if next := s.keys.active(); next != nil {
		s.log.Warn("signing key revoked: signing with the next configured key", "kid", kid, "next", next.kid)
	} else {
		s.log.Error("signing key revoked: every signing key is revoked, minting stopped", "kid", kid)
	}
}

// Close releases the token checker and the metrics. Call it after Run
// returned.
func (s *Server) Close() {
	if s.checker != nil {
		s.checker.Close()
	}
	if s.ownMeter != nil {
		_ = s.ownMeter.Shutdown(context.Background())
	}
}

// JWKS returns the published key set document.
func (s *Server) JWKS() []byte { return slices.Clone(s.jwks) }

// Handler returns the issuer's HTTP API (see the package's DESIGN contract).
func (s *Server) Handler() http.Handler {
	mux := httpx.NewMux()
	if s.cfg.Users != nil {
		mux.Handle("POST", "/v1/login", http.HandlerFunc(s.handleLogin))
	}
	if s.creds != nil {
		mux.Handle("POST", "/v1/sessions", s.creds.Require(http.HandlerFunc(s.handleSessions)))
	}
	mux.Handle("POST", "/oauth2/token", http.HandlerFunc(s.handleToken))
	mux.Handle("POST", "/oauth2/revoke", http.HandlerFunc(s.handleRevoke))
	mux.Handle("POST", "/v1/logout", http.HandlerFunc(s.handleLogout))
	mux.Handle("POST", "/v1/logout/all", http.HandlerFunc(s.handleLogoutAll))
	mux.Handle("GET", "/.well-known/jwks.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(s.jwks)
	}))
	httpx.Health(mux, s.Ready, s.log)
	if s.metricsHandler != nil {
		mux.Handle("GET", "/metrics", s.metricsHandler)
	}
	return mux
}
