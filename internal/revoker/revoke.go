package revoker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
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
	Claim     *string  `json:"claim"`
	Value     *string  `json:"value"`
	Iss       *string  `json:"iss"`
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

// notRecorded is the 503 answer when nothing was recorded: retry with the
// same Idempotency-Key.
func notRecorded(what string) *httpx.Error {
	return httpx.Errorf(http.StatusServiceUnavailable, codeUnavailable,
		"%s is unavailable; nothing was recorded: retry (with the same Idempotency-Key, if the request had one)", what)
}

// RecordedError is the 503 answer given once a revocation is recorded but
// the stream has not acknowledged it: the outbox delivers it, so a retry is
// safe but not required. [RecordedError.Write] answers it.
type RecordedError struct {
	// ID is the recorded event's id.
	ID string
	// Description is the error_description; empty means the revoker's.
	Description string
}

func (e *RecordedError) Error() string { return "revoker: recorded, not acknowledged yet: " + e.ID }

// Is makes a RecordedError match [ErrRecorded].
func (e *RecordedError) Is(target error) bool { return target == ErrRecorded }

// recordedDescription is the revoker's error_description of a RecordedError.
const recordedDescription = "the event stream (NATS) has not acknowledged the revocation yet; " +
	"it is recorded and will be delivered without a retry; a retry with the same Idempotency-Key is safe"

// Write answers 503 with Retry-After and a [RecordedAnswer] body.
func (e *RecordedError) Write(w http.ResponseWriter) {
	d := e.Description
	if d == "" {
		d = recordedDescription
	}
	w.Header().Set("Retry-After", "1")
	httpx.WriteJSON(w, http.StatusServiceUnavailable, RecordedAnswer{Error: codeUnavailable, Description: d, Recorded: true, ID: e.ID})
}

// RecordedAnswer is the body of a 503 answer given once the revocation is
// recorded: {"error","error_description","recorded":true,"id"}.
type RecordedAnswer struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Recorded    bool   `json:"recorded"`
	ID          string `json:"id"`
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// The span's context travels in the NATS message headers (events.NewMsg),
	// so one trace shows the request and every verifier applying it.
	ctx, span := s.tracer.Start(r.Context(), "revoker.revoke", trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	wait, err := WaitOption(r)
	if err != nil {
		s.metrics.revocation(ctx, "", outcomeInvalid)
		httpx.Fail(w, s.cfg.Logger, err)
		return
	}
	res, typ, err := s.revoke(w, r.WithContext(ctx))
	span.SetAttributes(attribute.String("revocation.type", typ))
	s.metrics.revocation(ctx, typ, outcomeOf(err))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		var he *httpx.Error
		var rec *RecordedError
		switch {
		case errors.As(err, &rec):
			rec.Write(w)
			return
		case errors.As(err, &he) && he.Status == http.StatusServiceUnavailable:
			s.cfg.Logger.Warn("revoker: revocation not acknowledged", "type", typ, "reason", he.Description)
		}
		httpx.Fail(w, s.cfg.Logger, err)
		return
	}
	span.SetAttributes(attribute.String("revocation.id", res.ID), attribute.Int64("revocation.seq", int64(res.Seq)))
	if wait.Enforced {
		// The revocation is durable either way: the answer stays 201
		// and says how far enforcement got within the timeout.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait.Timeout + 10*time.Second))
		e := s.fleet.waitEnforced(ctx, res.Seq, wait.Timeout)
		res.Enforcement = &e
		span.SetAttributes(attribute.Bool("revocation.enforced", e.Complete), attribute.Int("revocation.replicas", e.Replicas))
	}
	httpx.WriteJSON(w, http.StatusCreated, res)
	s.cfg.Logger.Debug("revoker: revocation acknowledged", "type", typ, "id", res.ID, "seq", res.Seq,
		"took", time.Since(start))
}

