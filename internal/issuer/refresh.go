package issuer

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
)

// revokerTimeout bounds a call to the revoker made on a client's behalf
// after the client may have gone (reuse detection).
const revokerTimeout = 5 * time.Second

var errInvalidGrant = &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_grant",
	Description: "refresh token is invalid, expired or revoked"}

// handleToken serves /oauth2/token: the refresh grant (RFC 6749 §6).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, err := httpx.ParseForm(w, r, s.cfg.MaxBody)
	if err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	switch gt := form.Get("grant_type"); {
	case gt == "":
		httpx.Fail(w, s.log, httpx.BadRequest("grant_type is required"))
		return
	case gt != "refresh_token":
		httpx.WriteError(w, http.StatusBadRequest, "unsupported_grant_type", "only grant_type=refresh_token is supported")
		return
	}
	presented := form.Get("refresh_token")
	if presented == "" {
		httpx.Fail(w, s.log, httpx.BadRequest("refresh_token is required"))
		return
	}
	resp, err := s.refresh(r.Context(), presented)
	if err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	s.setCookie(w, resp.AccessToken)
	writeToken(w, http.StatusOK, resp)
}

// refresh rotates presented and mints a new pair.
func (s *Server) refresh(ctx context.Context, presented string) (TokenResponse, error) {
	outcome := func(o string) { s.refreshes.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", o))) }
	sid, err := parseRefreshToken(presented)
	if err != nil {
		outcome("malformed")
		return TokenResponse{}, errInvalidGrant
	}
	// Checked before the rotation, so a refresh token is not spent on a
	// pair that cannot be minted.
	if s.keys.active() == nil {
		outcome("error")
		return TokenResponse{}, keysRevoked
	}
	// The new access token's iat is taken BEFORE the session and the
	// subject are checked: a logout-all recorded after the checks has an
	// epoch at or after this instant, so it covers the token minted here.
	iat := microseconds(s.cfg.Now())
	next := s.successor(sid, presented)
	rot, err := s.cfg.Store.Rotate(ctx, sid, hashToken(presented), hashToken(next), iat, s.cfg.RefreshGrace, s.cfg.RefreshTTL)
	switch {
	case errors.Is(err, store.ErrReuse):
		outcome("reuse")
		s.onReuse(ctx, sid)
		return TokenResponse{}, errInvalidGrant
	case errors.Is(err, store.ErrSessionRevoked):
		outcome("revoked")
		return TokenResponse{}, errInvalidGrant
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalidToken):
		outcome("unknown")
		return TokenResponse{}, errInvalidGrant
	case err != nil:
		outcome("error")
		return TokenResponse{}, s.storeDown(err)
	}
	sess := rot.Session
	if sess.Revoked {
		outcome("revoked")
		return TokenResponse{}, errInvalidGrant
	}
	epoch, err := s.logoutEpoch(ctx, sess.Subject, sess.Claims)
	if err != nil {
		outcome("error")
		return TokenResponse{}, s.storeDown(err)
	}
	if !epoch.IsZero() && !epoch.Before(sess.CreatedAt) {
		// The subject (or a scope of the session, or the issuer) logged
		// out after this session began.
		outcome("subject_revoked")
		return TokenResponse{}, errInvalidGrant
	}
	// The session began after the epoch, so its tokens must too, even if
	// this replica's clock lags the revoker's.
	iat = after(iat, epoch)
	at, _, err := s.mint(accessToken{sub: sess.Subject, sid: sid, extra: sess.Claims, iat: iat, expiry: iat.Add(s.cfg.AccessTTL)})
	if errors.Is(err, errKeysRevoked) {
		outcome("error")
		return TokenResponse{}, keysRevoked
	}
	if err != nil {
		outcome("error")
		return TokenResponse{}, err
	}
	if rot.Retry {
		outcome("retry")
	} else {
		outcome("rotated")
	}
	s.minted.Add(ctx, 1, metric.WithAttributes(attribute.String("grant", "refresh")))
	return s.response(at, next, sid), nil
}

// onReuse revokes the session whose retired refresh token was presented
// (the store has flagged it already) like a logout, so its access tokens die
// on every verifier too. The client's answer does not depend on it: a
// failure is logged and counted.
func (s *Server) onReuse(ctx context.Context, sid string) {
	s.reuse.Add(ctx, 1)
	s.log.Warn("refresh token reuse: session revoked", "sid", sid)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokerTimeout)
	defer cancel()
	var rec *revoker.RecordedError
	switch _, err := s.revokeSession(ctx, sid, "refresh_reuse", revoker.Wait{}); {
	case err == nil, errors.As(err, &rec):
	default:
		s.log.Error("refresh token reuse: the session's revocation was not recorded; its access tokens stay valid until they expire",
			"sid", sid, "err", err)
	}
}
