package revoker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// wireRequest is the body of POST /v1/revocations as decoded: pointers, so a
// field that is present (even empty) is told apart from one that is absent.
// The documented shape is [Request].
type wireRequest struct {
	Type      *string  `json:"type"`
	JTI       *string  `json:"jti"`
	Exp       *float64 `json:"exp"`
	Token     *string  `json:"token"`
	SID       *string  `json:"sid"`
	Sub       *string  `json:"sub"`
	KID       *string  `json:"kid"`
	Reason    *string  `json:"reason"`
	Initiator *string  `json:"initiator"`
}

// maxNumericDate bounds exp before it is turned into a time (year 5138).
const maxNumericDate = 1e11

// Error codes of the revocation endpoint besides httpx's invalid_request.
const (
	codeUnavailable = "temporarily_unavailable"
	codeConflict    = "idempotency_key_reused"
)

// unavailable is the 503 answer: nothing was acknowledged; retry with the
// same Idempotency-Key.
func unavailable(what string) *httpx.Error {
	return httpx.Errorf(http.StatusServiceUnavailable, codeUnavailable,
		"%s is unavailable; the revocation is not acknowledged: retry with the same Idempotency-Key", what)
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// The span's context travels in the NATS message headers (events.NewMsg),
	// so one trace shows the request and every verifier applying it.
	ctx, span := s.tracer.Start(r.Context(), "revoker.revoke", trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	res, typ, err := s.revoke(w, r.WithContext(ctx))
	span.SetAttributes(attribute.String("revocation.type", typ))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		var he *httpx.Error
		switch {
		case !errors.As(err, &he):
			s.metrics.revocation(ctx, typ, outcomeError)
		case he.Status == http.StatusServiceUnavailable:
			s.metrics.revocation(ctx, typ, outcomeUnavailable)
			s.cfg.Logger.Warn("revoker: revocation not acknowledged", "type", typ, "reason", he.Description)
		default:
			s.metrics.revocation(ctx, typ, outcomeInvalid)
		}
		httpx.Fail(w, s.cfg.Logger, err)
		return
	}
	span.SetAttributes(attribute.String("revocation.id", res.ID), attribute.Int64("revocation.seq", int64(res.Seq)))
	s.metrics.revocation(ctx, typ, outcomeCreated)
	httpx.WriteJSON(w, http.StatusCreated, res)
	s.cfg.Logger.Debug("revoker: revocation acknowledged", "type", typ, "id", res.ID, "seq", res.Seq,
		"took", time.Since(start))
}

// revoke does the work of POST /v1/revocations. typ is the validated type
// ("" while unknown), for metrics. Errors are *httpx.Error, except bugs.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) (_ Result, typ string, _ error) {
	key, err := idempotencyKey(r)
	if err != nil {
		return Result{}, "", err
	}
	req, err := decodeRequest(w, r, s.cfg.MaxBody)
	if err != nil {
		return Result{}, "", err
	}
	now := s.cfg.Now()
	sp, err := s.parseRequest(req, now)
	if err != nil {
		return Result{}, "", err
	}
	typ = string(sp.kind)

	// The work below is bounded by Timeout but not cut short by a client
	// that goes away: once Redis is written, the event should reach the
	// stream too.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.Timeout)
	defer cancel()

	if sp.token != "" {
		if err := s.fromToken(ctx, &sp, now); err != nil {
			return Result{}, typ, err
		}
	}
	ev, err := sp.event(newEventID(), now)
	if err != nil {
		return Result{}, typ, err
	}
	// Fail fast, before anything is written, while NATS is known to be
	// unreachable: the publish could not be acknowledged anyway.
	if st := s.cfg.JetStream.Conn().Status(); st != nats.CONNECTED {
		return Result{}, typ, unavailable("the event stream (NATS)")
	}
	st := s.cfg.Store
	if ev.Kind == events.KindSubject {
		// The epoch the event carries. Without an idempotency key,
		// RaiseEpoch makes it strictly greater than any recorded one. With
		// one, the recorded epoch is only read here and raised by Record
		// below once the event is remembered: a retry must not raise the
		// recorded epoch past the event it republishes, or a token minted
		// between the two (the user logged in again) would be refused by
		// Redis look-ups yet accepted by verifiers.
		var epoch time.Time
		if key == "" {
			epoch, err = st.RaiseEpoch(ctx, sp.value, now)
		} else {
			epoch, err = st.SubjectEpoch(ctx, sp.value)
			if err == nil {
				epoch = nextEpoch(epoch, now)
			}
		}
		if err != nil {
			s.cfg.Logger.Warn("revoker: redis", "op", "epoch", "err", err)
			return Result{}, typ, unavailable("the revocation store (Redis)")
		}
		ev.Epoch = epoch.UTC()
		// An epoch from a revoker whose clock ran ahead may lie past now;
		// the event cannot be issued before its epoch (events.MaxFutureSkew).
		if ev.Epoch.After(ev.IssuedAt) {
			ev.IssuedAt = ev.Epoch
		}
	}
	if key != "" {
		stored, _, err := st.Remember(ctx, key, ev, s.cfg.IdempotencyTTL)
		if err != nil {
			s.cfg.Logger.Warn("revoker: redis", "op", "remember", "err", err)
			return Result{}, typ, unavailable("the revocation store (Redis)")
		}
		if !sameRequest(stored, ev) {
			return Result{}, typ, httpx.Errorf(http.StatusConflict, codeConflict,
				"this Idempotency-Key was used for a different revocation")
		}
		ev = stored
	}
	if err := st.Record(ctx, ev, s.cfg.Leeway); err != nil {
		s.cfg.Logger.Warn("revoker: redis", "op", "record", "id", ev.ID, "err", err)
		return Result{}, typ, unavailable("the revocation store (Redis)")
	}
	pubStart := time.Now()
	ack, err := s.publisher.Publish(ctx, ev)
	s.metrics.published(ctx, time.Since(pubStart), err == nil)
	if err != nil {
		if errors.Is(err, events.ErrInvalid) {
			return Result{}, typ, err // validated above: a bug, answered 500
		}
		s.cfg.Logger.Warn("revoker: publish", "id", ev.ID, "err", err)
		return Result{}, typ, unavailable("the event stream (NATS)")
	}
	s.cfg.Logger.Info("revoker: revoked", "type", typ, "value", ev.Value(), "id", ev.ID, "seq", ack.Sequence,
		"duplicate", ack.Duplicate, "initiator", ev.Initiator, "reason", ev.Reason)
	return Result{ID: ev.ID, Seq: ack.Sequence}, typ, nil
}