// outcomeOf is the metrics outcome of a revocation's error (nil: created).
func outcomeOf(err error) string {
	var he *httpx.Error
	switch {
	case err == nil:
		return outcomeCreated
	case errors.Is(err, ErrRecorded):
		return outcomeRecorded
	case !errors.As(err, &he):
		return outcomeError
	case he.Status == http.StatusServiceUnavailable:
		return outcomeUnavailable
	}
	return outcomeInvalid
}

// Bounds of ?wait=enforced's timeout.
const (
	DefaultWaitTimeout = 2 * time.Second
	MaxWaitTimeout     = 30 * time.Second
)

// Wait is the ?wait=enforced[&timeout=2s] option of a revocation: wait
// until every live replica enforces it, for Timeout at most. The zero
// value waits for nothing.
type Wait struct {
	Enforced bool
	Timeout  time.Duration
}

// Query is the option as a query string ("" for the zero Wait).
func (w Wait) Query() string {
	if !w.Enforced {
		return ""
	}
	q := "?wait=enforced"
	if w.Timeout > 0 {
		q += "&timeout=" + w.Timeout.String()
	}
	return q
}

// WaitOption reads a request's ?wait=enforced[&timeout=2s] (the revoker's
// and the issuer's logout endpoints take it): any other query parameter,
// a wait other than "enforced", a timeout without wait or outside (0,
// MaxWaitTimeout] is a 400. Timeout defaults to DefaultWaitTimeout.
func WaitOption(r *http.Request) (Wait, error) {
	q := r.URL.Query()
	for k := range q {
		if k != "wait" && k != "timeout" {
			return Wait{}, httpx.BadRequest("unknown query parameter %q: only wait and timeout", k)
		}
	}
	if len(q["wait"]) > 1 || len(q["timeout"]) > 1 {
		return Wait{}, httpx.BadRequest("wait and timeout may be given once each")
	}
	switch w := q.Get("wait"); {
	case w == "" && q.Has("timeout"):
		return Wait{}, httpx.BadRequest("timeout needs wait=enforced")
	case w == "" && !q.Has("wait"):
		return Wait{}, nil
	case w != "enforced":
		return Wait{}, httpx.BadRequest(`wait must be "enforced"`)
	}
	w := Wait{Enforced: true, Timeout: DefaultWaitTimeout}
	if t := q.Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 || d > MaxWaitTimeout {
			return Wait{}, httpx.BadRequest("timeout must be a duration such as 2s or 500ms, above 0 and at most %s", MaxWaitTimeout)
		}
		w.Timeout = d
	}
	return w, nil
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
	// The work below is bounded by Timeout but not cut short by a client
	// that goes away: once Redis is written, the event should reach the
	// stream too.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.Timeout)
	defer cancel()
	var idem *store.Idempotency
	if key != "" {
		idem = &store.Idempotency{Caller: httpx.Caller(r), Key: key, TTL: s.cfg.IdempotencyTTL}
	}
	return s.revokeRequest(ctx, req, idem)
}

// revokeRequest validates req, takes a token's jti and exp from the token
// itself when it was given, and records and publishes the revocation (with
// idem, if not nil). Every way in to a revocation request (the API, the
// console) goes through it. typ is the validated type ("" while unknown).
func (s *Server) revokeRequest(ctx context.Context, req wireRequest, idem *store.Idempotency) (_ Result, typ string, _ error) {
	sp, now, err := s.checkRequest(ctx, req)
	if err != nil {
		return Result{}, sp.typ(), err
	}
	typ = sp.typ()
	res, err := s.record(ctx, sp, idem, now)
	if errors.Is(err, errHeldOther) {
		return Result{}, typ, httpx.Errorf(http.StatusConflict, codeConflict,
			"this Idempotency-Key was used for a different revocation")
	}
	return res, typ, err
}

