// Package issuer is jwtrevoke's token service: it mints short-lived access
// JWTs signed with asymmetric keys and opaque refresh tokens rotated on every
// use, serves its JWKS, and turns logouts into revocations by asking the
// revoker.
//
// # Clocks (promise 7)
//
// Access tokens carry iat and exp with microsecond precision. A subject's
// logout epoch is set by the revoker's clock (store.RaiseEpoch); verifiers
// reject a token whose iat is not after it.
//
//   - Refresh takes the new token's iat before it checks the session and the
//     subject's epoch. A logout-all that becomes visible in Redis after that
//     check carries an epoch taken after the revoker received the request, so
//     (clocks agreeing) it is at or after that iat and covers the new token.
//   - Login and session creation read the subject's epoch and, if the
//     issuer's clock is not past it (the revoker's clock runs ahead), move iat
//     to the epoch plus one microsecond: a user who logs in after a
//     logout-all gets a token that verifies, even within the same second.
//   - Skew caveat: if the revoker's clock is behind the issuer's by d, a
//     logout-all racing a refresh can miss a token minted up to d before it
//     was recorded; that token lives at most AccessTTL. Keep the hosts on NTP
//     (d in milliseconds) or the verifier leeway small.
package issuer

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"golang.org/x/crypto/bcrypt"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/keyset"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// revokerTimeout bounds a call to the revoker made on a client's behalf
// after the client may have gone (reuse detection).
const revokerTimeout = 5 * time.Second

// TokenResponse is the body of a successful login, session creation or
// refresh (RFC 6749 §5.1 plus session_id).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
}

// Server is the issuer. Build it with [New], serve [Server.Handler], run
// [Server.Run] beside it, and [Server.Close] it after Run returned. A Server
// is safe for concurrent use.
type Server struct {
	cfg      Config
	keys     *signingKeys
	maxFrame int // the largest frameLen of the configured keys
	jwks     []byte
	verifier *verifier.Verifier
	creds    *httpx.Credentials // nil: /v1/sessions disabled
	dummy    []byte             // bcrypt hash for unknown users
	log      *slog.Logger

	ownMeter       *sdkmetric.MeterProvider // non-nil when New made it
	metricsHandler http.Handler
	minted         metric.Int64Counter
	refreshes      metric.Int64Counter
	reuse          metric.Int64Counter
	revokerErrors  metric.Int64Counter
}

