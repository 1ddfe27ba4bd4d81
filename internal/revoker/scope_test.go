package revoker

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestScopeRevocations: {"type":"scope"} logs out every token whose claim
// has the value, {"type":"issuer"} every token of an issuer, each up to
// now: a service replica refuses the tokens, introspection answers
// inactive, tokens of other values, of another issuer and issued later
// keep working.
func TestScopeRevocations(t *testing.T) {
	p := newScopedProviderEnv(t, []string{"tenant"})
	ctx := context.Background()
	old := time.Now().Add(-time.Second)
	own := func(tenant string) string {
		return p.iss.Token(t, verifiertest.TokenOptions{IssuedAt: old, Extra: map[string]any{"tenant": tenant}})
	}
	acme, globex := own("acme"), own("globex")
	idpAcme := p.idp.Token(t, verifiertest.TokenOptions{IssuedAt: old, Extra: map[string]any{"tenant": "acme"}})

	// A tenant of the own issuer only.
	res := p.revokeJSON(t, `{"type":"scope","claim":"tenant","value":"acme","iss":"`+p.iss.Issuer()+`","reason":"tenant offboarded"}`, "").result(t)
	p.refusedFor(t, "acme's token refused", acme, verifier.ErrScopeRevoked)
	if got := p.introspect(t, acme).introspection(t); got["active"] != false {
		t.Errorf("introspection of acme's token: %v, want inactive", got)
	}
	for what, tok := range map[string]string{"globex's token": globex, "idp's acme token": idpAcme,
		"acme's token issued after": p.iss.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"tenant": "acme"}})} {
		if _, err := p.service.Verify(ctx, tok); err != nil {
			t.Errorf("%s: %v, want accepted", what, err)
		}
	}
	subj, err := events.ScopeSubject(p.iss.Issuer(), "tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := p.lastOn(t, subj)
	if ev.ID != res.ID || ev.Kind != events.KindScope || ev.Claim != "tenant" || ev.ScopeValue != "acme" ||
		ev.Issuer != p.iss.Issuer() || ev.Reason != "tenant offboarded" || ev.Epoch.After(time.Now()) {
		t.Errorf("published %+v", ev)
	}

	// A whole issuer: every one of idp's tokens up to now, none of the own.
	idpOther := p.idp.Token(t, verifiertest.TokenOptions{IssuedAt: old, Subject: "zoe"})
	p.revokeJSON(t, `{"type":"issuer","iss":"`+idpIssuer+`","reason":"key leak"}`, "").result(t)
	p.refusedFor(t, "idp's tokens refused", idpOther, verifier.ErrScopeRevoked)
	if _, err := p.service.Verify(ctx, globex); err != nil {
		t.Errorf("own token after idp's issuer logout: %v, want accepted", err)
	}
	if _, err := p.service.Verify(ctx, p.idp.Token(t, verifiertest.TokenOptions{Subject: "zoe"})); err != nil {
		t.Errorf("idp's token issued after the issuer logout: %v, want accepted", err)
	}
	subj, _ = events.ScopeSubject("", events.ScopeIssuer, idpIssuer)
	if ev, _ := p.lastOn(t, subj); ev.Claim != events.ScopeIssuer || ev.ScopeValue != idpIssuer || ev.Issuer != "" {
		t.Errorf("issuer logout published %+v", ev)
	}

	// The own issuer, and introspection agrees.
	p.revokeJSON(t, `{"type":"issuer","iss":"`+p.iss.Issuer()+`"}`, "").result(t)
	p.refusedFor(t, "own tokens refused", globex, verifier.ErrScopeRevoked)
	if got := p.introspect(t, globex).introspection(t); got["active"] != false {
		t.Errorf("introspection after the own issuer's logout: %v, want inactive", got)
	}

	// A retry with the same Idempotency-Key answers the same event.
	body := `{"type":"scope","claim":"tenant","value":"initech"}`
	first := p.revokeJSON(t, body, "k-scope").result(t)
	if again := p.revokeJSON(t, body, "k-scope").result(t); again.ID != first.ID {
		t.Errorf("retry answered %s, first %s", again.ID, first.ID)
	}
	if a := p.revokeJSON(t, `{"type":"scope","claim":"tenant","value":"hooli"}`, "k-scope"); a.status != http.StatusConflict {
		t.Errorf("another scope under the same key: %d %s, want 409", a.status, a.body)
	}
}

