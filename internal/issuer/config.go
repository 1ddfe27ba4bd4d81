package issuer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// Defaults and limits of [Config].
const (
	DefaultAccessTTL   = 5 * time.Minute
	MaxAccessTTL       = time.Hour
	DefaultRefreshTTL  = 14 * 24 * time.Hour
	DefaultGrace       = 10 * time.Second
	MaxGrace           = time.Minute
	DefaultCookieName  = "jwtrevoke_at"
	DefaultMaxBody     = 16 << 10
	MinRefreshSecret   = 32
	DefaultLeeway      = 5 * time.Second
	MaxExtraClaimBytes = 4 << 10
)

// ErrInvalidConfig is wrapped by every error [New] returns for a bad Config.
var ErrInvalidConfig = errors.New("issuer: invalid configuration")

// Revoker asks the revoker to revoke; [revoker.Client] implements it. It
// must be safe for concurrent use.
type Revoker interface {
	Revoke(ctx context.Context, req revoker.Request, idempotencyKey string, wait ...revoker.Wait) (revoker.Result, error)
	// CallerID is the id the revoker scopes this caller's idempotency
	// keys by; the issuer records logouts under it (see revokeSession).
	CallerID() string
}

var _ Revoker = (*revoker.Client)(nil)

// Config configures a [Server]. [New] validates and copies it; zero fields
// take the documented defaults; nothing is written back.
type Config struct {
	// Issuer is the iss claim of every access token. Required.
	Issuer string
	// Audiences is the aud claim (a string when there is one). Required.
	Audiences []string

	// Keys are the signing keys. All are published in the JWKS; the one
	// named SigningKeyID (default: the first) signs. Required.
	Keys []SigningKey
	// SigningKeyID names the key that signs; empty means Keys[0].
	SigningKeyID string

	// AccessTTL is the access-token lifetime; default 5m, at most 1h.
	AccessTTL time.Duration
	// RefreshTTL is how long a refresh token stays usable after it was
	// issued (each rotation starts a new period); default 14 days. It must
	// not exceed the store's Retention.
	RefreshTTL time.Duration
	// RefreshGrace is the window in which the refresh token rotated just
	// before may be presented again and yields the same successor (a client
	// retry after a lost answer); default 10s, at most 1m.
	RefreshGrace time.Duration
	// RefreshSecret keys the HMAC that derives successor refresh tokens. At
	// least 32 bytes, secret, the same on every issuer replica. Required.
	// Changing it breaks grace-window retries in flight, nothing else.
	RefreshSecret []byte

	// Store holds sessions and refresh-token hashes. Required.
	Store *store.Store
	// Revoker publishes revocations (logout, reuse detection, RFC 7009).
	// Required.
	Revoker Revoker
	// Leeway is the clock leeway when checking presented tokens; default
	// 5s.
	Leeway time.Duration
	// EpochScopes names the session claims that are epoch scopes, as the
	// verifiers' setting (verifier.Config.EpochScopes): a scope revocation
	// of a session's claim value, like a logout of its subject or of the
	// whole issuer, ends the sessions that began at or before it, so
	// their refresh tokens stop working too. None by default.
	EpochScopes []string

	// ServiceCredentials accepted on POST /v1/sessions (Authorization:
	// Bearer). Several may be valid at once, for rotation. Empty disables
	// the endpoint (404).
	ServiceCredentials []string
	// Users maps user names to bcrypt hashes for POST /v1/login. Nil
	// disables the endpoint (404): production apps authenticate users
	// themselves and call POST /v1/sessions.
	Users map[string][]byte

	// SetCookie makes login and refresh also set the access token as an
	// HttpOnly cookie named CookieName; logout clears it.
	SetCookie bool
	// CookieName; default "jwtrevoke_at".
	CookieName string
	// InsecureCookie drops the Secure attribute, so the cookie also travels
	// over plain http. It MUST NOT be set in production; it exists for dev
	// mode on http://localhost.
	InsecureCookie bool
	// CookieSameSite; default http.SameSiteStrictMode.
	CookieSameSite http.SameSite

	// MaxBody bounds request bodies, in bytes; default 16 KiB.
	MaxBody int64

	// Now is the clock for iat, exp and session times; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// MeterProvider receives the issuer's metrics. Nil means a private Prometheus registry served at /metrics.
	MeterProvider metric.MeterProvider
	// MetricsHandler is served at /metrics when MeterProvider is set (for
	// example the handler prommetrics.New returned with it); nil then
	// means no /metrics.
	MetricsHandler http.Handler
}

// withDefaults validates c and returns a copy with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.Issuer == "" {
		bad("Issuer is required")
	}
	c.EpochScopes = slices.Clone(c.EpochScopes)
	if err := verifier.CheckEpochScopes(c.EpochScopes); err != nil {
		bad("%s", err)
	}
	if len(c.Audiences) == 0 || slices.Contains(c.Audiences, "") {
		bad("Audiences is required and must not contain an empty value")
	}
	c.Audiences = slices.Clone(c.Audiences)
	c.Keys = slices.Clone(c.Keys)
	if len(c.Keys) == 0 {
		bad("Keys is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AccessTTL, DefaultAccessTTL)
	def(&c.RefreshTTL, DefaultRefreshTTL)
	def(&c.RefreshGrace, DefaultGrace)
	def(&c.Leeway, DefaultLeeway)
	if c.AccessTTL < time.Second || c.AccessTTL > MaxAccessTTL {
		bad("AccessTTL %s not in [1s, %s]", c.AccessTTL, MaxAccessTTL)
	}
	if c.RefreshTTL < c.AccessTTL {
		bad("RefreshTTL %s shorter than AccessTTL %s", c.RefreshTTL, c.AccessTTL)
	}
	if c.RefreshGrace < 0 || c.RefreshGrace > MaxGrace {
		bad("RefreshGrace %s not in [0, %s]", c.RefreshGrace, MaxGrace)
	}
	if len(c.RefreshSecret) < MinRefreshSecret {
		bad("RefreshSecret must be at least %d bytes", MinRefreshSecret)
	}
	c.RefreshSecret = bytes.Clone(c.RefreshSecret)
	if c.Store == nil {
		bad("Store is required")
	}
	if c.Revoker == nil {
		bad("Revoker is required")
	}
	c.ServiceCredentials = slices.Clone(c.ServiceCredentials)
	if c.Users != nil {
		users := make(map[string][]byte, len(c.Users))
		for name, hash := range c.Users {
			if name == "" || len(hash) == 0 {
				bad("Users: empty name or hash")
			} else if events.ValidValue(events.KindSubject, name) != nil {
				// The name is the sub of the user's tokens.
				bad("Users: a name is longer than %d bytes or not printable UTF-8", events.MaxValueLen)
			}
			users[name] = bytes.Clone(hash)
		}
		c.Users = users
	}
	if c.CookieName == "" {
		c.CookieName = DefaultCookieName
	}
	if c.CookieSameSite == 0 {
		c.CookieSameSite = http.SameSiteStrictMode
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxBody < 1<<10 || c.MaxBody > 1<<20 {
		bad("MaxBody %d not in [1KiB, 1MiB]", c.MaxBody)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, errors.Join(errs...)
}
