package verifier

import (
	"context"
	"net/http"
	"strconv"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
)

// MiddlewareConfig configures [Verifier.Middleware]. The zero value reads
// the token from the Authorization header only.
type MiddlewareConfig struct {
	// Realm is sent in WWW-Authenticate; default "jwtrevoke".
	Realm string
	// Cookie, if set, names a cookie to read the token from when the request
	// has no Authorization header (for browser apps that keep the access
	// token in an HttpOnly cookie). Tokens are never read from query
	// strings or forms: those end up in logs.
	Cookie string
	// RetryAfter is the Retry-After value, in seconds, sent with 503;
	// default 1.
	RetryAfter int
}

type claimsKey struct{}

// ClaimsFromContext returns the claims Middleware stored for the request.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// NewContext returns a copy of ctx carrying c, as Middleware does.
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// Middleware returns net/http middleware that verifies the request's bearer
// token and calls next with the claims in the request context
// ([ClaimsFromContext]). Otherwise it answers itself, with a JSON body
// {"error","error_description"}:
//
//   - no token: 401 with "WWW-Authenticate: Bearer realm=..." (RFC 6750 §3.1);
//   - a bad token: 401, error="invalid_token" and the reason as
//     error_description ("revoked_session", "expired", ...);
//   - cannot decide now: 503 with Retry-After.
func (v *Verifier) Middleware(cfg MiddlewareConfig) func(http.Handler) http.Handler {
	if cfg.Realm == "" {
		cfg.Realm = "jwtrevoke"
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 1
	}
	retryAfter := strconv.Itoa(cfg.RetryAfter)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, err := httpx.BearerToken(r, cfg.Cookie)
			var c *Claims
			if err == nil {
				c, err = v.Verify(r.Context(), raw)
			}
			if err != nil {
				ref := Refuse(cfg.Realm, err)
				if ref.Challenge != "" {
					w.Header().Set("WWW-Authenticate", ref.Challenge)
				} else {
					w.Header().Set("Retry-After", retryAfter)
				}
				httpx.WriteError(w, ref.Status, ref.Error, ref.Description)
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
		})
	}
}
