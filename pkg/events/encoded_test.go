package events

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestEncoded: NewEncoded validates and encodes as Encode does, DecodeEncoded
// keeps the bytes it read, and both give back the event.
func TestEncoded(t *testing.T) {
	for _, e := range []Event{
		NewToken("tok.1", "j", t0.Add(time.Hour), t0),
		NewSession("ses.1", "s", t0),
		NewSubject("sub.1", "alice", t0, t0),
		NewKey("key.1", "k", t0),
	} {
		x, err := NewEncoded(e)
		if err != nil {
			t.Fatalf("NewEncoded(%s): %v", e.ID, err)
		}
		want, err := Encode(e)
		if err != nil || !bytes.Equal(x.Bytes(), want) || x.String() != string(want) {
			t.Fatalf("NewEncoded(%s) = %s, Encode = %s, %v", e.ID, x.Bytes(), want, err)
		}
		if x.IsZero() || !x.Event().Equal(e) {
			t.Fatalf("NewEncoded(%s).Event() = %+v, want %+v", e.ID, x.Event(), e)
		}
		y, err := DecodeEncoded(x.Bytes())
		if err != nil || &y.Bytes()[0] != &x.Bytes()[0] || !y.Event().Equal(e) {
			t.Fatalf("DecodeEncoded(%s) = %v, %v; want the event and the very bytes", e.ID, y, err)
		}
	}
	if _, err := NewEncoded(NewSession("id", "", t0)); !errors.Is(err, ErrMissingField) {
		t.Fatalf("NewEncoded of a session without sid: %v, want ErrMissingField", err)
	}
	if _, err := DecodeEncoded([]byte(`{"v":2}`)); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("DecodeEncoded(v2): %v, want ErrUnsupportedVersion", err)
	}
}

// TestEncodedReissued: a reissue that moves issued_at is a new encoding of
// a valid event; one that does not is the same bytes; a time out of range
// is refused.
func TestEncodedReissued(t *testing.T) {
	for _, e := range []Event{
		NewToken("tok.1", "j", t0.Add(time.Hour), t0),
		NewSession("ses.1", "s", t0),
		NewSubject("sub.1", "alice", t0.Add(MaxFutureSkew), t0), // epoch ahead of issued_at
		NewKey("key.1", "k", t0),
	} {
		x, err := NewEncoded(e)
		if err != nil {
			t.Fatal(err)
		}
		same, err := x.Reissued(t0.Add(-time.Second))
		if err != nil || &same.Bytes()[0] != &x.Bytes()[0] {
			t.Fatalf("%s: Reissued(earlier) = %v, %v; want x itself", e.ID, same, err)
		}
		later := t0.Add(90 * time.Second)
		r, err := x.Reissued(later)
		if err != nil {
			t.Fatalf("%s: Reissued: %v", e.ID, err)
		}
		want, err := Encode(e.Reissued(later))
		if err != nil || !bytes.Equal(r.Bytes(), want) || !r.Event().Equal(e.Reissued(later)) {
			t.Fatalf("%s: Reissued = %s, want %s (%v)", e.ID, r, want, err)
		}
		if err := r.Event().Validate(); err != nil {
			t.Fatalf("%s: reissued event invalid: %v", e.ID, err)
		}
		if _, err := x.Reissued(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrBadTime) {
			t.Fatalf("%s: Reissued(2200) = %v, want ErrBadTime", e.ID, err)
		}
	}
	if _, err := (Encoded{}).Reissued(t0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("zero Encoded Reissued: %v, want ErrInvalid", err)
	}
}

// TestNewMsg: the message carries the encoded bytes themselves and the
// headers; the zero Encoded is refused.
func TestNewMsg(t *testing.T) {
	x, err := NewEncoded(NewKey("key.1", "k1", t0))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMsg(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := Subject(KindKey, "k1")
	if m.Subject != subj || &m.Data[0] != &x.Bytes()[0] || m.Header.Get(HeaderMsgID) != "key.1" ||
		m.Header.Get(HeaderTTL) != "never" {
		t.Fatalf("NewMsg = %s %q %v", m.Subject, m.Data, m.Header)
	}
	// A scoped event goes on its issuer's subject, the one OnSubject accepts.
	scoped, err := NewEncoded(NewSession("ses.1", "s", t0).ForIssuer("https://idp.example"))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := NewMsg(context.Background(), scoped); err != nil || m.Subject != "revocations.sid.cw.aHR0cHM6Ly9pZHAuZXhhbXBsZQ" || !scoped.Event().OnSubject(m.Subject) {
		t.Fatalf("NewMsg(scoped) subject %q, %v", m.Subject, err)
	}
	if _, err := NewMsg(context.Background(), Encoded{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("NewMsg(zero) = %v, want ErrInvalid", err)
	}
}