// decodeRequest reads the body strictly: httpx.DecodeJSON checks the
// content type, size and trailing data, into a json.RawMessage so that the
// bytes can be checked to be UTF-8 (encoding/json would silently turn
// invalid bytes into U+FFFD, making a value nobody sent) before the
// decoding into wireRequest refuses unknown fields.
func decodeRequest(w http.ResponseWriter, r *http.Request, max int64) (wireRequest, error) {
	var raw json.RawMessage
	if err := httpx.DecodeJSON(w, r, max, &raw); err != nil {
		return wireRequest{}, err
	}
	if !utf8.Valid(raw) {
		return wireRequest{}, httpx.BadRequest("body is not valid UTF-8")
	}
	var req wireRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return wireRequest{}, httpx.JSONError(err)
	}
	return req, nil
}

// nextEpoch is what store.RaiseEpoch computes: now, or just after the
// recorded epoch if that is not before now.
func nextEpoch(recorded, now time.Time) time.Time {
	if !recorded.IsZero() && !recorded.Before(now) {
		return recorded.Add(time.Nanosecond)
	}
	return now
}

// sameRequest reports whether a remembered event answers the same
// revocation as the candidate built from a retried request.
func sameRequest(stored, cand events.Event) bool {
	return stored.Kind == cand.Kind && stored.Value() == cand.Value() &&
		stored.Expiry.Equal(cand.Expiry) && stored.Reason == cand.Reason && stored.Initiator == cand.Initiator
}

// idempotencyKey returns the Idempotency-Key header: absent is "", present
// must be 1..MaxIdempotencyKeyLen printable ASCII characters, given once.
func idempotencyKey(r *http.Request) (string, error) {
	vals := r.Header.Values("Idempotency-Key")
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", httpx.BadRequest("Idempotency-Key given more than once")
	}
	k := vals[0]
	if k == "" || len(k) > MaxIdempotencyKeyLen {
		return "", httpx.BadRequest("Idempotency-Key must be 1 to %d characters", MaxIdempotencyKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "", httpx.BadRequest("Idempotency-Key must be printable ASCII")
		}
	}
	return k, nil
}

// spec is a validated request: what to revoke.
type spec struct {
	kind              events.Kind
	value             string    // jti, sid, sub or kid; set from the token by fromToken
	exp               time.Time // token revocations
	token             string    // revocation by the token itself, until fromToken
	reason, initiator string
}

