package revoker

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

const eventsPath = "/v1/providers/idp/events"

// push posts a SET as a Shared Signals transmitter does (RFC 8935).
func (e *env) push(t *testing.T, set, credential string) answer {
	t.Helper()
	return e.do(t, http.MethodPost, eventsPath, "application/secevent+jwt", []byte(set),
		map[string]string{"Authorization": "Bearer " + credential})
}

// setError decodes RFC 8935's error body.
func (a answer) setError(t *testing.T) (code, desc string) {
	t.Helper()
	var b struct {
		Err         *string `json:"err"`
		Description *string `json:"description"`
	}
	if err := json.Unmarshal(a.body, &b); err != nil || b.Err == nil || b.Description == nil {
		t.Fatalf("status %d: body %q is not {\"err\",\"description\"}", a.status, a.body)
	}
	return *b.Err, *b.Description
}

// TestSSFPush: CAEP and RISC events pushed by a provider revoke what they
// name on a service replica, scoped to the provider: a session of a
// complex subject, a subject by iss_sub or opaque id at the event's time,
// a token by jwt_id. Events that name nothing this system can revoke are
// accepted (202) and counted, never refused.
func TestSSFPush(t *testing.T) {
	p := newProviderEnv(t)
	ctx := context.Background()
	set := func(eventType string, sub map[string]any, ev map[string]any) string {
		return p.idp.SET(t, verifiertest.SETOptions{Audience: idpAudience, EventType: eventType, SubjectID: sub, Event: ev})
	}
	accepted := func(what, raw string) {
		t.Helper()
		if a := p.push(t, raw, ssfCredential); a.status != http.StatusAccepted {
			t.Fatalf("%s: %d %s, want 202", what, a.status, a.body)
		}
	}

	// session-revoked naming a session: that session of idp.
	sess := p.idp.Token(t, verifiertest.TokenOptions{Subject: "carol", SessionID: "s-9"})
	carolOther := p.idp.Token(t, verifiertest.TokenOptions{Subject: "carol", SessionID: "s-10"})
	accepted("session-revoked", set(caepSessionRevoked, map[string]any{
		"user":    map[string]any{"format": "iss_sub", "iss": idpIssuer, "sub": "carol"},
		"session": map[string]any{"format": "opaque", "id": "s-9"},
	}, map[string]any{"event_timestamp": time.Now().Unix()}))
	p.refusedFor(t, "carol's session s-9 refused", sess, verifier.ErrSessionRevoked)
	if _, err := p.service.Verify(ctx, carolOther); err != nil {
		t.Errorf("carol's other session: %v, want accepted", err)
	}
	if ev, _ := p.lastIssuerEvent(t, idpIssuer, events.KindSession, "s-9"); ev.Reason != "session-revoked" || ev.Initiator != "provider:idp" {
		t.Errorf("event %+v", ev)
	}

	// credential-change by iss_sub, at the event's time: earlier tokens
	// refused, later ones not.
	at := time.Now().Add(-30 * time.Second)
	before := p.idp.Token(t, verifiertest.TokenOptions{Subject: "dave", IssuedAt: at.Add(-time.Second)})
	after := p.idp.Token(t, verifiertest.TokenOptions{Subject: "dave", IssuedAt: at.Add(time.Second)})
	accepted("credential-change", set(caepCredentialChange, map[string]any{"format": "iss_sub", "iss": idpIssuer, "sub": "dave"},
		map[string]any{"event_timestamp": at.Unix(), "credential_type": "password", "change_type": "update"}))
	p.refusedFor(t, "dave's earlier token refused", before, verifier.ErrSubjectRevoked)
	if _, err := p.service.Verify(ctx, after); err != nil {
		t.Errorf("dave's token issued after the event: %v, want accepted", err)
	}

	// RISC account-disabled with the subject inside the event (CAEP
	// drafts), opaque.
	erin := p.idp.Token(t, verifiertest.TokenOptions{Subject: "erin"})
	accepted("account-disabled", set(riscAccountDisabled, nil, map[string]any{
		"subject": map[string]any{"format": "opaque", "id": "erin"}, "reason": "hijacking"}))
	p.refusedFor(t, "erin refused", erin, verifier.ErrSubjectRevoked)

	// A token by jwt_id.
	tok := p.idp.Token(t, verifiertest.TokenOptions{Subject: "frank", JTI: "jti-frank"})
	accepted("credential-compromise of a token", set(riscCredentialCompromise, map[string]any{"format": "jwt_id", "iss": idpIssuer, "jti": "jti-frank"}, nil))
	p.refusedFor(t, "frank's token refused", tok, verifier.ErrTokenRevoked)

	// Accepted, nothing revoked: an unknown event type, the stream's
	// verification, an email subject (needs an email epoch scope), a
	// phone number.
	keys, seq := p.dbsize(t), p.lastSeq(t)
	accepted("unknown event", set("https://example.test/event-type/weather-changed", map[string]any{"format": "opaque", "id": "x"}, nil))
	accepted("verification", set(ssfVerification, nil, map[string]any{"state": "abc"}))
	accepted("email subject", set(riscAccountPurged, map[string]any{"format": "email", "email": "gina@example.test"}, nil))
	accepted("phone subject", set(riscSessionsRevoked, map[string]any{"format": "phone_number", "phone_number": "+15555550100"}, nil))
	if n, s := p.dbsize(t), p.lastSeq(t); n != keys || s != seq {
		t.Errorf("events that name nothing changed Redis (%d → %d keys) or the stream (seq %d → %d)", keys, n, seq, s)
	}
	if got := p.signalsOf(t, "ssf", "ignored"); got != 4 {
		t.Errorf("ignored SETs %v, want 4", got)
	}
	if got := p.signalsOf(t, "ssf", "accepted"); got != 4 {
		t.Errorf("accepted SETs %v, want 4", got)
	}
}