// TestScopeRefused: a scope the revoker's configuration does not allow, an
// issuer it does not know, and every malformed scope or issuer request get
// 400 with a description in the caller's words; nothing is recorded or
// published.
func TestScopeRefused(t *testing.T) {
	p := newScopedProviderEnv(t, []string{"tenant", "client_id"})
	keys, seq := p.dbsize(t), p.lastSeq(t)
	for _, tt := range []struct{ name, body, says string }{
		{"a claim not configured", `{"type":"scope","claim":"org","value":"x"}`, `claim "org" is not an epoch scope of this revoker (-epoch-scopes; allowed: tenant, client_id)`},
		{"the subject claim", `{"type":"scope","claim":"sub","value":"alice"}`, "use a subject revocation"},
		{"the session claim", `{"type":"scope","claim":"sid","value":"s"}`, "use a session revocation"},
		{"the issuer claim", `{"type":"scope","claim":"iss","value":"` + idpIssuer + `"}`, `use {"type":"issuer","iss":…}`},
		{"the issuer claim of an issuer", `{"type":"scope","claim":"iss","value":"` + idpIssuer + `","iss":"` + idpIssuer + `"}`, `use {"type":"issuer"`},
		{"no claim", `{"type":"scope","value":"x"}`, `needs "claim" and "value"`},
		{"no value", `{"type":"scope","claim":"tenant"}`, `needs "claim" and "value"`},
		{"an empty value", `{"type":"scope","claim":"tenant","value":""}`, `needs "claim" and "value"`},
		{"a value with a control character", `{"type":"scope","claim":"tenant","value":"a\u0001b"}`, "value"},
		{"a value of 300 bytes", `{"type":"scope","claim":"tenant","value":"` + strings.Repeat("v", 300) + `"}`, "value longer than 256 bytes"},
		{"a scope with a sid", `{"type":"scope","claim":"tenant","value":"x","sid":"s"}`, `"sid" is not a field of a scope revocation`},
		{"an issuer without iss", `{"type":"issuer"}`, `"iss" is required`},
		{"an issuer nobody configured", `{"type":"issuer","iss":"https://typo.example.test/"}`, "neither this revoker's issuer nor a configured provider's"},
		{"an issuer with a claim", `{"type":"issuer","iss":"` + idpIssuer + `","claim":"tenant"}`, `"claim" is not a field of an issuer revocation`},
		{"an issuer with a value", `{"type":"issuer","iss":"` + idpIssuer + `","value":"x"}`, `"value" is not a field of an issuer revocation`},
		{"a subject with a claim", `{"type":"subject","sub":"u","claim":"tenant"}`, `"claim" is not a field of a subject revocation`},
		{"a claim as a number", `{"type":"scope","claim":7,"value":"x"}`, "claim"},
	} {
		a := p.revokeJSON(t, tt.body, "")
		if a.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", tt.name, a.status, a.body)
			continue
		}
		if code, desc := a.errorBody(t); code != "invalid_request" || !strings.Contains(desc, tt.says) {
			t.Errorf("%s: %s %q, want invalid_request saying %q", tt.name, code, desc, tt.says)
		}
	}
	if n, s := p.dbsize(t), p.lastSeq(t); n != keys || s != seq {
		t.Errorf("after the refused requests: %d Redis keys, stream seq %d; before %d, %d", n, s, keys, seq)
	}
}

// TestScopeEpochsGrow: two scope logouts of the same value in a row get
// strictly growing epochs, as a subject's do, so the later one never
// restricts less.
func TestScopeEpochsGrow(t *testing.T) {
	p := newScopedProviderEnv(t, []string{"tenant"})
	subj, _ := events.ScopeSubject("", "tenant", "acme")
	var last time.Time
	for i := range 3 {
		p.revokeJSON(t, `{"type":"scope","claim":"tenant","value":"acme"}`, "").result(t)
		ev, _ := p.lastOn(t, subj)
		if !ev.Epoch.After(last) {
			t.Fatalf("logout %d: epoch %s not after %s", i, ev.Epoch, last)
		}
		last = ev.Epoch
	}
}

// TestSSFEmailScope: an SSF event naming its subject by email logs out
// that provider's tokens carrying the email, when email is an epoch scope;
// tokens of another email or of the own issuer keep working.
func TestSSFEmailScope(t *testing.T) {
	p := newScopedProviderEnv(t, []string{"email"})
	ctx := context.Background()
	old := time.Now().Add(-10 * time.Second)
	gina := p.idp.Token(t, verifiertest.TokenOptions{Subject: "g-1", IssuedAt: old, Extra: map[string]any{"email": "gina@example.test"}})
	hal := p.idp.Token(t, verifiertest.TokenOptions{Subject: "h-1", IssuedAt: old, Extra: map[string]any{"email": "hal@example.test"}})
	ownGina := p.iss.Token(t, verifiertest.TokenOptions{IssuedAt: old, Extra: map[string]any{"email": "gina@example.test"}})
	set := p.idp.SET(t, verifiertest.SETOptions{Audience: idpAudience, EventType: riscAccountPurged,
		SubjectID: map[string]any{"format": "email", "email": "gina@example.test"}})
	if a := p.push(t, set, ssfCredential); a.status != http.StatusAccepted {
		t.Fatalf("push: %d %s", a.status, a.body)
	}
	p.refusedFor(t, "gina's token of idp refused", gina, verifier.ErrScopeRevoked)
	for what, tok := range map[string]string{"hal's": hal, "gina's of the own issuer": ownGina} {
		if _, err := p.service.Verify(ctx, tok); err != nil {
			t.Errorf("%s token: %v, want accepted", what, err)
		}
	}
	subj, _ := events.ScopeSubject(idpIssuer, "email", "gina@example.test")
	if ev, _ := p.lastOn(t, subj); ev.Initiator != "provider:idp" || ev.Reason != "account-purged" {
		t.Errorf("published %+v", ev)
	}
	if got := p.signalsOf(t, "ssf", "accepted"); got != 1 {
		t.Errorf("accepted SETs %v, want 1", got)
	}
}
