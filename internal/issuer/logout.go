package issuer

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	wait, err := revoker.WaitOption(r)
	if err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	c, err := s.presented(r)
	if err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	if c.SessionID == "" {
		httpx.Fail(w, s.log, httpx.BadRequest("the token names no session"))
		return
	}
	waitDeadline(w, wait)
	en, err := s.revokeSession(r.Context(), c.SessionID, "logout", wait)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.clearCookie(w)
	s.loggedOut(w, en)
}

// loggedOut answers a logout that succeeded: 204, or with ?wait=enforced
// 200 {"enforcement":{...}} (the revoker's view of the replicas).
func (s *Server) loggedOut(w http.ResponseWriter, en *revoker.Enforcement) {
	if en == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		Enforcement *revoker.Enforcement `json:"enforcement"`
	}{en})
}

// waitDeadline lets a request that waits for enforcement answer after the
// server's write timeout would have cut it.
func waitDeadline(w http.ResponseWriter, wait revoker.Wait) {
	if wait.Enforced {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait.Timeout + 10*time.Second))
	}
}

// handleLogoutAll needs a token that is not revoked (see live): logging a
// subject out everywhere restricts sessions it did not start, so a stolen
// token already revoked must not keep doing it.
func (s *Server) handleLogoutAll(w http.ResponseWriter, r *http.Request) {
	wait, err := revoker.WaitOption(r)
	if err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	c, err := s.live(r)
	if err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	// Every logout-all is a new restriction (sessions created since an
	// earlier one must die too), so the idempotency key is per request: the
	// client's Idempotency-Key, so that its retries publish once, or a
	// fresh nonce.
	nonce := r.Header.Get("Idempotency-Key")
	if nonce == "" {
		nonce = randomID()
	} else if len(nonce) > 256 {
		httpx.Fail(w, s.log, httpx.BadRequest("Idempotency-Key longer than 256 bytes"))
		return
	}
	key := "logout-all." + idemPart(c.Subject+"\x00"+nonce)
	req := revoker.Request{Type: "subject", Sub: c.Subject, Reason: "logout_all"}
	waitDeadline(w, wait)
	res, err := s.cfg.Revoker.Revoke(r.Context(), req, key, wait)
	if err != nil {
		httpx.Fail(w, s.log, s.revokerFailed(r.Context(), err))
		return
	}
	s.clearCookie(w)
	s.loggedOut(w, res.Enforcement)
}

// presented returns the claims of the request's access token, checked by
// signature and expiry but not revocation, so logging out twice works: a
// revoked token may still log its own session out (/v1/logout), which only
// restricts what it already names, never anything else.
func (s *Server) presented(r *http.Request) (*verifier.Claims, error) {
	raw, err := s.bearer(r)
	if err != nil {
		return nil, err
	}
	c, err := s.checker.Check(r.Context(), raw)
	if err != nil {
		return nil, tokenError(err)
	}
	return c, nil
}

// tokenError is the answer to a token the verifier refused: 503 when it
// could not decide, else 401 invalid_token, both with the reason.
func tokenError(err error) error {
	if errors.Is(err, verifier.ErrUnavailable) {
		return httpx.Errorf(http.StatusServiceUnavailable, "temporarily_unavailable", "cannot check the token now (%s), retry", verifier.Reason(err))
	}
	return &httpx.Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: verifier.Reason(err)}
}

// live returns the claims of the request's access token if it verifies
// and is not revoked by what Redis has recorded (every revocation is
// recorded before it is published, so this includes the stream and what
// the outbox has yet to deliver). A revoked token gets 401 with the
// reason; when Redis cannot answer, 503.
func (s *Server) live(r *http.Request) (*verifier.Claims, error) {
	c, err := s.presented(r)
	if err != nil {
		return nil, err
	}
	err = revoker.NewRedisFallback(s.cfg.Store).Check(r.Context(), c)
	if revoked := events.RevokedBy(err); revoked != nil {
		return nil, tokenError(revoked)
	}
	if err != nil {
		return nil, s.storeDown(err)
	}
	return c, nil
}

// bearer reads the access token from the Authorization header or, when
// the issuer sets cookies and there is no header, from its cookie.
func (s *Server) bearer(r *http.Request) (string, error) {
	cookie := ""
	if s.cfg.SetCookie {
		cookie = s.cfg.CookieName
	}
	tok, err := httpx.BearerToken(r, cookie)
	switch {
	case errors.Is(err, httpx.ErrRepeatedAuthorization):
		return "", httpx.BadRequest("more than one Authorization header")
	case errors.Is(err, httpx.ErrMalformedAuthorization):
		return "", httpx.BadRequest("malformed Authorization header")
	case errors.Is(err, httpx.ErrNoBearer):
		return "", &httpx.Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "no bearer token"}
	}
	return tok, err
}

// revokeSession records the session's revocation in Redis first — the
// record, its idempotency record and its outbox entry in one step, then the
// session's own flag, so its refresh tokens stop at once — and then asks the
// revoker, under the same idempotency key, to publish that very event. If
// the revoker cannot be reached the revocation is still delivered (by any
// revoker's outbox drainer) and the answer says so. Revoking a session is one
// fact, so the idempotency key is the session's (with the reason, which the
// revoker compares): retries and repeated logouts publish one event.
// With wait, it returns the revoker's enforcement view.
func (s *Server) revokeSession(ctx context.Context, sid, reason string, wait revoker.Wait) (*revoker.Enforcement, error) {
	key := reason + "." + sid
	ev := events.NewSession(revoker.NewEventID(), sid, s.cfg.Now())
	ev.Reason = reason
	x, err := events.NewEncoded(ev)
	if err != nil {
		return nil, s.storeDown(err) // the sid is a verified token's: never invalid
	}
	rec, err := s.cfg.Store.Record(ctx, x, s.cfg.Leeway, &store.Idempotency{Caller: s.cfg.Revoker.CallerID(), Key: key})
	if err != nil {
		return nil, s.storeDown(err)
	}
	recorded := rec.Event.Event()
	if err := s.cfg.Store.FinishRecord(ctx, recorded); err != nil {
		return nil, s.storeDown(err)
	}
	req := revoker.Request{Type: "session", SID: sid, Reason: reason}
	res, err := s.cfg.Revoker.Revoke(ctx, req, key, wait)
	if err != nil {
		if errors.Is(err, revoker.ErrUnavailable) {
			s.revokerErrors.Add(ctx, 1)
			s.log.Warn("revoker unavailable; the session's revocation is recorded and the outbox delivers it",
				"sid", sid, "id", recorded.ID, "err", err)
			return nil, &revoker.RecordedError{ID: recorded.ID, Description: recordedLogout}
		}
		return nil, s.revokerFailed(ctx, err)
	}
	return res.Enforcement, nil
}

// recordedLogout is the error_description of a logout recorded but not yet
// confirmed by the revoker.
const recordedLogout = "the revocation service has not confirmed the logout yet; it is recorded, " +
	"the session's refresh tokens are already refused and its access tokens will be refused everywhere " +
	"without a retry; retrying is safe"

// idemPart turns arbitrary text into a short key component.
func idemPart(s string) string {
	h := sha256.Sum256([]byte(s))
	return b64.EncodeToString(h[:18])
}
