package events_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// ExampleNewEncoded validates and encodes a session revocation once: the
// bytes are what Redis records and the stream stores, and its subject is
// where it is published.
func ExampleNewEncoded() {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	ev := events.NewSession("rev.1", "s-42", at)
	ev.Reason = "logout"
	x, err := events.NewEncoded(ev)
	if err != nil {
		fmt.Println(err)
		return
	}
	subject, _ := ev.Subject()
	fmt.Println(subject)
	fmt.Println(x)
	// Output:
	// revocations.sid.cy00Mg
	// {"v":1,"id":"rev.1","kind":"session","issued_at":"2026-12-02T10:00:00Z","sid":"s-42","reason":"logout"}
}

// ExampleEpochRevokes: a subject's logout epoch revokes the tokens issued
// at or before it, and none issued after, even within the same second.
func ExampleEpochRevokes() {
	epoch := time.Date(2026, 12, 2, 10, 0, 0, 500, time.UTC)
	fmt.Println(events.EpochRevokes(epoch.Add(-time.Second), epoch))
	fmt.Println(events.EpochRevokes(epoch, epoch))
	fmt.Println(events.EpochRevokes(epoch.Add(time.Nanosecond), epoch))
	// Output:
	// true
	// true
	// false
}

// ExampleDecode: anything that is not a valid event of the contract is
// refused with an error wrapping ErrInvalid, so a consumer can skip it.
func ExampleDecode() {
	_, err := events.Decode([]byte(`{"v":1,"id":"rev.2","kind":"tenant","issued_at":"2026-12-02T10:00:00Z"}`))
	fmt.Println(errors.Is(err, events.ErrInvalid), errors.Is(err, events.ErrUnknownKind))
	// Output:
	// true true
}

// ExampleNewScope: an epoch scope beyond the subject. Every token whose
// client_id is app-7 and whose iat is not after the epoch is refused;
// NewIssuerEpoch does it for every token of an issuer.
func ExampleNewScope() {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	ev := events.NewScope("rev.2", "client_id", "app-7", at, at)
	x, err := events.NewEncoded(ev)
	if err != nil {
		fmt.Println(err)
		return
	}
	subject, _ := ev.Subject()
	fmt.Println(subject)
	fmt.Println(x)
	tok := events.Token{Sub: "alice", IssuedAt: at.Add(-time.Minute), Scopes: []events.ScopeClaim{{Claim: "client_id", Value: "app-7"}}}
	fmt.Println(ev.Restricts(tok))
	iss := events.NewIssuerEpoch("rev.3", "https://idp.example/", at, at)
	fmt.Println(iss.Restricts(events.Token{Sub: "bob", Iss: "https://idp.example/", IssuedAt: at}))
	// Output:
	// revocations.scope.Y2xpZW50X2lk.YXBwLTc
	// {"v":1,"id":"rev.2","kind":"scope","issued_at":"2026-12-02T10:00:00Z","epoch":"2026-12-02T10:00:00Z","claim":"client_id","value":"app-7"}
	// verifier: scope logged out
	// verifier: scope logged out
}