// parseRequest checks the request's shape: a known type, exactly its fields,
// and (for a token by jti) an exp that can matter. Value limits are checked
// by spec.event.
func (s *Server) parseRequest(req wireRequest, now time.Time) (spec, error) {
	if req.Type == nil || *req.Type == "" {
		return spec{}, httpx.BadRequest(`"type" is required: one of token, session, subject, key`)
	}
	present := map[string]bool{
		"jti": req.JTI != nil, "exp": req.Exp != nil, "token": req.Token != nil,
		"sid": req.SID != nil, "sub": req.Sub != nil, "kid": req.KID != nil,
	}
	var allowed []string
	sp := spec{kind: events.Kind(*req.Type), reason: deref(req.Reason), initiator: deref(req.Initiator)}
	switch sp.kind {
	case events.KindToken:
		allowed = []string{"jti", "exp", "token"}
	case events.KindSession:
		allowed, sp.value = []string{"sid"}, deref(req.SID)
	case events.KindSubject:
		allowed, sp.value = []string{"sub"}, deref(req.Sub)
	case events.KindKey:
		allowed, sp.value = []string{"kid"}, deref(req.KID)
	default:
		return spec{}, httpx.BadRequest(`unknown "type": use token, session, subject or key`)
	}
	for _, f := range []string{"jti", "exp", "token", "sid", "sub", "kid"} {
		if present[f] && !contains(allowed, f) {
			return spec{}, httpx.BadRequest("%q is not a field of a %s revocation", f, sp.kind)
		}
	}
	if sp.kind != events.KindToken {
		if sp.value == "" {
			return spec{}, httpx.BadRequest("%q is required", allowed[0])
		}
		return sp, nil
	}
	// A token: either the token itself, or its jti and exp.
	if req.Token != nil {
		if req.JTI != nil || req.Exp != nil {
			return spec{}, httpx.BadRequest(`give either "token" or "jti" and "exp", not both`)
		}
		if *req.Token == "" {
			return spec{}, httpx.BadRequest(`"token" is empty`)
		}
		sp.token = *req.Token
		return sp, nil
	}
	if deref(req.JTI) == "" || req.Exp == nil {
		return spec{}, httpx.BadRequest(`a token revocation needs "jti" and "exp", or "token"`)
	}
	sp.value = *req.JTI
	f := *req.Exp
	if f <= 0 || f > maxNumericDate {
		return spec{}, httpx.BadRequest(`"exp" is not a plausible NumericDate (seconds since 1970)`)
	}
	sec := int64(f)
	// Round the fraction up: holding a revocation a little longer is safe.
	nsec := int64((f-float64(sec))*1e9 + 0.999999)
	sp.exp = time.Unix(sec, nsec).UTC()
	if err := s.checkExp(sp.exp, now); err != nil {
		return spec{}, err
	}
	return sp, nil
}

// checkExp refuses an exp for which a revocation is pointless (the token is
// already refused everywhere) or absurd (no token lives that long).
func (s *Server) checkExp(exp, now time.Time) error {
	if !now.Before(exp.Add(s.cfg.Leeway)) {
		return httpx.BadRequest("the token has already expired (exp plus leeway has passed): nothing to revoke")
	}
	if limit := now.Add(s.cfg.MaxTokenLifetime + s.cfg.Leeway); exp.After(limit) {
		return httpx.BadRequest(`"exp" lies further ahead than the longest token lifetime (%s)`, s.cfg.MaxTokenLifetime)
	}
	return nil
}

// fromToken checks sp.token with the embedded verifier (signature and
// claims, not revocation: a revoked token may be revoked again) and takes
// its jti and exp.
func (s *Server) fromToken(ctx context.Context, sp *spec, now time.Time) error {
	c, err := s.verifier.Inspect(ctx, sp.token)
	switch {
	case err == nil:
	case errors.Is(err, verifier.ErrExpired):
		return httpx.BadRequest("the token has already expired: nothing to revoke")
	case errors.Is(err, verifier.ErrUnavailable):
		return unavailable("the token issuer's keys (JWKS)")
	default:
		return httpx.BadRequest("not a valid access token of this issuer (%s)", verifier.Reason(err))
	}
	sp.value, sp.exp, sp.token = c.ID, c.ExpiresAt, ""
	return s.checkExp(sp.exp, now)
}

// event builds the event of sp and checks it against the wire contract's
// limits. A subject event gets epoch now; the caller sets the real one.
func (sp spec) event(id string, now time.Time) (events.Event, error) {
	var ev events.Event
	switch sp.kind {
	case events.KindToken:
		ev = events.NewToken(id, sp.value, sp.exp, now)
	case events.KindSession:
		ev = events.NewSession(id, sp.value, now)
	case events.KindSubject:
		ev = events.NewSubject(id, sp.value, now, now)
	case events.KindKey:
		ev = events.NewKey(id, sp.value, now)
	}
	ev.Reason, ev.Initiator = sp.reason, sp.initiator
	if err := ev.Validate(); err != nil {
		return events.Event{}, httpx.BadRequest("%s", strings.TrimPrefix(err.Error(), "events: invalid event: "))
	}
	return ev, nil
}

// newEventID returns "rev." and 128 random bits in hex: unique, so the
// stream's duplicate window only ever drops a true retry.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "rev." + hex.EncodeToString(b[:])
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