// New validates cfg and builds a Server. It contacts neither Redis nor NATS.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}

	var publics []keyset.Key
	var algs []string
	var order []signer // the signing key first, then the others
	seen := map[string]bool{}
	for i, k := range cfg.Keys {
		sg, err := newSigner(k)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %w", ErrInvalidConfig, i, err)
		}
		if seen[sg.kid] {
			return nil, fmt.Errorf("%w: duplicate kid %q", ErrInvalidConfig, sg.kid)
		}
		seen[sg.kid] = true
		s.maxFrame = max(s.maxFrame, frameLen(sg))
		publics = append(publics, sg.public)
		if !slices.Contains(algs, sg.alg) {
			algs = append(algs, sg.alg)
		}
		if (cfg.SigningKeyID == "" && i == 0) || sg.kid == cfg.SigningKeyID {
			order = append([]signer{sg}, order...)
		} else {
			order = append(order, sg)
		}
	}
	if cfg.SigningKeyID != "" && !seen[cfg.SigningKeyID] {
		return nil, fmt.Errorf("%w: SigningKeyID %q names no key", ErrInvalidConfig, cfg.SigningKeyID)
	}
	s.keys = newSigningKeys(order)
	if s.jwks, err = keyset.MarshalJWKS(publics...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if len(cfg.ServiceCredentials) > 0 {
		if s.creds, err = httpx.NewCredentials(cfg.ServiceCredentials...); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	if cfg.Users != nil {
		if s.dummy, err = dummyHash(cfg.Users); err != nil {
			return nil, err
		}
	}

	mp := cfg.MeterProvider
	s.metricsHandler = cfg.MetricsHandler
	if mp == nil {
		var h http.Handler
		s.ownMeter, h, err = httpx.NewMetrics()
		if err != nil {
			return nil, err
		}
		mp, s.metricsHandler = s.ownMeter, h
	}
	if err := s.newMetrics(mp); err != nil {
		s.Close()
		return nil, err
	}

	s.verifier, err = verifier.New(verifier.Config{
		Issuer:           cfg.Issuer,
		Audiences:        cfg.Audiences,
		Algorithms:       algs,
		Keys:             publics,
		JetStream:        cfg.JetStream,
		Stream:           cfg.Stream,
		Leeway:           cfg.Leeway,
		MaxTokenLifetime: cfg.AccessTTL,
		// The issuer follows key revocations from the stream: it stops
		// signing with a revoked key.
		OnApplied: func(e events.Event, _ time.Time) {
			if e.Kind == events.KindKey {
				s.keyRevoked(e.KID)
			}
		},
		Now:           cfg.Now,
		Logger:        cfg.Logger,
		MeterProvider: mp,
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("issuer: embedded verifier: %w", err)
	}
	return s, nil
}

func (s *Server) newMetrics(mp metric.MeterProvider) error {
	m := mp.Meter("github.com/jwtrevoke/jwtrevoke/internal/issuer")
	var errs [4]error
	s.minted, errs[0] = m.Int64Counter("jwtrevoke.issuer.tokens.minted",
		metric.WithDescription("Access tokens minted, by grant (login, session, refresh)."))
	s.refreshes, errs[1] = m.Int64Counter("jwtrevoke.issuer.refresh",
		metric.WithDescription("Refresh attempts, by outcome."))
	s.reuse, errs[2] = m.Int64Counter("jwtrevoke.issuer.refresh.reuse",
		metric.WithDescription("Retired refresh tokens presented: the session was revoked."))
	s.revokerErrors, errs[3] = m.Int64Counter("jwtrevoke.issuer.revoker.errors",
		metric.WithDescription("Calls to the revoker that failed."))
	if err := errors.Join(errs[:]...); err != nil {
		return fmt.Errorf("issuer: metrics: %w", err)
	}
	return nil
}

// Run runs the embedded verifier until ctx ends, then returns nil; it
// returns early only with an error a restart cannot fix.
func (s *Server) Run(ctx context.Context) error { return s.verifier.Run(ctx) }

// Ready reports whether the issuer can serve: its embedded verifier has
// replayed the revocation stream (logout-all checks tokens against it),
// Redis answers, and a signing key is not revoked. It also asks Redis
// whether the signing key is recorded revoked (one GET), so a key
// revocation recorded but not yet published moves the issuer to its next
// key too.
func (s *Server) Ready(ctx context.Context) error {
	if !s.verifier.Ready() {
		return fmt.Errorf("issuer: %w", httpx.NotReadyBecause("stream not replayed", nil))
	}
	if err := s.cfg.Store.Ping(ctx); err != nil {
		return fmt.Errorf("issuer: %w", httpx.NotReadyBecause("redis unreachable", err))
	}
	for sg := s.keys.active(); sg != nil; sg = s.keys.active() {
		err := s.cfg.Store.Check(ctx, store.Query{KID: sg.kid})
		if errors.Is(err, verifier.ErrKeyRevoked) {
			s.keyRevoked(sg.kid)
			continue
		}
		if err != nil {
			return fmt.Errorf("issuer: %w", httpx.NotReadyBecause("redis unreachable", err))
		}
		return nil
	}
	return httpx.NotReadyBecause(keysRevokedReason, errKeysRevoked)
}

// keyRevoked stops signing with kid if it is one of the issuer's keys.
func (s *Server) keyRevoked(kid string) {
	if !s.keys.revoke(kid) {
		return
	}
	if next := s.keys.active(); next != nil {
		s.log.Warn("signing key revoked: signing with the next configured key", "kid", kid, "next", next.kid)
	} else {
		s.log.Error("signing key revoked: every signing key is revoked, minting stopped", "kid", kid)
	}
}

// keysRevoked is the answer while every signing key is revoked.
var keysRevoked = httpx.Errorf(http.StatusServiceUnavailable, "temporarily_unavailable", keysRevokedReason)

// Close releases the verifier and the metrics. Call it after Run returned.
func (s *Server) Close() {
	if s.verifier != nil {
		s.verifier.Close()
	}
	if s.ownMeter != nil {
		_ = s.ownMeter.Shutdown(context.Background())
	}
}

// JWKS returns the published key set document.
func (s *Server) JWKS() []byte { return slices.Clone(s.jwks) }

// Handler returns the issuer's HTTP API (see the package's DESIGN contract).
func (s *Server) Handler() http.Handler {
	mux := httpx.NewMux()
	if s.cfg.Users != nil {
		mux.Handle("POST", "/v1/login", http.HandlerFunc(s.handleLogin))
	}
	if s.creds != nil {
		mux.Handle("POST", "/v1/sessions", s.creds.Require(http.HandlerFunc(s.handleSessions)))
	}
	mux.Handle("POST", "/oauth2/token", http.HandlerFunc(s.handleToken))
	mux.Handle("POST", "/oauth2/revoke", http.HandlerFunc(s.handleRevoke))
	mux.Handle("POST", "/v1/logout", http.HandlerFunc(s.handleLogout))
	mux.Handle("POST", "/v1/logout/all", http.HandlerFunc(s.handleLogoutAll))
	mux.Handle("GET", "/.well-known/jwks.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(s.jwks)
	}))
	httpx.Health(mux, s.Ready, s.log)
	if s.metricsHandler != nil {
		mux.Handle("GET", "/metrics", s.metricsHandler)
	}
	return mux
}

