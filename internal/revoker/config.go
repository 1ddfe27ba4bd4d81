package revoker

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// Defaults of [Config].
const (
	DefaultIdempotencyTTL = 24 * time.Hour
	DefaultTimeout        = 5 * time.Second
	DefaultMaxBody        = 16 << 10
)

// MaxIdempotencyKeyLen is the longest Idempotency-Key header accepted, in
// bytes (printable ASCII only).
const MaxIdempotencyKeyLen = 128

// Config configures a [Server]. [New] copies and validates it; zero fields
// take the documented defaults; nothing is written back.
type Config struct {
	// JetStream publishes events. Required;
	// the caller owns and closes its connection. Readiness requires the
	// connection to be connected.
	JetStream jetstream.JetStream
	// Store holds the Redis records (revocations, idempotency). Required.
	Store *store.Store
	// Credentials are the service credentials accepted on every endpoint
	// but the health ones (Authorization: Bearer <credential>); several for
	// rotation, each at least 16 bytes, without spaces or tabs. Required.
	Credentials []string

	// Stream is the revocation stream's name; default
	// events.DefaultStreamName.
	Stream string
	// Replicas of the stream (1..5); default 1. Production: 3.
	Replicas int
	// MaxTokenLifetime is the longest access-token lifetime (exp - iat) in
	// the system. It sizes the stream's retention and bounds the exp a
	// token revocation may carry. Default verifier.DefaultMaxTokenLifetime
	// (1h). It must equal the verifiers' setting.
	MaxTokenLifetime time.Duration
	// Leeway is the verifiers' clock-skew leeway; default
	// verifier.DefaultLeeway (5s). A token is revocable until exp + Leeway.
	Leeway time.Duration

	// The tokens introspection and revocation by token accept. Issuer,
	// Audiences and Algorithms are required, and exactly one of Keys and
	// JWKSURL; see verifier.CheckerConfig for each.
	Issuer     string
	Audiences  []string
	Algorithms []string
	Keys       []verifier.Key
	JWKSURL    string
	// InsecureJWKSOverHTTP allows an http:// JWKSURL on a non-loopback
	// host. It MUST NOT be set in production (see verifier.Config).
	InsecureJWKSOverHTTP bool

	// Providers are the outside identity providers whose logout signals
	// the revoker takes (see [Provider]); none by default.
	Providers []Provider

	// EpochScopes names the claims whose values the revoker takes scope
	// revocations of ({"type":"scope","claim","value"}): a claim not
	// listed is refused, since no verifier would apply it. It must equal
	// the verifiers' setting (verifier.Config.EpochScopes, at most
	// verifier.MaxEpochScopes); introspection applies the same scopes.
	// None by default; the issuer's own scope ({"type":"issuer"}) needs
	// no claim.
	EpochScopes []string

	// ConsoleCredentials enable the operators' console (GET /console):
	// the credentials an operator logs in with, several for rotation,
	// each at least 16 bytes. Sessions are signed with a key derived from
	// them, so every revoker replica with the same credentials accepts
	// the same sessions, and rotating them ends every session. None by
	// default: the console is off and /console is a 404.
	ConsoleCredentials []string
	// ConsoleSession is how long a console login lasts; default
	// DefaultConsoleSession (8h).
	ConsoleSession time.Duration

	// IdempotencyTTL is how long an Idempotency-Key is remembered; default
	// 24h.
	IdempotencyTTL time.Duration
	// Timeout bounds the Redis and NATS work of one request; default 5s.
	// Past it the request answers 503.
	Timeout time.Duration
	// MaxBody bounds request bodies in bytes; default 16 KiB.
	MaxBody int64

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives operational logs; nil means slog.Default(). Tokens
	// and credentials are never logged.
	Logger *slog.Logger
	// MeterProvider receives the revoker's metrics, and
	// MetricsHandler serves them at /metrics. When both are nil, New
	// creates a private Prometheus registry (prommetrics.New) and serves
	// it. When MeterProvider is set and MetricsHandler nil, /metrics is not
	// served.
	MeterProvider  metric.MeterProvider
	MetricsHandler http.Handler
	// TracerProvider for publishing; nil means the otel
	// global.
	TracerProvider trace.TracerProvider
}

// withDefaults validates c and returns a copy with defaults filled in.
// Settings the token checker checks (algorithms, keys) are reported by
// verifier.NewChecker.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("revoker: config: "+format, args...))
	}
	if c.JetStream == nil {
		bad("JetStream is required")
	}
	if c.Store == nil {
		bad("Store is required")
	}
	if len(c.Credentials) == 0 {
		bad("at least one service credential is required")
	}
	c.Credentials = slices.Clone(c.Credentials)
	c.ConsoleCredentials = slices.Clone(c.ConsoleCredentials)
	c.Audiences = slices.Clone(c.Audiences)
	c.Algorithms = slices.Clone(c.Algorithms)
	c.Keys = slices.Clone(c.Keys)
	c.Providers = slices.Clone(c.Providers)
	c.EpochScopes = slices.Clone(c.EpochScopes)
	if c.Stream == "" {
		c.Stream = events.DefaultStreamName
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.MaxTokenLifetime, verifier.DefaultMaxTokenLifetime)
	def(&c.Leeway, verifier.DefaultLeeway)
	def(&c.IdempotencyTTL, DefaultIdempotencyTTL)
	def(&c.Timeout, DefaultTimeout)
	def(&c.ConsoleSession, DefaultConsoleSession)
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"MaxTokenLifetime", c.MaxTokenLifetime}, {"Leeway", c.Leeway},
		{"IdempotencyTTL", c.IdempotencyTTL}, {"Timeout", c.Timeout}, {"ConsoleSession", c.ConsoleSession},
	} {
		if d.v < 0 {
			bad("%s must not be negative", d.name)
		}
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxBody < 1024 {
		bad("MaxBody %d is below 1024 bytes", c.MaxBody)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	// The stream options are checked here too, so a bad replica count or
	// lifetime stops New rather than looping in Run.
	if _, err := events.StreamConfig(c.streamOptions()); err != nil {
		bad("%w", err)
	}
	return c, errors.Join(errs...)
}

// keySource is the token checker's keys: the static Keys or the JWKS at
// JWKSURL, exactly one of them.
func (c Config) keySource() (verifier.KeySource, error) {
	switch {
	case len(c.Keys) > 0 && c.JWKSURL == "":
		k, err := verifier.StaticKeys(c.Keys...)
		if err != nil {
			return nil, fmt.Errorf("revoker: config: %w", err)
		}
		return k, nil
	case c.JWKSURL != "" && len(c.Keys) == 0:
		k, err := verifier.NewJWKS(verifier.JWKSConfig{URL: c.JWKSURL, InsecureAllowHTTP: c.InsecureJWKSOverHTTP,
			Now: c.Now, Logger: c.Logger.With("component", "jwks")})
		if err != nil {
			return nil, fmt.Errorf("revoker: config: %w", err)
		}
		return k, nil
	}
	return nil, errors.New("revoker: config: exactly one of Keys and JWKSURL is required")
}

func (c Config) streamOptions() events.StreamOptions {
	return events.StreamOptions{
		Name:             c.Stream,
		Replicas:         c.Replicas,
		MaxTokenLifetime: c.MaxTokenLifetime,
		Leeway:           c.Leeway,
	}
}
