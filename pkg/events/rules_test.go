package events

import (
	"errors"
	"testing"
	"time"
)

// TestEveryKindHasRules fails when a kind is added to Kinds() without its
// rules: a reason, a restriction, a merge bound and a hold. It builds the
// events generically (every identifier field set), so a kind missing from
// any of the rules' switches fails here, not in production.
func TestEveryKindHasRules(t *testing.T) {
	const life, leeway = 5 * time.Minute, 2 * time.Second
	// at returns an event of kind k whose every time is shifted by d.
	at := func(k Kind, d time.Duration) Event {
		return Event{
			Version: Version, ID: "e", Kind: k, IssuedAt: t0.Add(d),
			JTI: "x", SID: "x", Sub: "x", KID: "x", Claim: "tenant", ScopeValue: "x",
			Expiry: t0.Add(time.Hour + d), Epoch: t0.Add(d),
		}
	}
	hit := Token{JTI: "x", SID: "x", Sub: "x", KID: "x", Scopes: []ScopeClaim{{"tenant", "x"}}, IssuedAt: t0.Add(-time.Second)}
	miss := Token{JTI: "y", SID: "y", Sub: "y", KID: "y", Scopes: []ScopeClaim{{"tenant", "y"}}, IssuedAt: t0.Add(-time.Second)}
	reasons := map[error]Kind{}
	for _, k := range Kinds() {
		t.Run(string(k), func(t *testing.T) {
			sentinel := k.ErrRevoked()
			if sentinel == nil {
				t.Fatal("no reason: add it to Kind.ErrRevoked")
			}
			if other, dup := reasons[sentinel]; dup {
				t.Fatalf("reason %v shared with kind %s", sentinel, other)
			}
			reasons[sentinel] = k

			e := at(k, 0)
			if err := e.Restricts(hit); !errors.Is(err, sentinel) {
				t.Fatalf("Restricts(a token naming it) = %v, want %v: add a restriction rule to Event.Restricts", err, sentinel)
			}
			if err := e.Restricts(miss); err != nil {
				t.Fatalf("Restricts(a token naming something else) = %v", err)
			}
			if err := e.Restricts(Token{}); err != nil {
				t.Fatalf("Restricts(a token without identifiers) = %v", err)
			}
			// Scoped to an issuer, it restricts that issuer's tokens only.
			scoped, mine, theirs := e.ForIssuer("https://a.example"), hit, hit
			mine.Iss, theirs.Iss = "https://a.example", "https://b.example"
			if err := scoped.Restricts(mine); !errors.Is(err, sentinel) {
				t.Fatalf("scoped Restricts(a token of its issuer) = %v, want %v", err, sentinel)
			}
			if err := scoped.Restricts(theirs); err != nil {
				t.Fatalf("scoped Restricts(a token of another issuer) = %v", err)
			}
			if err := e.Restricts(theirs); !errors.Is(err, sentinel) {
				t.Fatalf("unscoped Restricts(a token of any issuer) = %v, want %v", err, sentinel)
			}
			if scoped.Covers(e) || e.Covers(scoped) {
				t.Fatal("a scoped and an unscoped event cover each other: they are different things")
			}

			early, late := at(k, 0), at(k, time.Minute)
			if _, ok := early.bound(); !ok {
				t.Fatal("no merge bound: add it to Event.bound")
			}
			if late.Bound().Before(early.Bound()) {
				t.Fatalf("a later event has an earlier bound: %v < %v", late.Bound(), early.Bound())
			}
			if !late.Covers(early) {
				t.Fatal("a later event does not cover an earlier one")
			}
			if m := Merge(early, late); !m.Covers(late) || !m.Covers(early) {
				t.Fatalf("Merge = %+v covers not both", m)
			}

			h1, ok := early.holdUntil(life, leeway)
			if !ok {
				t.Fatal("no hold: add it to Event.holdUntil")
			}
			// The hold never decreases with the bound: a consumer keeping
			// the merged event holds it for the longest of both.
			h2, _ := late.holdUntil(life, leeway)
			if !h1.IsZero() && (h2.IsZero() || h2.Before(h1)) || h1.IsZero() && !h2.IsZero() {
				t.Fatalf("hold of the later event %v, of the earlier %v", h2, h1)
			}
		})
	}
}

