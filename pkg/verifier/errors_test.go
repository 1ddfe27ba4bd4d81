package verifier

import (
	"errors"
	"testing"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// TestEveryKindHasAReasonCode fails when a kind is added to events.Kinds()
// without a reason code here: a token it revokes would be answered as an
// internal error instead of a 401 with its reason.
func TestEveryKindHasAReasonCode(t *testing.T) {
	want := map[events.Kind]string{
		events.KindToken:   "revoked_token",
		events.KindSession: "revoked_session",
		events.KindSubject: "revoked_subject",
		events.KindKey:     "revoked_key",
		events.KindScope:   "revoked_scope",
	}
	for _, k := range events.Kinds() {
		t.Run(string(k), func(t *testing.T) {
			sentinel := k.ErrRevoked()
			if sentinel == nil {
				t.Fatal("no reason sentinel in events")
			}
			if got := Reason(fail(sentinel, "")); got != want[k] {
				t.Fatalf("Reason = %q, want %q", got, want[k])
			}
			err := classifyRevocation(sentinel)
			if !errors.Is(err, ErrInvalidToken) || !errors.Is(err, sentinel) {
				t.Fatalf("classifyRevocation = %v: not a 401 wrapping the reason", err)
			}
		})
	}
}