// TestSSFRefused: a SET that cannot be taken gets 400 with RFC 8935's
// error code (401 without the stream credential), and nothing is
// recorded; the transmitter's retry of a SET gets 202 again, another SET
// under the same jti is a replay.
func TestSSFRefused(t *testing.T) {
	p := newProviderEnv(t)
	sub := map[string]any{"format": "iss_sub", "iss": idpIssuer, "sub": "alice"}
	first := p.idp.SET(t, verifiertest.SETOptions{Audience: idpAudience, EventType: riscSessionsRevoked, SubjectID: sub, JTI: "set-1"})
	if a := p.push(t, first, ssfCredential); a.status != http.StatusAccepted {
		t.Fatalf("first SET: %d %s", a.status, a.body)
	}
	if a := p.push(t, first, ssfCredential); a.status != http.StatusAccepted {
		t.Errorf("the same SET again: %d %s, want 202", a.status, a.body)
	}
	keys, seq := p.dbsize(t), p.lastSeq(t)
	o := func(mod func(*verifiertest.SETOptions)) string {
		opts := verifiertest.SETOptions{Audience: idpAudience, EventType: riscSessionsRevoked, SubjectID: sub}
		if mod != nil {
			mod(&opts)
		}
		return p.idp.SET(t, opts)
	}
	stranger := verifiertest.NewIssuer(t, verifiertest.WithIssuer(idpIssuer), verifiertest.WithAlgorithm("RS256"))
	cases := []struct {
		name, set, credential, ctype string
		status                       int
		code                         string
	}{
		{"no credential", o(nil), "", "", 401, setAuthFailed},
		{"the service credential", o(nil), testCredential, "", 401, setAuthFailed},
		{"not a SET media type", o(nil), ssfCredential, "application/jwt", 400, setInvalidRequest},
		{"signed by a stranger", stranger.SET(t, verifiertest.SETOptions{Audience: idpAudience, EventType: riscSessionsRevoked, SubjectID: sub}), ssfCredential, "", 400, setInvalidKey},
		{"another issuer", o(func(s *verifiertest.SETOptions) { s.Extra = map[string]any{"iss": "https://evil.example.test/"} }), ssfCredential, "", 400, setInvalidIssuer},
		{"another receiver", o(func(s *verifiertest.SETOptions) { s.Audience = "https://other.example.test/" }), ssfCredential, "", 400, setInvalidAudience},
		{"a sub claim", o(func(s *verifiertest.SETOptions) { s.Extra = map[string]any{"sub": "alice"} }), ssfCredential, "", 400, setInvalidRequest},
		{"no subject", o(func(s *verifiertest.SETOptions) { s.SubjectID = nil }), ssfCredential, "", 400, setInvalidRequest},
		{"a subject of another issuer", o(func(s *verifiertest.SETOptions) {
			s.SubjectID = map[string]any{"format": "iss_sub", "iss": "https://other-idp.example.test/", "sub": "alice"}
		}), ssfCredential, "", 400, setInvalidRequest},
		{"an iss_sub without sub", o(func(s *verifiertest.SETOptions) { s.SubjectID = map[string]any{"format": "iss_sub", "iss": idpIssuer} }), ssfCredential, "", 400, setInvalidRequest},
		{"a bad event_timestamp", o(func(s *verifiertest.SETOptions) { s.Event = map[string]any{"event_timestamp": "noon"} }), ssfCredential, "", 400, setInvalidRequest},
		{"the same jti, another event", o(func(s *verifiertest.SETOptions) {
			s.JTI, s.SubjectID = "set-1", map[string]any{"format": "iss_sub", "iss": idpIssuer, "sub": "bob"}
		}), ssfCredential, "", 400, setInvalidRequest},
		{"not a JWT", "not-a-jwt", ssfCredential, "", 400, setInvalidRequest},
	}
	for _, tt := range cases {
		ctype := tt.ctype
		if ctype == "" {
			ctype = "application/secevent+jwt"
		}
		hdr := map[string]string{}
		if tt.credential != "" {
			hdr["Authorization"] = "Bearer " + tt.credential
		}
		a := p.do(t, http.MethodPost, eventsPath, ctype, []byte(tt.set), hdr)
		if a.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, a.status, a.body, tt.status)
			continue
		}
		if code, _ := a.setError(t); code != tt.code {
			t.Errorf("%s: err %q, want %q", tt.name, code, tt.code)
		}
	}
	if n, s := p.dbsize(t), p.lastSeq(t); n != keys || s != seq {
		t.Errorf("after the refused SETs: %d Redis keys, stream seq %d; before %d, %d", n, s, keys, seq)
	}
	if got := p.signalsOf(t, "ssf", "replay"); got != 1 {
		t.Errorf("replayed SETs %v, want 1", got)
	}
}