// checkRequest validates req as of now (which it returns) and, for a
// revocation by the token itself, takes the token's jti and exp. sp's kind
// is set once the type is known, also on error.
func (s *Server) checkRequest(ctx context.Context, req wireRequest) (sp spec, now time.Time, _ error) {
	now = s.cfg.Now()
	sp, err := s.parseRequest(req, now)
	if err != nil {
		return spec{}, now, err
	}
	if sp.token != "" {
		if err := s.fromToken(ctx, &sp, now); err != nil {
			return sp, now, err
		}
	}
	return sp, now, nil
}

// errHeldOther is record's error when the idempotency record holds a
// different revocation; each endpoint says so in its own words.
var errHeldOther = errors.New("revoker: the idempotency record holds another revocation")

// record validates and encodes the event of sp once, records it (with idem,
// under its idempotency record, in the same step) and publishes it. A retry
// the idempotency record already holds publishes the held event again; one
// that holds a different revocation returns errHeldOther. Other errors are
// *httpx.Error (400, 503) or a *RecordedError, except bugs.
func (s *Server) record(ctx context.Context, sp spec, idem *store.Idempotency, now time.Time) (Result, error) {
	ev := sp.event(NewEventID(), now)
	st := s.cfg.Store
	// A subject's or scope's epoch is the next one after the recorded
	// epoch; Record raises the recorded one to it in the same step as it
	// enqueues the event. A retry with an idempotency key gets the first
	// attempt's event back from Record instead, so the recorded epoch never
	// runs past the event it republishes (a token minted in between would
	// be refused by Redis look-ups yet accepted by verifiers).
	//
	// It is read before the event is validated, so that the event is
	// validated and encoded once, with its real epoch; a failure is
	// answered after validation, so bad input still gets its 400.
	var recorded time.Time
	var epochErr error
	if sp.hasEpoch() {
		recorded, epochErr = st.Epoch(ctx, ev)
	}
	x, err := s.encode(sp, ev, recorded, now)
	if err != nil {
		return Result{}, err
	}
	if epochErr != nil {
		return Result{}, s.unrecorded("epoch", ev.ID, epochErr)
	}
	// Record first, always: the record and its outbox entry are written in
	// one step, so once anything is recorded the event reaches the stream
	// even if the publish below fails and the client never retries.
	rec, err := st.Record(ctx, x, s.cfg.Leeway, idem)
	if err != nil {
		return Result{}, s.unrecorded("record", ev.ID, err)
	}
	if rec.Held {
		held := rec.Event.Event()
		if !sameRequest(held, ev) {
			return Result{}, errHeldOther
		}
		// The held event as stored, or its reissue: a new event, so
		// validated and encoded (once) and recorded again.
		x = rec.Event
		if again := retried(held, ev, now); !again.Equal(held) {
			if x, err = events.NewEncoded(again); err != nil {
				return Result{}, err // made of two valid events: a bug, answered 500
			}
			if _, err := st.Record(ctx, x, s.cfg.Leeway, nil); err != nil {
				return Result{}, s.unrecorded("record", again.ID, err)
			}
		}
	}
	var opts []events.PublishOpt
	if rec.First { // never set for an event the idempotency key held
		// Nothing was recorded of it before, so the stream most likely
		// holds nothing for it either: publish without reading first.
		opts = append(opts, events.ExpectFirst())
	}
	ack, err := s.deliver(ctx, x, x, opts...)
	if err != nil {
		return Result{}, s.unacknowledged(x.Event().ID, err)
	}
	return s.acknowledged(x.Event(), ack), nil
}

