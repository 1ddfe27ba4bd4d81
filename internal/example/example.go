// Package example is the small API the quick start, compose file and
// Kubernetes manifests run: it embeds pkg/verifier and serves GET /v1/me.
// It is the model for embedding the verifier in a real service.
package example

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx/prommetrics"
	"github.com/jwtrevoke/jwtrevoke/internal/process"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// Config configures the example service.
type Config struct {
	// Verifier is the verification policy and key source; its JetStream,
	// MeterProvider and Logger are set here by New if empty.
	Verifier verifier.Config
	// Cookie, if set, is a cookie the access token may also come in.
	Cookie string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// OnVerified, if set, is called for every request the middleware let
	// through, with the instant the handler saw it (tests and benchmarks
	// record histories with it).
	OnVerified func(c *verifier.Claims, at time.Time)
}

// Server is the example service. It is safe for concurrent use.
type Server struct {
	cfg     Config
	v       *verifier.Verifier
	metrics http.Handler
	log     *slog.Logger
}

// New builds the service and its verifier.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	mp, metrics, err := prommetrics.New()
	if err != nil {
		return nil, err
	}
	vc := cfg.Verifier
	if vc.MeterProvider == nil {
		vc.MeterProvider = mp
	}
	if vc.Logger == nil {
		vc.Logger = cfg.Logger
	}
	v, err := verifier.New(vc)
	if err != nil {
		return nil, fmt.Errorf("example: %w", err)
	}
	return &Server{cfg: cfg, v: v, metrics: metrics, log: cfg.Logger}, nil
}

// Verifier returns the embedded verifier.
func (s *Server) Verifier() *verifier.Verifier { return s.v }

// Run runs the verifier (stream replay, then follow) until ctx ends.
func (s *Server) Run(ctx context.Context) error { return s.v.Run(ctx) }

// Ready reports nil while the verifier can decide; otherwise an
// [httpx.NotReady] with a public reason (the detail stays in logs).
func (s *Server) Ready(ctx context.Context) error {
	return process.VerifierReady(s.v, s.cfg.Verifier.JetStream)(ctx)
}

// Close releases the verifier; call it after Run returned.
func (s *Server) Close() { s.v.Close() }

// Handler serves GET /v1/me behind the verifier's middleware, plus
// /healthz, /readyz and /metrics.
func (s *Server) Handler() http.Handler {
	mux := httpx.NewMux()
	auth := s.v.Middleware(verifier.MiddlewareConfig{Cookie: s.cfg.Cookie, Realm: "example"})
	mux.Handle(http.MethodGet, "/v1/me", auth(http.HandlerFunc(s.me)))
	httpx.Health(mux, s.Ready, s.log)
	mux.Handle(http.MethodGet, "/metrics", s.metrics)
	return mux
}

// meResponse is the body of GET /v1/me.
type meResponse struct {
	Subject   string    `json:"sub"`
	SessionID string    `json:"sid,omitempty"`
	ID        string    `json:"jti"`
	Issuer    string    `json:"iss"`
	Audience  []string  `json:"aud"`
	IssuedAt  time.Time `json:"iat"`
	ExpiresAt time.Time `json:"exp"`
	Claims    any       `json:"claims"`
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	c, ok := verifier.ClaimsFromContext(r.Context())
	if !ok {
		httpx.Fail(w, s.log, errors.New("example: handler reached without claims"))
		return
	}
	if s.cfg.OnVerified != nil {
		s.cfg.OnVerified(c, time.Now())
	}
	var all map[string]any
	if err := c.Decode(&all); err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, meResponse{
		Subject: c.Subject, SessionID: c.SessionID, ID: c.ID, Issuer: c.Issuer, Audience: c.Audience,
		IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, Claims: all,
	})
}