// --- login and sessions ---

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

// startSession creates a session for sub and mints its first token pair.
func (s *Server) startSession(ctx context.Context, sub string, claims map[string]any, grant string) (TokenResponse, error) {
	iat := microseconds(s.cfg.Now())
	epoch, err := s.cfg.Store.SubjectEpoch(ctx, sub)
	if err != nil {
		return TokenResponse{}, s.storeDown(err)
	}
	// The user authenticated after the last logout-all was recorded: the
	// session must come after it even if the revoker's clock runs ahead.
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

// --- refresh (RFC 6749 §6) ---

var errInvalidGrant = &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_grant",
	Description: "refresh token is invalid, expired or revoked"}

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
	epoch, err := s.cfg.Store.SubjectEpoch(ctx, sess.Subject)
	if err != nil {
		outcome("error")
		return TokenResponse{}, s.storeDown(err)
	}
	if !epoch.IsZero() && !epoch.Before(sess.CreatedAt) {
		// The subject logged out everywhere after this session began.
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
	switch err := s.revokeSession(ctx, sid, "refresh_reuse"); {
	case err == nil, errors.As(err, &rec):
	default:
		s.log.Error("refresh token reuse: the session's revocation was not recorded; its access tokens stay valid until they expire",
			"sid", sid, "err", err)
	}
}

