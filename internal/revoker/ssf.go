package revoker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// Event types of OpenID Shared Signals the revoker turns into revocations
// (CAEP 1.0, RISC 1.0), and the stream verification event it acknowledges.
const (
	caepSessionRevoked       = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	caepCredentialChange     = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	riscAccountDisabled      = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	riscAccountPurged        = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
	riscCredentialCompromise = "https://schemas.openid.net/secevent/risc/event-type/credential-compromise"
	riscSessionsRevoked      = "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked"
	ssfVerification          = "https://schemas.openid.net/secevent/ssf/event-type/verification"
)

// logsOut lists the event types that log a subject out (or, for
// session-revoked, a session when the subject names one); the value is the
// revocation's reason.
var logsOut = map[string]string{
	caepSessionRevoked:       "session-revoked",
	caepCredentialChange:     "credential-change",
	riscAccountDisabled:      "account-disabled",
	riscAccountPurged:        "account-purged",
	riscCredentialCompromise: "credential-compromise",
	riscSessionsRevoked:      "sessions-revoked",
}

// Error codes of RFC 8935 §2.4.
const (
	setInvalidRequest  = "invalid_request"
	setInvalidKey      = "invalid_key"
	setInvalidIssuer   = "invalid_issuer"
	setInvalidAudience = "invalid_audience"
	setAuthFailed      = "authentication_failed"
)

// Outcomes of a SET besides the back-channel ones: accepted and counted,
// nothing revoked.
const signalIgnored = "ignored"

// setError is an answer of the SET endpoint: RFC 8935's
// {"err","description"} body.
type setError struct {
	status            int
	code, description string
	reason            string // the metrics reason
}

func (e *setError) Error() string { return e.code + ": " + e.description }

func setErr(status int, code, reason, format string, args ...any) *setError {
	return &setError{status: status, code: code, reason: reason, description: fmt.Sprintf(format, args...)}
}