func TestEpochRevokes(t *testing.T) {
	epoch := time.Date(2026, 5, 6, 7, 8, 9, 987654321, time.UTC)
	tests := []struct {
		name string
		iat  time.Time
		want bool
	}{
		{name: "before", iat: epoch.Add(-time.Second), want: true},
		{name: "at, same nanosecond", iat: epoch, want: true},
		{name: "at, another location", iat: epoch.In(time.FixedZone("x", 3600)), want: true},
		{name: "1ns after", iat: epoch.Add(time.Nanosecond)},
		{name: "zero iat cannot prove it is newer", iat: time.Time{}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EpochRevokes(tt.iat, epoch); got != tt.want {
				t.Fatalf("EpochRevokes = %t, want %t", got, tt.want)
			}
		})
	}
}

func TestRestricts(t *testing.T) {
	evs := validEvents() // token a1b2c3, session s-42, subject alice, key 2026-11-a
	tests := []struct {
		name string
		e    Event
		tok  Token
		want error
	}{
		{name: "jti", e: evs[0], tok: Token{JTI: "a1b2c3"}, want: ErrTokenRevoked},
		{name: "other jti", e: evs[0], tok: Token{JTI: "a1b2c4", SID: "a1b2c3"}},
		{name: "sid", e: evs[1], tok: Token{SID: "s-42"}, want: ErrSessionRevoked},
		{name: "other sid", e: evs[1], tok: Token{JTI: "s-42", SID: "s-43"}},
		{name: "sub at epoch", e: evs[2], tok: Token{Sub: "alice", IssuedAt: evs[2].Epoch}, want: ErrSubjectRevoked},
		{name: "sub after epoch", e: evs[2], tok: Token{Sub: "alice", IssuedAt: evs[2].Epoch.Add(time.Nanosecond)}},
		{name: "sub without iat", e: evs[2], tok: Token{Sub: "alice"}, want: ErrSubjectRevoked},
		{name: "other sub", e: evs[2], tok: Token{Sub: "bob", IssuedAt: evs[2].Epoch}},
		{name: "kid", e: evs[3], tok: Token{KID: "2026-11-a", IssuedAt: t0.Add(time.Hour)}, want: ErrKeyRevoked},
		{name: "other kid", e: evs[3], tok: Token{KID: "2026-11-b"}},
		{name: "unknown kind", e: Event{Kind: "tenant", JTI: "a"}, tok: Token{JTI: "a"}},
		{name: "sid of its issuer", e: evs[1].ForIssuer("https://idp"), tok: Token{SID: "s-42", Iss: "https://idp"}, want: ErrSessionRevoked},
		{name: "sid of another issuer", e: evs[1].ForIssuer("https://idp"), tok: Token{SID: "s-42", Iss: "https://idp/"}},
		{name: "sid, token without iss", e: evs[1].ForIssuer("https://idp"), tok: Token{SID: "s-42"}},
		{name: "unscoped sid, any issuer", e: evs[1], tok: Token{SID: "s-42", Iss: "https://idp"}, want: ErrSessionRevoked},
		{name: "sub of another issuer", e: evs[2].ForIssuer("https://a"), tok: Token{Sub: "alice", Iss: "https://b", IssuedAt: evs[2].Epoch}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.e.Restricts(tt.tok); err != tt.want {
				t.Fatalf("Restricts = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	tok := func(exp time.Duration, reason string) Event {
		e := NewToken("t", "j", t0.Add(exp), t0)
		e.Reason = reason
		return e
	}
	sub := func(epoch time.Duration, reason string) Event {
		e := NewSubject("s", "alice", t0.Add(epoch), t0.Add(time.Minute))
		e.Reason = reason
		return e
	}
	ses := func(issued time.Duration) Event { return NewSession("s", "sid", t0.Add(issued)) }
	key := func(reason string) Event {
		e := NewKey("k", "kid", t0)
		e.Reason = reason
		return e
	}
	tests := []struct {
		name string
		a, b Event
		want Event
	}{
		{name: "token: latest exp", a: tok(time.Hour, "a"), b: tok(2*time.Hour, "b"), want: tok(2*time.Hour, "b")},
		{name: "subject: largest epoch", a: sub(time.Second, ""), b: sub(-time.Second, "x"), want: sub(time.Second, "")},
		{name: "subject: epochs 1ns apart", a: sub(0, ""), b: sub(time.Nanosecond, ""), want: sub(time.Nanosecond, "")},
		{name: "session: latest issue", a: ses(time.Minute), b: ses(0), want: ses(time.Minute)},
		{name: "tie: a reason wins over none", a: key(""), b: key("compromised"), want: key("compromised")},
		{name: "tie: the smaller reason", a: tok(time.Hour, "logout"), b: tok(time.Hour, "admin"), want: tok(time.Hour, "admin")},
		{name: "different things", a: tok(time.Hour, ""), b: NewToken("t", "other", t0.Add(2*time.Hour), t0), want: tok(time.Hour, "")},
		{name: "different kinds", a: key(""), b: NewSession("s", "kid", t0), want: key("")},
		{name: "different issuers", a: ses(0), b: ses(time.Minute).ForIssuer("https://idp"), want: ses(0)},
		{name: "one issuer: latest issue", a: ses(0).ForIssuer("https://idp"), b: ses(time.Minute).ForIssuer("https://idp"), want: ses(time.Minute).ForIssuer("https://idp")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Merge(tt.a, tt.b); !got.Equal(tt.want) {
				t.Fatalf("Merge(a, b) = %+v, want %+v", got, tt.want)
			}
			if !sameTarget(tt.a, tt.b) {
				return
			}
			// Commutative, idempotent, and Covers says what the merge kept.
			if got := Merge(tt.b, tt.a); got.Rank().Compare(tt.want.Rank()) != 0 {
				t.Fatalf("Merge(b, a) = %+v, want the rank of %+v", got, tt.want)
			}
			if got := Merge(tt.want, tt.want); !got.Equal(tt.want) {
				t.Fatalf("Merge(m, m) = %+v", got)
			}
			for _, e := range []Event{tt.a, tt.b} {
				if got, want := e.Covers(tt.a) && e.Covers(tt.b), Merge(tt.a, tt.b).Bound().Equal(e.Bound()); got != want {
					t.Fatalf("%+v covers both: %t, is the merge's bound: %t", e, got, want)
				}
			}
		})
	}
}

// TestScopeRules: a scope event restricts the tokens whose claim of that
// name has that value, issued up to its epoch; the scope of the claim iss
// is every token of that issuer; claims with kinds of their own, times and
// the audience cannot be scopes.
func TestScopeRules(t *testing.T) {
	e := NewScope("s", "client_id", "app-1", t0, t0)
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	tok := func(claim, value string, iat time.Time) Token {
		return Token{Sub: "alice", Iss: "https://idp.example/", IssuedAt: iat, Scopes: []ScopeClaim{{"tenant", "t-1"}, {claim, value}}}
	}
	for _, tt := range []struct {
		name string
		tok  Token
		want error
	}{
		{"its claim, issued before", tok("client_id", "app-1", t0.Add(-time.Second)), ErrScopeRevoked},
		{"its claim, issued at the epoch", tok("client_id", "app-1", t0), ErrScopeRevoked},
		{"its claim, issued after", tok("client_id", "app-1", t0.Add(time.Nanosecond)), nil},
		{"another value", tok("client_id", "app-2", t0.Add(-time.Second)), nil},
		{"the value under another claim", tok("azp", "app-1", t0.Add(-time.Second)), nil},
		{"no scopes", Token{Sub: "alice", IssuedAt: t0.Add(-time.Second)}, nil},
	} {
		if err := e.Restricts(tt.tok); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}

	iss := NewIssuerEpoch("i", "https://idp.example/", t0, t0)
	if err := iss.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := iss.Restricts(Token{Sub: "bob", Iss: "https://idp.example/", IssuedAt: t0}); !errors.Is(err, ErrScopeRevoked) {
		t.Errorf("issuer epoch, a token of that issuer: %v", err)
	}
	if err := iss.Restricts(Token{Sub: "bob", Iss: "https://other.example/", IssuedAt: t0}); err != nil {
		t.Errorf("issuer epoch, another issuer's token: %v", err)
	}
	if err := iss.ForIssuer("https://idp.example/").Validate(); !errors.Is(err, ErrUnexpectedField) {
		t.Errorf("an issuer epoch scoped to an issuer: %v, want ErrUnexpectedField", err)
	}
	for _, claim := range []string{"sub", "jti", "sid", "exp", "iat", "nbf", "aud", "", "a\nb"} {
		if err := NewScope("s", claim, "v", t0, t0).Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("claim %q: %v, want refused", claim, err)
		}
	}
	if err := NewScope("s", "email", "alice@example.test", t0.Add(2*MaxFutureSkew), t0).Validate(); !errors.Is(err, ErrBadTime) {
		t.Errorf("an epoch far after issued_at: %v", err)
	}
	stray := NewScope("s", "email", "a@example.test", t0, t0)
	stray.Sub = "alice"
	if err := stray.Validate(); !errors.Is(err, ErrUnexpectedField) {
		t.Errorf("sub in a scope event: %v", err)
	}
	claimed := NewSession("s", "s-1", t0)
	claimed.Claim = "email"
	if err := claimed.Validate(); !errors.Is(err, ErrUnexpectedField) {
		t.Errorf("claim in a session event: %v", err)
	}
}
