package store

import (
	"errors"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestRecordMergeAgreesWithEvents runs the same merges through the events'
// rule (events.Merge, Restricts, HoldUntil) and through scriptRecord, which
// merges in Lua and cannot call Go: two events recorded one after the other,
// in both orders, must leave what the merged event says — the epoch
// (Epoch), the token record's expiry (its PTTL; none for a key, held
// for ever) and which tokens Check rejects.
func TestRecordMergeAgreesWithEvents(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	const life, leeway = 15 * time.Minute, time.Minute
	now := time.Now().UTC()
	tests := []struct {
		name string
		// a and b revoke the same thing, the identifier v.
		a, b func(v string) events.Event
	}{
		{
			name: "token: the later exp",
			a:    func(v string) events.Event { return events.NewToken("a", v, now.Add(10*time.Minute), now) },
			b:    func(v string) events.Event { return events.NewToken("b", v, now.Add(20*time.Minute), now) },
		},
		{
			name: "token: equal exp",
			a:    func(v string) events.Event { return events.NewToken("a", v, now.Add(10*time.Minute), now) },
			b: func(v string) events.Event {
				return events.NewToken("b", v, now.Add(10*time.Minute), now.Add(time.Second))
			},
		},
		{
			name: "subject: the larger epoch",
			a:    func(v string) events.Event { return events.NewSubject("a", v, now.Add(-time.Second), now) },
			b:    func(v string) events.Event { return events.NewSubject("b", v, now, now) },
		},
		{
			name: "subject: epochs 1ns apart",
			a:    func(v string) events.Event { return events.NewSubject("a", v, now, now) },
			b:    func(v string) events.Event { return events.NewSubject("b", v, now.Add(time.Nanosecond), now) },
		},
		{
			name: "subject: equal epochs",
			a:    func(v string) events.Event { return events.NewSubject("a", v, now, now) },
			b:    func(v string) events.Event { return events.NewSubject("b", v, now, now.Add(time.Second)) },
		},
		{
			name: "scope: the larger epoch",
			a:    func(v string) events.Event { return events.NewScope("a", "tenant", v, now.Add(-time.Second), now) },
			b:    func(v string) events.Event { return events.NewScope("b", "tenant", v, now, now) },
		},
		{
			name: "scope: epochs 1ns apart",
			a:    func(v string) events.Event { return events.NewScope("a", "tenant", v, now, now) },
			b:    func(v string) events.Event { return events.NewScope("b", "tenant", v, now.Add(time.Nanosecond), now) },
		},
		{
			name: "issuer: equal epochs",
			a:    func(v string) events.Event { return events.NewIssuerEpoch("a", v, now, now) },
			b:    func(v string) events.Event { return events.NewIssuerEpoch("b", v, now, now.Add(time.Second)) },
		},
		{
			name: "session: revoked twice",
			a:    func(v string) events.Event { return events.NewSession("a", v, now.Add(-time.Minute)) },
			b:    func(v string) events.Event { return events.NewSession("b", v, now) },
		},
		{
			name: "key: revoked twice",
			a:    func(v string) events.Event { return events.NewKey("a", v, now) },
			b: func(v string) events.Event {
				k := events.NewKey("b", v, now)
				k.Reason = "compromised"
				return k
			},
		},
	}
	for i, tt := range tests {
		for order, name := range []string{"a then b", "b then a"} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				v := "m" + string(rune('a'+i)) + string(rune('0'+order))
				first, second := tt.a(v), tt.b(v)
				if order == 1 {
					first, second = second, first
				}
				for _, ev := range []events.Event{first, second} {
					if _, err := e.st.Record(ctx, verifiertest.Encoded(t, ev), leeway, nil); err != nil {
						t.Fatalf("Record(%s): %v", ev.ID, err)
					}
				}
				m := events.Merge(first, second)

				switch m.Kind {
				case events.KindSubject, events.KindScope:
					got, err := e.st.Epoch(ctx, m)
					if err != nil || !got.Equal(m.Epoch) {
						t.Fatalf("Epoch = %s, %v; the merge's epoch is %s",
							got.Format(time.RFC3339Nano), err, m.Epoch.Format(time.RFC3339Nano))
					}
				case events.KindToken:
					want := time.Until(m.HoldUntil(life, leeway))
					if got := pttl(t, ctx, e.rdb, e.st.recordKey(m)); got < want-time.Second || got > want+time.Second {
						t.Fatalf("PTTL = %s; the merge holds for %s", got, want)
					}
				case events.KindKey:
					if got := pttl(t, ctx, e.rdb, e.st.recordKey(m)); got != -1 || !m.HoldUntil(life, leeway).IsZero() {
						t.Fatalf("PTTL = %s, HoldUntil = %s; both must be for ever", got, m.HoldUntil(life, leeway))
					}
				}

				// Which tokens are rejected, and why: the same answers.
				probes := []events.Token{
					{JTI: v}, {SID: v}, {KID: v},
					{JTI: v + "x", SID: v + "x", Sub: v + "x", KID: v + "x", IssuedAt: now.Add(-time.Hour)},
				}
				scoped := []events.ScopeClaim{{Claim: "tenant", Value: v}}
				for _, epoch := range []time.Time{first.Epoch, second.Epoch} {
					for _, d := range []time.Duration{-time.Nanosecond, 0, time.Nanosecond} {
						iat := epoch.Add(d)
						probes = append(probes, events.Token{Sub: v, IssuedAt: iat},
							events.Token{Scopes: scoped, IssuedAt: iat}, events.Token{Iss: v, IssuedAt: iat})
					}
				}
				probes = append(probes, events.Token{Sub: v}, events.Token{Scopes: scoped}, events.Token{Iss: v},
					events.Token{Scopes: []events.ScopeClaim{{Claim: "org", Value: v}}})
				for _, p := range probes {
					want := m.Restricts(p)
					got := e.st.Check(ctx, p)
					if want == nil && got != nil || want != nil && !errors.Is(got, want) {
						t.Errorf("Check(%+v) = %v; the merge restricts it with %v", p, got, want)
					}
				}
			})
		}
	}
}

