package issuer

import (
	"context"
	"errors"
	"net/http"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// handleRevoke serves /oauth2/revoke: token revocation (RFC 7009).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	wait, err := revoker.WaitOption(r)
	if err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	form, err := httpx.ParseForm(w, r, s.cfg.MaxBody)
	if err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	tok := form.Get("token")
	if tok == "" {
		httpx.Fail(w, s.log, httpx.BadRequest("token is required"))
		return
	}
	// token_type_hint is only a hint (RFC 7009 §2.1): the token's shape
	// says what it is, and an unknown hint is ignored.
	waitDeadline(w, wait)
	var en *revoker.Enforcement
	if looksLikeJWS(tok) {
		en, err = s.revokeAccess(r.Context(), tok, wait)
	} else if sid, perr := parseRefreshToken(tok); perr == nil {
		en, err = s.revokeRefresh(r.Context(), sid, tok, wait)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	if en != nil {
		// 200 as RFC 7009 says, with a body it allows clients to ignore.
		httpx.WriteJSON(w, http.StatusOK, struct {
			Enforcement *revoker.Enforcement `json:"enforcement"`
		}{en})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// revokeAccess revokes the jti of an access token this issuer signed; any
// other token is "unknown" and needs nothing (RFC 7009: still 200).
func (s *Server) revokeAccess(ctx context.Context, tok string, wait revoker.Wait) (*revoker.Enforcement, error) {
	c, err := s.checker.Check(ctx, tok)
	if errors.Is(err, verifier.ErrUnavailable) {
		return nil, tokenError(err)
	}
	if err != nil {
		return nil, nil
	}
	// Verifiers accept the token until exp plus their leeway, so it is
	// revoked until then (the revoker accepts an exp up to now - leeway).
	if !s.cfg.Now().Before(c.ExpiresAt.Add(s.cfg.Leeway)) {
		return nil, nil // refused everywhere already: nothing left to revoke
	}
	req := revoker.Request{Type: "token", JTI: c.ID, Exp: expSeconds(c.ExpiresAt), Reason: "rfc7009"}
	res, err := s.cfg.Revoker.Revoke(ctx, req, "rfc7009.jti."+idemPart(c.ID), wait)
	if err != nil {
		return nil, s.revokerFailed(ctx, err)
	}
	return res.Enforcement, nil
}

// revokeRefresh revokes the session of a refresh token, provided the token
// belongs to it: the store's atomic rotation is the proof of possession
// (current, just-rotated or retired generation); a token matching nothing
// changes nothing.
func (s *Server) revokeRefresh(ctx context.Context, sid, tok string, wait revoker.Wait) (*revoker.Enforcement, error) {
	now := s.cfg.Now()
	_, err := s.cfg.Store.Rotate(ctx, sid, hashToken(tok), hashToken(s.successor(sid, tok)), now, s.cfg.RefreshGrace, s.cfg.RefreshTTL)
	switch {
	case err == nil, errors.Is(err, store.ErrReuse):
	case errors.Is(err, store.ErrSessionRevoked):
		// Already revoked here; asking the revoker again is harmless and
		// publishes the event if an earlier logout's call failed.
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalidToken):
		return nil, nil
	default:
		return nil, s.storeDown(err)
	}
	return s.revokeSession(ctx, sid, "rfc7009", wait)
}
