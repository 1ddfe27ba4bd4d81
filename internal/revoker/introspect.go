package revoker

import (
	"errors"
	"net/http"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// Introspection is the body of a POST /oauth2/introspect answer (RFC 7662
// §2.2). An inactive token gets only {"active":false}, whatever the reason
// (invalid, expired, revoked, unknown, a refresh token).
type Introspection struct {
	Active    bool   `json:"active"`
	Subject   string `json:"sub,omitempty"`
	SessionID string `json:"sid,omitempty"`
	JTI       string `json:"jti,omitempty"`
	Issuer    string `json:"iss,omitempty"`
	// Audience is a string when the token names one audience, an array
	// otherwise.
	Audience  any    `json:"aud,omitempty"`
	ExpiresAt int64  `json:"exp,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"`
	TokenType string `json:"token_type,omitempty"`
}

// handleIntrospect serves RFC 7662 introspection of access tokens: the
// token checker (signature, claims) and then the Redis records, which hold
// every revocation — published or still in the outbox — so the answer is
// revocation-aware without a copy of the stream. It fails closed: while
// the keys are not fetched or Redis cannot answer it answers 503, never
// {"active":true}. token_type_hint is accepted and ignored (§2.1 allows it):
// only access tokens can be active.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, err := httpx.ParseForm(w, r, s.cfg.MaxBody)
	if err != nil {
		s.metrics.introspection(ctx, "invalid")
		httpx.Fail(w, s.cfg.Logger, err)
		return
	}
	token := form.Get("token")
	if token == "" {
		s.metrics.introspection(ctx, "invalid")
		httpx.Fail(w, s.cfg.Logger, httpx.BadRequest(`the "token" parameter is required`))
		return
	}
	c, err := s.checker.Check(ctx, token)
	switch {
	case err == nil:
	case errors.Is(err, verifier.ErrUnavailable):
		s.metrics.introspection(ctx, "unavailable")
		s.cfg.Logger.Warn("revoker: introspection cannot decide", "reason", verifier.Reason(err))
		httpx.Fail(w, s.cfg.Logger, httpx.Errorf(http.StatusServiceUnavailable, codeUnavailable,
			"revocation state cannot be decided now (%s); retry", verifier.Reason(err)))
		return
	default:
		s.metrics.introspection(ctx, "inactive")
		httpx.WriteJSON(w, http.StatusOK, Introspection{Active: false})
		return
	}
	// Revoked is what Redis has recorded, published or not: a revocation
	// waiting in the outbox must not let introspection answer active after
	// a replica refused the token. Fail closed when Redis cannot say.
	switch err := s.recorded(ctx, c); {
	case err == nil:
	case errors.Is(err, ErrFallbackUnavailable):
		s.metrics.introspection(ctx, "unavailable")
		s.cfg.Logger.Warn("revoker: introspection cannot read the revocation records", "err", err)
		httpx.Fail(w, s.cfg.Logger, httpx.Errorf(http.StatusServiceUnavailable, codeUnavailable,
			"revocation state cannot be decided now (records unavailable); retry"))
		return
	default:
		s.metrics.introspection(ctx, "inactive")
		httpx.WriteJSON(w, http.StatusOK, Introspection{Active: false})
		return
	}
	s.metrics.introspection(ctx, "active")
	var aud any = c.Audience
	if len(c.Audience) == 1 {
		aud = c.Audience[0]
	}
	httpx.WriteJSON(w, http.StatusOK, Introspection{
		Active:    true,
		Subject:   c.Subject,
		SessionID: c.SessionID,
		JTI:       c.ID,
		Issuer:    c.Issuer,
		Audience:  aud,
		ExpiresAt: c.ExpiresAt.Unix(),
		IssuedAt:  c.IssuedAt.Unix(),
		TokenType: "access_token",
	})
}
