package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/crypto/bcrypt"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// TokenResponse is the body of a successful login, session creation or
// refresh (RFC 6749 §5.1 plus session_id).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := httpx.DecodeJSON(w, r, s.cfg.MaxBody, &req); err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	if req.Username == "" || req.Password == "" {
		httpx.Fail(w, s.log, httpx.BadRequest("username and password are required"))
		return
	}
	// No configured user has such a name (New refuses it), so saying so
	// reveals nothing.
	if err := validSubject(req.Username); err != nil {
		httpx.Fail(w, s.log, httpx.BadRequest("username must be 1 to %d bytes of printable UTF-8", events.MaxValueLen))
		return
	}
	// An unknown user costs one bcrypt comparison too, against a hash of
	// the same cost, so response times do not tell which names exist.
	hash, known := s.cfg.Users[req.Username]
	if !known {
		hash = s.dummy
	}
	if err := bcrypt.CompareHashAndPassword(hash, []byte(req.Password)); err != nil || !known {
		httpx.WriteError(w, http.StatusUnauthorized, "invalid_grant", "wrong username or password")
		return
	}
	resp, err := s.startSession(r.Context(), req.Username, nil, "login")
	if err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	s.setCookie(w, resp.AccessToken)
	writeToken(w, http.StatusOK, resp)
}

func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Sub    string                     `json:"sub"`
		Claims map[string]json.RawMessage `json:"claims"`
	}
	if err := httpx.DecodeJSON(w, r, s.cfg.MaxBody, &req); err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	if err := validSubject(req.Sub); err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	claims, err := extraClaims(req.Claims)
	if err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	resp, err := s.startSession(r.Context(), req.Sub, claims, "session")
	if err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	writeToken(w, http.StatusCreated, resp)
}

// validSubject accepts a sub that a revocation can name: pkg/events owns
// that rule, so that every token the issuer mints can be logged out.
func validSubject(sub string) error {
	switch err := events.ValidValue(events.KindSubject, sub); {
	case errors.Is(err, events.ErrMissingField):
		return httpx.BadRequest("sub is required")
	case err != nil:
		return httpx.BadRequest("sub must be 1 to %d bytes of printable UTF-8", events.MaxValueLen)
	}
	return nil
}

// extraClaims checks the session's private claims: no registered or
// issuer-set claim in any case spelling (reservedClaim), names of 1..256
// bytes, and at most MaxExtraClaimBytes as encoded in the token (the JSON
// object json.Marshal writes, where "<" takes six bytes).
func extraClaims(in map[string]json.RawMessage) (map[string]any, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(in))
	for k, v := range in {
		if k == "" || len(k) > 256 || !utf8.ValidString(k) {
			return nil, httpx.BadRequest("claim names must be 1 to 256 bytes of UTF-8")
		}
		if reservedClaim(k) {
			return nil, httpx.BadRequest("claim %q is set by the issuer and cannot be given (names are compared ignoring case)", k)
		}
		out[k] = v
	}
	enc, err := json.Marshal(out)
	if err != nil {
		return nil, httpx.BadRequest("claims are not valid JSON")
	}
	if len(enc) > MaxExtraClaimBytes {
		return nil, httpx.BadRequest("claims take more than %d bytes once encoded in the token", MaxExtraClaimBytes)
	}
	return out, nil
}

// logoutEpoch is the largest logout epoch recorded for the tokens of a
// session of sub with the extra claims: its subject's, its issuer's and
// those of its claims that are epoch scopes (string values, as the
// verifiers read them).
func (s *Server) logoutEpoch(ctx context.Context, sub string, claims map[string]any) (time.Time, error) {
	q := store.Query{Sub: sub, Iss: s.cfg.Issuer}
	for _, name := range s.cfg.EpochScopes {
		if v, ok := claims[name].(string); ok && v != "" {
			q.Scopes = append(q.Scopes, events.ScopeClaim{Claim: name, Value: v})
		}
	}
	return s.cfg.Store.LogoutEpoch(ctx, q)
}

// startSession creates a session for sub and mints its first token pair.
func (s *Server) startSession(ctx context.Context, sub string, claims map[string]any, grant string) (TokenResponse, error) {
	iat := microseconds(s.cfg.Now())
	epoch, err := s.logoutEpoch(ctx, sub, claims)
	if err != nil {
		return TokenResponse{}, s.storeDown(err)
	}
	// The user authenticated after the last logout (of the subject, a
	// scope of its claims, the issuer) was recorded: the session must come
	// after it even if the revoker's clock runs ahead.
	iat = after(iat, epoch)
	sid := randomID()
	refresh := newRefreshToken(sid)
	// Minted before the session is stored: a token too large to verify
	// creates nothing, and every stored session can refresh (mint bounds
	// the size for every configured key).
	at, _, err := s.mint(accessToken{sub: sub, sid: sid, extra: claims, iat: iat, expiry: iat.Add(s.cfg.AccessTTL)})
	if errors.Is(err, errKeysRevoked) {
		return TokenResponse{}, keysRevoked
	}
	if errors.Is(err, errTokenTooLarge) {
		return TokenResponse{}, httpx.BadRequest("the access token would be larger than verifiers accept (%d bytes): use a shorter sub or fewer claims", verifier.DefaultMaxTokenSize)
	}
	if err != nil {
		return TokenResponse{}, err
	}
	sess := store.Session{
		ID:         sid,
		Subject:    sub,
		Claims:     claims,
		Generation: 1,
		CreatedAt:  iat,
		ExpiresAt:  iat.Add(s.cfg.RefreshTTL),
	}
	if err := s.cfg.Store.CreateSession(ctx, sess, hashToken(refresh)); err != nil {
		return TokenResponse{}, s.storeDown(err)
	}
	s.minted.Add(ctx, 1, metric.WithAttributes(attribute.String("grant", grant)))
	return s.response(at, refresh, sid), nil
}

// after returns t, or the first microsecond after epoch if t is not after it.
func after(t, epoch time.Time) time.Time {
	if epoch.IsZero() || t.After(epoch) {
		return t
	}
	return microseconds(epoch).Add(time.Microsecond)
}

func (s *Server) response(access, refresh, sid string) TokenResponse {
	return TokenResponse{
		AccessToken:  access,
		TokenType:    "Bearer",
		ExpiresIn:    int64(s.cfg.AccessTTL / time.Second),
		RefreshToken: refresh,
		SessionID:    sid,
	}
}

func writeToken(w http.ResponseWriter, status int, resp TokenResponse) {
	w.Header().Set("Pragma", "no-cache")
	httpx.WriteJSON(w, status, resp)
}

func (s *Server) setCookie(w http.ResponseWriter, access string) {
	if !s.cfg.SetCookie {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     s.cfg.CookieName,
		Value:    access,
		Path:     "/",
		MaxAge:   int(s.cfg.AccessTTL / time.Second),
		HttpOnly: true,
		Secure:   !s.cfg.InsecureCookie,
		SameSite: s.cfg.CookieSameSite,
	})
}

func (s *Server) clearCookie(w http.ResponseWriter) {
	if !s.cfg.SetCookie {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     s.cfg.CookieName,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   !s.cfg.InsecureCookie,
		SameSite: s.cfg.CookieSameSite,
	})
}