// handleEvents takes a Security Event Token pushed by a provider's Shared
// Signals transmitter (RFC 8935): Content-Type application/secevent+jwt,
// the stream's bearer credential. 202 once the revocation it asks for is
// recorded, or once a SET that asks for none (an event type not mapped, a
// subject format not supported, a stream verification) is counted; 400
// with RFC 8935's error codes for an invalid SET, 401 for a missing or
// wrong credential; 503 when nothing could be recorded.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	p, ok := s.providers[r.PathValue("name")]
	if !ok || p.events == nil {
		httpx.Fail(w, s.cfg.Logger, httpx.Errorf(http.StatusNotFound, "not_found", "no provider of that name pushes security events here"))
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.Timeout)
	defer cancel()
	outcome, reason, err := s.takeSET(ctx, w, r, p)
	s.metrics.signal(ctx, p.Name, "ssf", outcome, reason)
	if err == nil {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var se *setError
	if errors.As(err, &se) {
		if se.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="jwtrevoke-ssf"`)
		}
		s.cfg.Logger.Info("revoker: security event refused", "provider", p.Name, "outcome", outcome, "err", err)
		httpx.WriteJSON(w, se.status, map[string]string{"err": se.code, "description": se.description})
		return
	}
	s.cfg.Logger.Warn("revoker: security event not taken", "provider", p.Name, "outcome", outcome, "err", err)
	httpx.Fail(w, s.cfg.Logger, err)
}

// takeSET checks and applies one pushed SET; the outcome and reason are
// for metrics.
func (s *Server) takeSET(ctx context.Context, w http.ResponseWriter, r *http.Request, p *Provider) (outcome, reason string, _ error) {
	if !p.events.Valid(r) {
		return signalRefused, "authentication", setErr(http.StatusUnauthorized, setAuthFailed, "authentication", "missing or wrong stream credential")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/secevent+jwt" {
		return signalRefused, "malformed", setErr(http.StatusBadRequest, setInvalidRequest, "malformed", "Content-Type must be application/secevent+jwt")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return signalRefused, "malformed", setErr(http.StatusRequestEntityTooLarge, setInvalidRequest, "malformed", "the SET is larger than %d bytes", s.cfg.MaxBody)
	}
	if err != nil {
		return signalRefused, "malformed", setErr(http.StatusBadRequest, setInvalidRequest, "malformed", "the body could not be read")
	}
	_, outcome, reason, err = s.applySET(ctx, p, strings.TrimSpace(string(body)))
	return outcome, reason, err
}

// applySET checks one SET, however it arrived (pushed or polled), and
// records the revocation it asks for. It returns nil once recorded or once
// a SET that asks for none is counted (both acknowledged), a *setError for
// a SET that cannot be taken as sent (never recorded, never retried by a
// well-behaved transmitter), and another error when nothing could be
// decided now (keys or Redis unavailable: to be delivered again). The
// outcome and reason are for metrics; jti is the SET's, once verified.
func (s *Server) applySET(ctx context.Context, p *Provider, raw string) (jti, outcome, reason string, _ error) {
	set, err := p.Events.Check(ctx, raw)
	if err != nil {
		code := verifier.Reason(err)
		switch {
		case errors.Is(err, verifier.ErrUnavailable):
			return "", signalUnavailable, code, notRecorded("the provider's keys (JWKS)")
		case errors.Is(err, verifier.ErrUnknownKey), errors.Is(err, verifier.ErrSignature), errors.Is(err, verifier.ErrAlgorithm):
			return "", signalRefused, code, setErr(http.StatusBadRequest, setInvalidKey, code, "the SET is refused: %s", err)
		case errors.Is(err, verifier.ErrWrongIssuer):
			return "", signalRefused, code, setErr(http.StatusBadRequest, setInvalidIssuer, code, "the SET is refused: %s", err)
		case errors.Is(err, verifier.ErrWrongAudience):
			return "", signalRefused, code, setErr(http.StatusBadRequest, setInvalidAudience, code, "the SET is refused: %s", err)
		}
		return "", signalRefused, code, setErr(http.StatusBadRequest, setInvalidRequest, code, "the SET is refused: %s", err)
	}
	now := s.cfg.Now()
	sp, ignored, err := s.setSpec(set, p, now)
	if err != nil {
		return set.ID, signalRefused, "claims", err
	}
	if ignored != "" {
		s.cfg.Logger.Info("revoker: security event accepted, nothing to revoke", "provider", p.Name, "event", set.EventType,
			"why", ignored, "jti", set.ID)
		return set.ID, signalIgnored, ignored, nil
	}
	// The jti is remembered in the same step as the record, as for a
	// logout token: a transmitter retries a failed push with the same SET.
	idem := &store.Idempotency{Caller: "provider:" + p.Name, Key: "set:" + set.ID, TTL: p.Events.ReplayWindow()}
	_, err = s.record(ctx, sp, idem, now)
	var rec *RecordedError
	switch {
	case errors.Is(err, errHeldOther):
		return set.ID, signalReplay, signalReplay, setErr(http.StatusBadRequest, setInvalidRequest, signalReplay, "the SET is refused: its jti was accepted before, for another event")
	case errors.As(err, &rec), err == nil:
		return set.ID, signalAccepted, "", nil
	}
	var he *httpx.Error
	if errors.As(err, &he) && he.Status == http.StatusBadRequest {
		return set.ID, signalRefused, "claims", setErr(http.StatusBadRequest, setInvalidRequest, "claims", "the SET is refused: %s", he.Description)
	}
	return set.ID, signalUnavailable, "", err
}

// setSpec maps a verified SET to the revocation it asks for. ignored, when
// not empty, says why it asks for none (accepted and counted); err is a
// *setError for a SET that cannot be taken as sent.
func (s *Server) setSpec(set *verifier.SET, p *Provider, now time.Time) (_ spec, ignored string, _ error) {
	if set.EventType == ssfVerification {
		return spec{}, "verification", nil
	}
	reason, known := logsOut[set.EventType]
	if !known {
		return spec{}, "unknown_event", nil
	}
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(set.Event, &ev); err != nil {
		return spec{}, "", setErr(http.StatusBadRequest, setInvalidRequest, "claims", "the event is not a JSON object")
	}
	subject := set.SubjectID
	if subject == nil {
		subject = ev["subject"] // CAEP drafts before SSF 1.0's sub_id
	}
	if subject == nil {
		return spec{}, "", setErr(http.StatusBadRequest, setInvalidRequest, "claims", "the SET names no subject (sub_id)")
	}
	t, err := subjectOf(subject, set.EventType == caepSessionRevoked)
	if err != nil {
		return spec{}, "", setErr(http.StatusBadRequest, setInvalidRequest, "claims", "%s", err)
	}
	if t.kind == events.KindScope && !s.isEpochScope(t.claim) {
		t.unsupported = t.claim + " is no epoch scope here"
	}
	if t.unsupported != "" {
		return spec{}, "unsupported_subject", nil
	}
	if t.iss != "" && t.iss != set.Issuer {
		return spec{}, "", setErr(http.StatusBadRequest, setInvalidRequest, "claims",
			"the subject is of another issuer than the transmitter's (%s)", set.Issuer)
	}
	sp := spec{kind: t.kind, claim: t.claim, value: t.value, iss: set.Issuer, reason: reason, initiator: "provider:" + p.Name}
	switch t.kind {
	case events.KindSubject, events.KindScope:
		// At the event's time, never later than now: tokens issued
		// after the event keep working.
		sp.epoch = set.IssuedAt
		if raw, ok := ev["event_timestamp"]; ok {
			var sec float64
			if err := json.Unmarshal(raw, &sec); err != nil || sec <= 0 || sec > maxNumericDate {
				return spec{}, "", setErr(http.StatusBadRequest, setInvalidRequest, "claims", "event_timestamp is not a NumericDate")
			}
			sp.epoch = time.Unix(0, int64(sec*1e9)).UTC()
		}
	case events.KindToken:
		// The SET names the token, not its exp.
		sp.exp = s.latestExp(now)
	}
	return sp, "", nil
}

// target is what a subject identifier names.
type target struct {
	kind        events.Kind
	claim       string // of a scope: the token claim that carries value
	value, iss  string
	unsupported string // a format this revoker does not map (yet)
}

// subjectOf reads a subject identifier (RFC 9493; SSF 1.0's jwt_id and
// complex subjects): iss_sub and opaque name a subject, jwt_id a token,
// email the epoch scope of the email claim (the caller checks that it is
// one); a
// complex subject names its session when wantSession and it has one, else
// its user. Members are read by their exact names.
func subjectOf(raw json.RawMessage, wantSession bool) (target, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return target{}, errors.New("the subject identifier is not a JSON object")
	}
	str := func(name string) (string, error) {
		var v string
		if err := json.Unmarshal(m[name], &v); err != nil || v == "" {
			return "", fmt.Errorf("the subject identifier has no string %q", name)
		}
		return v, nil
	}
	if _, simple := m["format"]; !simple {
		// A complex subject: user, session, tenant, ... each an
		// identifier of its own.
		if s, ok := m["session"]; ok && wantSession {
			t, err := subjectOf(s, false)
			if err != nil || t.unsupported != "" {
				return t, err
			}
			if t.kind != events.KindSubject || t.iss != "" {
				return target{unsupported: "session not opaque"}, nil
			}
			t.kind = events.KindSession // an opaque session id
			if err := events.ValidValue(t.kind, t.value); err != nil {
				return target{}, fmt.Errorf("the session identifier's value: %w", err)
			}
			return t, nil
		}
		if u, ok := m["user"]; ok {
			return subjectOf(u, false)
		}
		return target{unsupported: "complex subject without user"}, nil
	}
	format, err := str("format")
	if err != nil {
		return target{}, err
	}
	var t target
	switch format {
	case "opaque":
		t.kind = events.KindSubject
		t.value, err = str("id")
	case "iss_sub":
		t.kind = events.KindSubject
		if t.iss, err = str("iss"); err == nil {
			t.value, err = str("sub")
		}
	case "jwt_id":
		t.kind = events.KindToken
		if t.iss, err = str("iss"); err == nil {
			t.value, err = str("jti")
		}
	case "email":
		// Matched exactly against the tokens' email claim: a provider
		// sends the address as its tokens spell it.
		t.kind, t.claim = events.KindScope, "email"
		t.value, err = str("email")
	default:
		// phone_number, account, did, uri and aliases name nothing a
		// token carries.
		return target{unsupported: format}, nil
	}
	if err != nil {
		return target{}, err
	}
	if err := events.ValidValue(t.kind, t.value); err != nil {
		return target{}, fmt.Errorf("the subject identifier's value: %w", err)
	}
	return t, nil
}
