package verifier

import (
	"errors"
	"net/http"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
)

// Refusal is how an HTTP service answers a request whose token it does not
// let through: the one rule [Verifier.Middleware] and jwtrevoke's
// authorizer (cmd/verifierd, over HTTP and gRPC) share, so every service
// tells a client the same thing.
type Refusal struct {
	// Status is 401 (no token, a bad one), 400 (a malformed Authorization
	// header) or 503 (the verifier cannot decide now: retry).
	Status int
	// Error is the JSON body's error: "unauthorized", "invalid_token",
	// "invalid_request" or "temporarily_unavailable".
	Error string
	// Description is the error_description: the reason code
	// ("revoked_session", "expired", "stale", ...; see [Reason]) or what is
	// wrong with the request. Never token content.
	Description string
	// Challenge is the WWW-Authenticate value (RFC 6750 §3) of a 400 or
	// 401; empty for 503, which sends Retry-After instead.
	Challenge string
}

// Refuse returns the answer to a request refused with err: an error of
// [Verifier.Verify], or of reading the token from the request (no token, a
// malformed or repeated Authorization header). realm is the
// WWW-Authenticate realm.
func Refuse(realm string, err error) Refusal {
	bearer := `Bearer realm="` + realm + `"`
	switch {
	case errors.Is(err, httpx.ErrNoBearer):
		// RFC 6750 §3.1: no error attribute when the request had no
		// credentials.
		return Refusal{Status: http.StatusUnauthorized, Error: "unauthorized", Description: "no bearer token", Challenge: bearer}
	case errors.Is(err, httpx.ErrMalformedAuthorization):
		const d = "malformed authorization header"
		return Refusal{Status: http.StatusBadRequest, Error: "invalid_request", Description: d,
			Challenge: bearer + `, error="invalid_request", error_description="` + d + `"`}
	case errors.Is(err, ErrUnavailable):
		return Refusal{Status: http.StatusServiceUnavailable, Error: "temporarily_unavailable", Description: Reason(err)}
	}
	reason := Reason(err)
	return Refusal{Status: http.StatusUnauthorized, Error: "invalid_token", Description: reason,
		Challenge: bearer + `, error="invalid_token", error_description="` + reason + `"`}
}