// encode sets the epoch of ev, the event of sp, if it has one (the next
// after recorded, the epoch recorded for what it logs out, so that its
// epochs strictly grow), then validates and encodes it: the one validation
// and the one encoding of a request's event, whose bytes are what is
// recorded, published and removed from the outbox. Bad input is a 400.
func (s *Server) encode(sp spec, ev events.Event, recorded, now time.Time) (events.Encoded, error) {
	if sp.hasEpoch() {
		at := now
		if e := sp.epoch; !e.IsZero() {
			// A provider's instant in whole seconds (a NumericDate
			// without a fraction) lies somewhere in that second: take
			// its end, so that no token of that second escapes. Never
			// later than now.
			if e.Nanosecond() == 0 {
				e = e.Add(time.Second - time.Nanosecond)
			}
			if e.Before(now) {
				at = e
			}
		}
		ev.Epoch = store.NextEpoch(recorded, at).UTC()
		// An epoch from a revoker whose clock ran ahead may lie past now;
		// the event cannot be issued before its epoch
		// (events.MaxFutureSkew).
		if ev.Epoch.After(ev.IssuedAt) {
			ev.IssuedAt = ev.Epoch
		}
	}
	x, err := events.NewEncoded(ev)
	if err != nil {
		return events.Encoded{}, httpx.BadRequest("%s", strings.TrimPrefix(err.Error(), "events: invalid event: "))
	}
	return x, nil
}

// unrecorded logs why Redis did not record the event id (at step op) and
// returns the answer: 503, nothing was recorded.
func (s *Server) unrecorded(op, id string, err error) error {
	s.cfg.Logger.Warn("revoker: redis", "op", op, "id", id, "err", err)
	return notRecorded("the revocation store (Redis)")
}

// unacknowledged is the answer for the recorded event id that the stream
// has not acknowledged: a *RecordedError (the outbox delivers it), or, for
// an event refused as invalid, which was validated before, the error (a
// bug, answered 500).
func (s *Server) unacknowledged(id string, err error) error {
	if errors.Is(err, events.ErrInvalid) {
		return err
	}
	s.cfg.Logger.Warn("revoker: recorded, not acknowledged yet", "id", id, "err", err)
	return &RecordedError{ID: id}
}

// acknowledged logs the revocation ev the stream acknowledged and returns
// its result.
func (s *Server) acknowledged(ev events.Event, ack *jetstream.PubAck) Result {
	s.cfg.Logger.Info("revoker: revoked", "type", ev.Kind, "value", ev.Value(), "id", ev.ID, "seq", ack.Sequence,
		"duplicate", ack.Duplicate, "initiator", ev.Initiator, "reason", ev.Reason)
	return Result{ID: ev.ID, Seq: ack.Sequence}
}

