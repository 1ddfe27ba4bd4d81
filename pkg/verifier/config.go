package verifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/jwtrevoke/jwtrevoke/internal/keyset"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// Defaults and limits of [Config].
const (
	DefaultLeeway           = 5 * time.Second
	MaxLeeway               = time.Minute
	DefaultMaxTokenLifetime = time.Hour
	DefaultMaxTokenSize     = 8 << 10
	DefaultCapacity         = 1_000_000
	DefaultMaxStaleness     = 15 * time.Second
	DefaultTokenCacheBytes  = 64 << 20
	DefaultAnnounceInterval = time.Second
)

// Algorithms the verifier can check. Config.Algorithms must list a subset.
const (
	EdDSA = "EdDSA"
	ES256 = "ES256"
	RS256 = "RS256"
)

var supportedAlgorithms = []string{EdDSA, ES256, RS256}

// MaxEpochScopes bounds Config.EpochScopes: each is a look-up per Verify
// once a scope revocation is held.
const MaxEpochScopes = 8

// Key is a public verification key with its kid (see [Config.Keys]).
type Key = keyset.Key

// KeySource looks up verification keys by kid. It must never fetch a
// location named by the token itself; implementations are given their
// addresses by configuration only. It must be safe for concurrent use.
// [StaticKeys] and [NewJWKS] make the two this package ships.
//
// Key returns an error wrapping [ErrUnknownKey] for a kid it does not have,
// and one wrapping [ErrKeysUnavailable] when it cannot tell yet. Ready
// returns a channel closed once it can answer (static keys: at once). A
// source with background work also has a Run(ctx) error method, which
// [Verifier.Run] runs.
type KeySource interface {
	Key(ctx context.Context, kid string) (Key, error)
	Ready() <-chan struct{}
}

// StalePolicy says what Verify does while the revocation state may be more
// than Config.MaxStaleness behind the stream.
type StalePolicy int

const (
	// StaleReject fails closed: Verify returns [ErrStale] (503). Default.
	StaleReject StalePolicy = iota
	// StaleFallback asks Config.Fallback about the token; if the fallback
	// cannot answer, Verify returns [ErrStale].
	StaleFallback
	// InsecureStaleAccept decides on the local state alone, however old.
	// It MUST NOT be used where a logout has to take effect while the
	// stream is unreachable; it exists for services that prefer
	// availability and say so.
	InsecureStaleAccept
)

func (p StalePolicy) String() string {
	switch p {
	case StaleReject:
		return "reject"
	case StaleFallback:
		return "fallback"
	case InsecureStaleAccept:
		return "insecure-accept"
	}
	return fmt.Sprintf("StalePolicy(%d)", int(p))
}

// Fallback answers revocation questions from elsewhere (for example the
// revoker's Redis records) while the local state is too stale. Check returns
// nil when none of the token's jti, sid, subject or key is revoked, an
// error wrapping the matching revocation sentinel ([ErrTokenRevoked], ...)
// when one is, and any other error when it cannot tell.
type Fallback interface {
	Check(ctx context.Context, c *Claims) error
}

// Config is the verification policy. It is copied by [New]; zero fields take
// the documented defaults; nothing is written back.
type Config struct {
	// Issuer is the exact iss every token must carry. Required.
	Issuer string
	// Audiences lists accepted aud values; a token must name at least one.
	// Required.
	Audiences []string
	// Algorithms is the allow-list of JWS algorithms (EdDSA, ES256, RS256).
	// Required: there is no default, so an algorithm is never accepted by
	// accident. "none" and HMAC algorithms are never accepted.
	Algorithms []string
	// SessionClaim, TokenIDClaim and TokenIDOptional say where a token
	// carries its session id and token id: defaults "sid" and "jti", a
	// token id required (see [CheckerConfig]).
	SessionClaim    string
	TokenIDClaim    string
	TokenIDOptional bool
	// Providers are further issuers whose tokens are trusted, each with its
	// own keys, audiences, algorithms and claim names (see
	// [CheckerConfig]). Until revocations are scoped to an issuer, a
	// revocation applies to the tokens of every trusted issuer: a logout
	// of subject "alice" at one logs out every issuer's "alice", which
	// refuses more, never less.
	Providers []Provider
	// EpochScopes names the claims whose values are epoch scopes (see
	// [CheckerConfig]).
	EpochScopes []string

	// Keys verifies signatures: [StaticKeys], a [JWKS] from [NewJWKS]
	// (fetched and cached; [Verifier.Run] keeps it fresh) or any
	// [KeySource]. Required.
	Keys KeySource

	// JetStream is the connection the revocation feed reads the stream
	// through. Required; the caller owns and closes the connection.
	JetStream jetstream.JetStream
	// Stream is the revocation stream's name; default events.DefaultStreamName.
	Stream string

	// Leeway tolerated on exp, nbf and iat for clock skew. Default 5s, at most 1m.
	Leeway time.Duration
	// MaxTokenLifetime is the longest exp - iat accepted; longer tokens are
	// refused (ErrClaims), which is what lets revocations leave memory on
	// time. Default 1h; the stream must retain events at least this long
	// plus Leeway.
	MaxTokenLifetime time.Duration
	// MaxTokenSize caps the compact token, in bytes, before any parsing.
	// Default 8 KiB.
	MaxTokenSize int
	// Capacity is the most live revocations held. Past it the verifier
	// fails closed with ErrOverCapacity. Default 1,000,000.
	Capacity int
	// TokenCacheBytes bounds the verified-token cache. Default 64 MiB; -1
	// disables the cache (every Verify checks the signature).
	TokenCacheBytes int64

	// MaxStaleness bounds how far behind the stream the state may be before
	// StalePolicy applies. Default 15s.
	MaxStaleness time.Duration
	// StalePolicy applies past MaxStaleness. Default StaleReject.
	StalePolicy StalePolicy
	// Fallback is consulted under StaleFallback. Required with it.
	Fallback Fallback

	// Validate, if set, is an extra rule run on every token after the
	// built-in checks; an error refuses the token with ErrClaims. It can
	// only add failures.
	Validate func(*Claims) error

	// Service and ServiceVersion name what embeds the verifier in its
	// announcements (see [Verifier.ReplicaID]): the revoker's view of the
	// fleet shows them. At most 64 printable bytes each; may be empty.
	Service, ServiceVersion string
	// AnnounceInterval is how often the verifier announces itself on NATS
	// (events.AnnounceSubject); default DefaultAnnounceInterval, at least
	// 10ms. It also announces right after applying events: 1 ms after
	// the first of a burst, then at most every 5 ms while they keep
	// coming.
	AnnounceInterval time.Duration

	// OnApplied, if set, is called after each revocation event has been
	// applied to the local state, with the instant it was applied (the
	// verifier's clock). It runs on the feed's goroutine: it must be quick
	// and must not block. For propagation measurements and audit logs.
	OnApplied func(e events.Event, applied time.Time)

	// Now is the clock for every exp, nbf, iat and staleness comparison;
	// nil means time.Now.
	Now func() time.Time
	// Logger receives operational logs; nil means slog.Default().
	Logger *slog.Logger
	// MeterProvider receives the metrics; nil means the otel global.
	MeterProvider metric.MeterProvider
	// TracerProvider receives a span per applied event; nil means no
	// spans at all (pass otel.GetTracerProvider() for the global): the
	// replay of a large stream is not paid for tracing nobody reads.
	TracerProvider trace.TracerProvider
}