// --- RFC 7009 revocation ---

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
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
	if looksLikeJWS(tok) {
		err = s.revokeAccess(r.Context(), tok)
	} else if sid, perr := parseRefreshToken(tok); perr == nil {
		err = s.revokeRefresh(r.Context(), sid, tok)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// revokeAccess revokes the jti of an access token this issuer signed; any
// other token is "unknown" and needs nothing (RFC 7009: still 200).
func (s *Server) revokeAccess(ctx context.Context, tok string) error {
	c, err := s.verifier.Inspect(ctx, tok)
	if errors.Is(err, verifier.ErrUnavailable) {
		return httpx.Errorf(http.StatusServiceUnavailable, "temporarily_unavailable", "cannot check the token now")
	}
	if err != nil {
		return nil
	}
	// Verifiers accept the token until exp plus their leeway, so it is
	// revoked until then (the revoker accepts an exp up to now - leeway).
	if !s.cfg.Now().Before(c.ExpiresAt.Add(s.cfg.Leeway)) {
		return nil // refused everywhere already: nothing left to revoke
	}
	req := revoker.Request{Type: "token", JTI: c.ID, Exp: expSeconds(c.ExpiresAt), Reason: "rfc7009"}
	if _, err := s.cfg.Revoker.Revoke(ctx, req, "rfc7009.jti."+idemPart(c.ID)); err != nil {
		return s.revokerFailed(ctx, err)
	}
	return nil
}

// revokeRefresh revokes the session of a refresh token, provided the token
// belongs to it: the store's atomic rotation is the proof of possession
// (current, just-rotated or retired generation); a token matching nothing
// changes nothing.
func (s *Server) revokeRefresh(ctx context.Context, sid, tok string) error {
	now := s.cfg.Now()
	_, err := s.cfg.Store.Rotate(ctx, sid, hashToken(tok), hashToken(s.successor(sid, tok)), now, s.cfg.RefreshGrace, s.cfg.RefreshTTL)
	switch {
	case err == nil, errors.Is(err, store.ErrReuse):
	case errors.Is(err, store.ErrSessionRevoked):
		// Already revoked here; asking the revoker again is harmless and
		// publishes the event if an earlier logout's call failed.
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalidToken):
		return nil
	default:
		return s.storeDown(err)
	}
	return s.revokeSession(ctx, sid, "rfc7009")
}

// --- logout ---

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	c, err := s.presented(r)
	if err != nil {
		httpx.Fail(w, s.log, err)
		return
	}
	if c.SessionID == "" {
		httpx.Fail(w, s.log, httpx.BadRequest("the token names no session"))
		return
	}
	if err := s.revokeSession(r.Context(), c.SessionID, "logout"); err != nil {
		s.fail(w, err)
		return
	}
	s.clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

// handleLogoutAll needs a token that is not revoked (see live): logging a
// subject out everywhere restricts sessions it did not start, so a stolen
// token already revoked must not keep doing it.
func (s *Server) handleLogoutAll(w http.ResponseWriter, r *http.Request) {
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
	if _, err := s.cfg.Revoker.Revoke(r.Context(), req, key); err != nil {
		httpx.Fail(w, s.log, s.revokerFailed(r.Context(), err))
		return
	}
	s.clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
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
	c, err := s.verifier.Inspect(r.Context(), raw)
	if errors.Is(err, verifier.ErrUnavailable) {
		return nil, httpx.Errorf(http.StatusServiceUnavailable, "temporarily_unavailable", "cannot check the token now")
	}
	if err != nil {
		return nil, &httpx.Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: verifier.Reason(err)}
	}
	return c, nil
}

// live returns the claims of the request's access token if it verifies
// and is not revoked: by the stream (the embedded verifier's full check)
// nor by what Redis has recorded, so that a revocation recorded but not
// yet published counts too. A revoked token gets 401 with the reason; when
// either cannot decide (verifier not ready or stale, Redis down), 503.
func (s *Server) live(r *http.Request) (*verifier.Claims, error) {
	raw, err := s.bearer(r)
	if err != nil {
		return nil, err
	}
	c, err := s.verifier.Verify(r.Context(), raw)
	if errors.Is(err, verifier.ErrUnavailable) {
		return nil, httpx.Errorf(http.StatusServiceUnavailable, "temporarily_unavailable", "cannot check the token now (%s), retry", verifier.Reason(err))
	}
	if err != nil {
		return nil, &httpx.Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: verifier.Reason(err)}
	}
	err = s.cfg.Store.Check(r.Context(), store.Query{JTI: c.ID, SID: c.SessionID, Sub: c.Subject, KID: c.KeyID, IssuedAt: c.IssuedAt})
	for _, revoked := range []error{verifier.ErrKeyRevoked, verifier.ErrTokenRevoked, verifier.ErrSessionRevoked, verifier.ErrSubjectRevoked} {
		if errors.Is(err, revoked) {
			return nil, &httpx.Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: verifier.Reason(revoked)}
		}
	}
	if err != nil {
		return nil, s.storeDown(err)
	}
	return c, nil
}

