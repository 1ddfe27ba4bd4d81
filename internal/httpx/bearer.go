package httpx

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// The errors of [BearerToken]. ErrRepeatedAuthorization is also an
// ErrMalformedAuthorization, for callers that do not tell them apart.
var (
	ErrNoBearer               = errors.New("httpx: no bearer token")
	ErrMalformedAuthorization = errors.New("httpx: malformed Authorization header")
	ErrRepeatedAuthorization  = fmt.Errorf("%w: more than one Authorization header", ErrMalformedAuthorization)
)

// BearerToken returns the request's bearer token (RFC 6750 §2.1): the one
// Authorization header, scheme "Bearer" in any case, one or more spaces,
// then a token without spaces or tabs. With no Authorization header and
// cookie not empty, it returns the value of the cookie so named instead.
// Tokens are never read from query strings or forms: those end up in logs.
//
// It returns [ErrNoBearer] when the request carries no token, and
// [ErrMalformedAuthorization] (or [ErrRepeatedAuthorization]) when its
// Authorization header is not a single bearer token, such as Basic.
func BearerToken(r *http.Request, cookie string) (string, error) {
	h := r.Header.Values("Authorization")
	switch {
	case len(h) > 1:
		return "", ErrRepeatedAuthorization
	case len(h) == 1:
		scheme, tok, ok := strings.Cut(h[0], " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", ErrMalformedAuthorization
		}
		tok = strings.TrimLeft(tok, " ")
		if tok == "" || strings.ContainsAny(tok, " \t") {
			return "", ErrMalformedAuthorization
		}
		return tok, nil
	case cookie != "":
		if c, err := r.Cookie(cookie); err == nil && c.Value != "" {
			return c.Value, nil
		}
	}
	return "", ErrNoBearer
}