// checkerConfig is the part of c a [Checker] takes.
func (c Config) checkerConfig() CheckerConfig {
	return CheckerConfig{
		Issuer:           c.Issuer,
		Audiences:        c.Audiences,
		Algorithms:       c.Algorithms,
		SessionClaim:     c.SessionClaim,
		TokenIDClaim:     c.TokenIDClaim,
		TokenIDOptional:  c.TokenIDOptional,
		Providers:        c.Providers,
		EpochScopes:      c.EpochScopes,
		Leeway:           c.Leeway,
		MaxTokenLifetime: c.MaxTokenLifetime,
		MaxTokenSize:     c.MaxTokenSize,
		TokenCacheBytes:  c.TokenCacheBytes,
		Validate:         c.Validate,
		Now:              c.Now,
	}
}

// withDefaults validates c and returns a copy with defaults filled in. The
// token policy is the Checker's (CheckerConfig.withDefaults); the rest is
// the revocation state's.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("verifier: config: "+format, args...))
	}
	if c.Keys == nil {
		bad("Keys is required: StaticKeys, NewJWKS or your own KeySource")
	}
	if c.TokenCacheBytes == 0 {
		c.TokenCacheBytes = DefaultTokenCacheBytes
	}
	k := c.checkerConfig().withDefaults(bad)
	c.Audiences, c.Algorithms, c.Leeway, c.MaxTokenLifetime = k.Audiences, k.Algorithms, k.Leeway, k.MaxTokenLifetime
	c.MaxTokenSize, c.Now = k.MaxTokenSize, k.Now
	c.SessionClaim, c.TokenIDClaim = k.SessionClaim, k.TokenIDClaim
	if c.JetStream == nil {
		bad("JetStream is required: revocations arrive through it")
	}
	if c.MaxStaleness == 0 {
		c.MaxStaleness = DefaultMaxStaleness
	}
	if c.MaxStaleness < 0 {
		bad("MaxStaleness must not be negative")
	}
	if c.Capacity == 0 {
		c.Capacity = DefaultCapacity
	}
	if c.Capacity < 0 {
		bad("Capacity must be positive")
	}
	switch c.StalePolicy {
	case StaleReject, InsecureStaleAccept:
	case StaleFallback:
		if c.Fallback == nil {
			bad("StaleFallback needs a Fallback")
		}
	default:
		bad("unknown StalePolicy %d", int(c.StalePolicy))
	}
	if c.Stream == "" {
		c.Stream = events.DefaultStreamName
	}
	if c.AnnounceInterval == 0 {
		c.AnnounceInterval = DefaultAnnounceInterval
	}
	if c.AnnounceInterval < 10*time.Millisecond || c.AnnounceInterval > time.Minute {
		bad("AnnounceInterval %s not in [10ms, 1m]", c.AnnounceInterval)
	}
	if len(c.Service) > 64 || len(c.ServiceVersion) > 64 || strings.ContainsFunc(c.Service+c.ServiceVersion, unicode.IsControl) {
		bad("Service and ServiceVersion must be at most 64 printable bytes each")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, errors.Join(errs...)
}