// bearer reads the access token from the Authorization header or, when
// the issuer sets cookies and there is no header, from its cookie.
func (s *Server) bearer(r *http.Request) (string, error) {
	h := r.Header.Values("Authorization")
	switch {
	case len(h) == 1:
		scheme, tok, ok := strings.Cut(h[0], " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t") {
			return "", httpx.BadRequest("malformed Authorization header")
		}
		return tok, nil
	case len(h) > 1:
		return "", httpx.BadRequest("more than one Authorization header")
	case s.cfg.SetCookie:
		if c, err := r.Cookie(s.cfg.CookieName); err == nil && c.Value != "" {
			return c.Value, nil
		}
	}
	return "", &httpx.Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "no bearer token"}
}

// revokeSession records the session's revocation in Redis first — the
// record, its idempotency record and its outbox entry in one step, then the
// session's own flag, so its refresh tokens stop at once — and then asks the
// revoker, under the same idempotency key, to publish that very event. If
// the revoker cannot be reached the revocation is still delivered (by any
// revoker's outbox drainer) and the answer says so. Revoking a session is one
// fact, so the idempotency key is the session's (with the reason, which the
// revoker compares): retries and repeated logouts publish one event.
func (s *Server) revokeSession(ctx context.Context, sid, reason string) error {
	key := reason + "." + sid
	ev := events.NewSession(revoker.NewEventID(), sid, s.cfg.Now())
	ev.Reason = reason
	rec, err := s.cfg.Store.Record(ctx, ev, s.cfg.Leeway, &store.Idempotency{Caller: s.cfg.Revoker.CallerID(), Key: key})
	if err != nil {
		return s.storeDown(err)
	}
	if err := s.cfg.Store.FinishRecord(ctx, rec.Event); err != nil {
		return s.storeDown(err)
	}
	req := revoker.Request{Type: "session", SID: sid, Reason: reason}
	if _, err := s.cfg.Revoker.Revoke(ctx, req, key); err != nil {
		if errors.Is(err, revoker.ErrUnavailable) {
			s.revokerErrors.Add(ctx, 1)
			s.log.Warn("revoker unavailable; the session's revocation is recorded and the outbox delivers it",
				"sid", sid, "id", rec.Event.ID, "err", err)
			return &revoker.RecordedError{ID: rec.Event.ID, Description: recordedLogout}
		}
		return s.revokerFailed(ctx, err)
	}
	return nil
}

// recordedLogout is the error_description of a logout recorded but not yet
// confirmed by the revoker.
const recordedLogout = "the revocation service has not confirmed the logout yet; it is recorded, " +
	"the session's refresh tokens are already refused and its access tokens will be refused everywhere " +
	"without a retry; retrying is safe"

// fail answers err: a recorded-but-unconfirmed revocation with its own body,
// anything else through httpx.Fail.
func (s *Server) fail(w http.ResponseWriter, err error) {
	var rec *revoker.RecordedError
	if errors.As(err, &rec) {
		rec.Write(w)
		return
	}
	httpx.Fail(w, s.log, err)
}

// idemPart turns arbitrary text into a short key component.
func idemPart(s string) string {
	h := sha256.Sum256([]byte(s))
	return b64.EncodeToString(h[:18])
}

// --- error mapping ---

func (s *Server) storeDown(err error) error {
	s.log.Error("redis", "err", err)
	return httpx.Errorf(http.StatusServiceUnavailable, "temporarily_unavailable", "session store unavailable, retry")
}

func (s *Server) revokerFailed(ctx context.Context, err error) error {
	s.revokerErrors.Add(ctx, 1)
	var api *revoker.APIError
	if errors.As(err, &api) {
		s.log.Error("revoker refused a request", "err", err)
		return httpx.Errorf(http.StatusBadGateway, "server_error", "revocation service refused the request")
	}
	s.log.Warn("revoker unavailable", "err", err)
	return httpx.Errorf(http.StatusServiceUnavailable, "temporarily_unavailable", "revocation service unavailable, retry")
}