// TestIssuerScopedRecords runs issuer-scoped and unscoped records through
// Check and SubjectEpoch and compares every answer with the events' rule
// (events.Event.Restricts): a record scoped to an issuer answers only for
// that issuer's tokens, and the largest applicable epoch (subject, scopes,
// the issuer's own) decides.
func TestIssuerScopedRecords(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	const a, b = "https://a.example", "https://b.example"
	now := time.Now().UTC().Truncate(time.Microsecond)
	evs := []events.Event{
		events.NewSession("e1", "s-1", now).ForIssuer(a),
		events.NewToken("e2", "j-1", now.Add(10*time.Minute), now).ForIssuer(a),
		events.NewKey("e3", "k-1", now).ForIssuer(b),
		events.NewSubject("e4", "alice", now.Add(-time.Minute), now),
		events.NewSubject("e5", "alice", now, now).ForIssuer(a),
		events.NewSession("e6", "s-2", now),
		events.NewScope("e7", "tenant", "t-1", now, now).ForIssuer(a),
		events.NewScope("e8", "tenant", "t-2", now.Add(-time.Minute), now),
		events.NewIssuerEpoch("e9", b, now.Add(-time.Minute), now),
	}
	for _, ev := range evs {
		if _, err := e.st.Record(ctx, verifiertest.Encoded(t, ev), time.Minute, nil); err != nil {
			t.Fatalf("Record(%s): %v", ev.ID, err)
		}
	}
	var probes []events.Token
	for _, iss := range []string{"", a, b} {
		for _, iat := range []time.Time{now.Add(-2 * time.Minute), now.Add(-30 * time.Second), now.Add(time.Second)} {
			probes = append(probes,
				events.Token{SID: "s-1", Iss: iss, IssuedAt: iat}, events.Token{JTI: "j-1", Iss: iss, IssuedAt: iat},
				events.Token{KID: "k-1", Iss: iss, IssuedAt: iat}, events.Token{Sub: "alice", Iss: iss, IssuedAt: iat},
				events.Token{SID: "s-2", Iss: iss, IssuedAt: iat},
				events.Token{Scopes: []events.ScopeClaim{{Claim: "tenant", Value: "t-1"}}, Iss: iss, IssuedAt: iat},
				events.Token{Scopes: []events.ScopeClaim{{Claim: "tenant", Value: "t-2"}}, Iss: iss, IssuedAt: iat},
				events.Token{Scopes: []events.ScopeClaim{{Claim: "org", Value: "t-1"}}, Iss: iss, IssuedAt: iat})
		}
	}
	for _, p := range probes {
		var want error
		for _, ev := range evs {
			if want = ev.Restricts(p); want != nil {
				break
			}
		}
		if got := e.st.Check(ctx, p); want == nil && got != nil || want != nil && !errors.Is(got, want) {
			t.Errorf("Check(%+v) = %v; the events' rule says %v", p, got, want)
		}
	}
	for iss, want := range map[string]time.Time{"": now.Add(-time.Minute), a: now, b: now.Add(-time.Minute)} {
		if got, err := e.st.SubjectEpoch(ctx, iss, "alice"); err != nil || !got.Equal(want) {
			t.Errorf("SubjectEpoch(%q) = %s, %v; want %s", iss, got, err, want)
		}
	}
	for iss, want := range map[string]time.Time{"": {}, a: now, b: {}} {
		scope := events.NewScope("", "tenant", "t-1", now, now).ForIssuer(iss)
		if got, err := e.st.Epoch(ctx, scope); err != nil || !got.Equal(want) {
			t.Errorf("Epoch(tenant t-1 of %q) = %s, %v; want %s", iss, got, err, want)
		}
	}
}