// deliver publishes pub, a recorded event or its reissue: it finishes the
// record (a session's own flag), publishes pub's bytes, and once the stream
// acknowledged removes the outbox entry if it still holds recorded's bytes
// (the event as recorded). A failure after the record leaves the entry to
// the outbox drainers. opts go to the publish.
func (s *Server) deliver(ctx context.Context, pub, recorded events.Encoded, opts ...events.PublishOpt) (*jetstream.PubAck, error) {
	ev := pub.Event()
	if err := s.cfg.Store.FinishRecord(ctx, ev); err != nil {
		return nil, err
	}
	pubStart := time.Now()
	ack, err := s.publisher.PublishEncoded(ctx, pub, opts...)
	s.metrics.published(ctx, time.Since(pubStart), err == nil)
	if err != nil {
		return nil, err
	}
	if _, err := s.cfg.Store.Delivered(ctx, recorded); err != nil {
		// Harmless: a drainer publishes it again, which the stream
		// stores once.
		s.cfg.Logger.Warn("revoker: redis", "op", "delivered", "id", ev.ID, "err", err)
	}
	return ack, nil
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

// sameRequest reports whether a remembered event answers the same
// revocation as the candidate built from a retried request: the same thing
// revoked, for the same reason, by the same initiator. A token's exp may
// differ (a jti revocation is held from the time of the request).
func sameRequest(stored, cand events.Event) bool {
	return stored.Kind == cand.Kind && stored.Claim == cand.Claim && stored.Value() == cand.Value() && stored.Issuer == cand.Issuer &&
		stored.Reason == cand.Reason && stored.Initiator == cand.Initiator
}

// retried is the event a retry publishes: the remembered one, reissued now,
// and for a token held at least as long as the retry's own event would be,
// so a retry never holds less than a fresh request.
func retried(stored, cand events.Event, now time.Time) events.Event {
	ev := stored.Reissued(now)
	if ev.Kind == events.KindToken && cand.Expiry.After(ev.Expiry) {
		ev.Expiry = cand.Expiry
	}
	return ev
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
	claim             string    // an epoch scope's claim (events.ScopeIssuer for a whole issuer)
	value             string    // jti, sid, sub, kid or the scope's value; set from the token by fromToken
	exp               time.Time // token revocations
	token             string    // revocation by the token itself, until fromToken
	iss               string    // the issuer the revocation is scoped to; "" for every issuer
	epoch             time.Time // a subject's logout instant; zero (or later than now) means now
	reason, initiator string
}

// hasEpoch reports whether sp's event carries an epoch: a subject's or a
// scope's.
func (sp spec) hasEpoch() bool { return sp.kind == events.KindSubject || sp.kind == events.KindScope }

// typeIssuer is the request type of a whole issuer's epoch scope: a scope
// event of the claim events.ScopeIssuer.
const typeIssuer = "issuer"

// typ is the request type of sp, as the client named it.
func (sp spec) typ() string {
	if sp.kind == events.KindScope && sp.claim == events.ScopeIssuer {
		return typeIssuer
	}
	return string(sp.kind)
}

// parseRequest checks the request's shape: a known type, exactly its fields,
// and (for a token by jti) an exp that can matter; a scope of a claim the
// revoker allows, an issuer it knows. Value limits are checked by
// events.NewEncoded, once the event is built.
func (s *Server) parseRequest(req wireRequest, now time.Time) (spec, error) {
	const types = "token, session, subject, key, scope or issuer"
	if req.Type == nil || *req.Type == "" {
		return spec{}, httpx.BadRequest(`"type" is required: one of %s`, types)
	}
	present := map[string]bool{
		"jti": req.JTI != nil, "exp": req.Exp != nil, "token": req.Token != nil,
		"sid": req.SID != nil, "sub": req.Sub != nil, "kid": req.KID != nil,
		"claim": req.Claim != nil, "value": req.Value != nil,
	}
	var allowed []string
	sp := spec{kind: events.Kind(*req.Type), iss: deref(req.Iss), reason: deref(req.Reason), initiator: deref(req.Initiator)}
	if req.Iss != nil && sp.iss == "" {
		return spec{}, httpx.BadRequest(`"iss" is empty: leave it out to revoke for every issuer`)
	}
	switch sp.kind {
	case events.KindToken:
		allowed = []string{"jti", "exp", "token"}
	case events.KindSession:
		allowed, sp.value = []string{"sid"}, deref(req.SID)
	case events.KindSubject:
		allowed, sp.value = []string{"sub"}, deref(req.Sub)
	case events.KindKey:
		allowed, sp.value = []string{"kid"}, deref(req.KID)
	case events.KindScope:
		allowed, sp.claim, sp.value = []string{"value", "claim"}, deref(req.Claim), deref(req.Value)
		if sp.claim == events.ScopeIssuer {
			return spec{}, httpx.BadRequest(`every token of an issuer: use {"type":"issuer","iss":…}`)
		}
	case typeIssuer:
		// Every token of the issuer: the scope of the claim "iss", which
		// is not itself scoped to an issuer.
		if sp.iss == "" {
			return spec{}, httpx.BadRequest(`"iss" is required: the issuer whose every token is revoked`)
		}
		sp.kind, sp.claim, sp.value, sp.iss = events.KindScope, events.ScopeIssuer, sp.iss, ""
	default:
		return spec{}, httpx.BadRequest(`unknown "type": use %s`, types)
	}
	for _, f := range []string{"jti", "exp", "token", "sid", "sub", "kid", "claim", "value"} {
		if present[f] && !contains(allowed, f) {
			return spec{}, httpx.BadRequest("%q is not a field of a%s %s revocation", f, article(sp.typ()), sp.typ())
		}
	}
	if sp.kind == events.KindScope {
		return sp, s.allowScope(sp)
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
	// A caller's exp is a claim, not proof. (Revoking by the token itself
	// uses the token's own exp.)
	if latest := s.latestExp(now); sp.exp.Before(latest) {
		sp.exp = latest
	}
	return sp, nil
}

// latestExp is the latest moment a token with a jti revoked now could still
// be valid: the hold of a jti revocation whose token's exp is not known.
func (s *Server) latestExp(now time.Time) time.Time { return now.Add(s.cfg.MaxTokenLifetime).UTC() }

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

// fromToken checks sp.token with the token checker (signature and
// claims, not revocation: a revoked token may be revoked again) and takes
// its jti and exp.
func (s *Server) fromToken(ctx context.Context, sp *spec, now time.Time) error {
	c, err := s.checker.Check(ctx, sp.token)
	switch {
	case err == nil:
	case errors.Is(err, verifier.ErrExpired):
		return httpx.BadRequest("the token has already expired: nothing to revoke")
	case errors.Is(err, verifier.ErrUnavailable):
		return notRecorded("the token issuer's keys (JWKS)")
	default:
		return httpx.BadRequest("not a valid access token of this issuer (%s)", verifier.Reason(err))
	}
	sp.value, sp.exp, sp.token = c.ID, c.ExpiresAt, ""
	return s.checkExp(sp.exp, now)
}

// event builds the event of sp, not yet validated (events.NewEncoded does
// that, once). A subject or scope event gets epoch now; the caller sets the
// real one.
func (sp spec) event(id string, now time.Time) events.Event {
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
	case events.KindScope:
		ev = events.NewScope(id, sp.claim, sp.value, now, now)
	}
	ev.Issuer, ev.Reason, ev.Initiator = sp.iss, sp.reason, sp.initiator
	return ev
}

// NewEventID returns "rev." and 128 random bits in hex: unique, so the
// stream's duplicate window only ever drops a true retry.
func NewEventID() string { return "rev." + randomHex(16) }

// randomHex is n random bytes in hex: event ids, console session ids and
// nonces.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
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

// isEpochScope reports whether the revoker takes scope revocations of
// claim (one of its EpochScopes); the issuer's own scope needs none.
func (s *Server) isEpochScope(claim string) bool { return slices.Contains(s.cfg.EpochScopes, claim) }

// article is "n" before a type that starts with a vowel ("an issuer"), else "".
func article(typ string) string {
	if typ != "" && strings.ContainsRune("aeiou", rune(typ[0])) {
		return "n"
	}
	return ""
}

// allowScope refuses a scope revocation the revoker's configuration does not
// allow: a claim that is not one of its EpochScopes (the verifiers would not
// apply it), or, for a whole issuer, an issuer it does not know (a typo
// would revoke nothing).
func (s *Server) allowScope(sp spec) error {
	if sp.claim == "" || sp.value == "" {
		return httpx.BadRequest(`a scope revocation needs "claim" and "value"`)
	}
	if sp.claim == events.ScopeIssuer {
		if sp.value != s.cfg.Issuer && !slices.ContainsFunc(s.cfg.Providers, func(p Provider) bool { return p.Issuer == sp.value }) {
			return httpx.BadRequest("%q is neither this revoker's issuer nor a configured provider's: nothing would be revoked", sp.value)
		}
		return nil
	}
	if !s.isEpochScope(sp.claim) {
		if err := events.ValidClaim(sp.claim); err != nil {
			return httpx.BadRequest("%s", strings.TrimPrefix(err.Error(), "events: invalid event: "))
		}
		allowed := "none are configured"
		if len(s.cfg.EpochScopes) > 0 {
			allowed = "allowed: " + strings.Join(s.cfg.EpochScopes, ", ")
		}
		return httpx.BadRequest("claim %q is not an epoch scope of this revoker (-epoch-scopes; %s)", sp.claim, allowed)
	}
	return nil
}
