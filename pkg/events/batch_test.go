package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// batchOf encodes evs and returns their batch message's subject and body.
func batchOf(t testing.TB, evs ...Event) (string, []byte) {
	t.Helper()
	xs := make([]Encoded, len(evs))
	for i, e := range evs {
		x, err := NewEncoded(e)
		if err != nil {
			t.Fatal(err)
		}
		xs[i] = x
	}
	m, err := NewBatchMsg(context.Background(), xs)
	if err != nil {
		t.Fatal(err)
	}
	return m.Subject, m.Data
}

// sessions returns n session revocations.
func sessions(n int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = NewSession(fmt.Sprintf("b.%d", i), fmt.Sprintf("s-%d", i), t0)
	}
	return evs
}

// TestBatchMsg: a batch message carries its events one per line, on the
// subject and with the Nats-Msg-Id its body's digest names, and decodes
// back to the same events in order; a single event's message decodes as
// before.
func TestBatchMsg(t *testing.T) {
	var batchable []Event
	for _, e := range validEvents() {
		if Batchable(e) {
			batchable = append(batchable, e)
		}
	}
	xs := make([]Encoded, len(batchable))
	for i, e := range batchable {
		xs[i], _ = NewEncoded(e)
	}
	m, err := NewBatchMsg(context.Background(), xs)
	if err != nil {
		t.Fatal(err)
	}
	if !IsBatchSubject(m.Subject) || m.Header.Get(HeaderMsgID) != "batch."+strings.TrimPrefix(m.Subject, BatchSubjectPrefix) ||
		bytes.Count(m.Data, []byte{'\n'}) != len(xs)-1 || m.Header.Get(HeaderTTL) != "" {
		t.Errorf("batch message %s %v %q", m.Subject, m.Header, m.Data)
	}
	first, rest, err := DecodeMsg(m.Subject, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	got := append([]Event{first}, rest...)
	if len(got) != len(batchable) {
		t.Fatalf("%d events back, want %d", len(got), len(batchable))
	}
	for i := range got {
		if !got[i].Equal(batchable[i]) {
			t.Errorf("event %d: %+v, want %+v", i, got[i], batchable[i])
		}
	}
	// The same events give the same message: a retried publish is one
	// message (Nats-Msg-Id) on one subject.
	again, _ := NewBatchMsg(context.Background(), xs)
	if again.Subject != m.Subject {
		t.Errorf("the same batch on %s and %s", m.Subject, again.Subject)
	}

	for _, e := range validEvents() {
		x, _ := NewEncoded(e)
		subj, _ := e.Subject()
		first, rest, err := DecodeMsg(subj, x.Bytes())
		if err != nil || rest != nil || !first.Equal(e) {
			t.Errorf("single %s: %+v %v %v", e.ID, first, rest, err)
		}
	}
}

// TestBatchMsgRefused: every malformed batch, and a single event off its
// subject, is refused whole with an error wrapping ErrInvalid.
func TestBatchMsgRefused(t *testing.T) {
	subj, body := batchOf(t, sessions(3)...)
	onSubject := func(b []byte) string { return BatchSubjectPrefix + batchName(b) }
	key, _ := NewEncoded(NewKey("k.1", "kid-1", t0))
	ses, _ := NewEncoded(NewSession("s.1", "s-1", t0))
	keySubj, _ := key.ev.Subject()
	full := bytes.Repeat(append(append([]byte{}, ses.Bytes()...), '\n'), MaxBatchEvents+1)
	full = full[:len(full)-1]
	cases := []struct {
		name    string
		subject string
		body    []byte
		want    error
	}{
		{"body changed after naming", subj, append(append([]byte{}, body...), []byte("\n"+string(ses.Bytes()))...), errBatchSubject},
		{"no digest", BatchSubjectPrefix, body, errBatchSubject},
		{"empty", onSubject(nil), nil, errBatchEmpty},
		{"trailing newline", onSubject(append(append([]byte{}, body...), '\n')), append(append([]byte{}, body...), '\n'), errBatchEmpty},
		{"blank line", onSubject(bytes.Replace(body, []byte{'\n'}, []byte("\n\n"), 1)), bytes.Replace(body, []byte{'\n'}, []byte("\n\n"), 1), errBatchEmpty},
		{"a key inside", onSubject(append(append(append([]byte{}, body...), '\n'), key.Bytes()...)), append(append(append([]byte{}, body...), '\n'), key.Bytes()...), ErrInvalid},
		{"a broken line", onSubject(append(append([]byte{}, body...), "\n{\"v\":1"...)), append(append([]byte{}, body...), "\n{\"v\":1"...), ErrMalformed},
		{"too many events", onSubject(full), full, ErrBatchTooLarge},
		{"too large", subj, make([]byte, MaxBatchSize+1), ErrBatchTooLarge},
		{"a single event off its subject", keySubj, ses.Bytes(), ErrWrongSubject},
	}
	for _, c := range cases {
		first, rest, err := DecodeMsg(c.subject, c.body)
		if !errors.Is(err, c.want) || !errors.Is(err, ErrInvalid) || !first.Equal(Event{}) || rest != nil {
			t.Errorf("%s: %+v %d %v, want an error wrapping %v", c.name, first, len(rest), err, c.want)
		}
	}
	// And the producer refuses to build what consumers would refuse.
	for name, xs := range map[string][]Encoded{"none": nil, "a key": {ses, key}, "the zero Encoded": {ses, {}}} {
		if _, err := NewBatchMsg(context.Background(), xs); err == nil {
			t.Errorf("NewBatchMsg of %s: no error", name)
		}
	}
	many := make([]Encoded, MaxBatchEvents+1)
	for i := range many {
		many[i] = ses
	}
	if _, err := NewBatchMsg(context.Background(), many); !errors.Is(err, ErrBatchTooLarge) {
		t.Errorf("NewBatchMsg of %d events: %v", len(many), err)
	}
	if _, err := NewBatchMsg(context.Background(), many[:MaxBatchEvents]); err != nil {
		t.Errorf("NewBatchMsg of %d events: %v", MaxBatchEvents, err)
	}
}

// FuzzDecodeMsg checks that DecodeMsg never panics, refuses with an error
// wrapping ErrInvalid and nothing else returned, and that whatever it
// accepts is valid events a batch message of which decodes to the same.
// Seeds live in testdata/fuzz/FuzzDecodeMsg and are replayed by every
// `go test`.
func FuzzDecodeMsg(f *testing.F) {
	subj, body := batchOf(f, sessions(3)...)
	f.Add(subj, body)
	f.Add(subj, append(body, '\n'))
	f.Add(BatchSubjectPrefix+"x", body)
	sub := validEvents()[0]
	x, _ := NewEncoded(sub)
	s, _ := sub.Subject()
	f.Add(s, x.Bytes())
	f.Add(BatchSubjectPrefix+batchName(nil), []byte(nil))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		first, rest, err := DecodeMsg(subject, data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || !first.Equal(Event{}) || rest != nil {
				t.Fatalf("refused with %v, returned %+v and %d more", err, first, len(rest))
			}
			return
		}
		all := append([]Event{first}, rest...)
		if len(all) > MaxBatchEvents || (!IsBatchSubject(subject) && len(all) != 1) {
			t.Fatalf("%d events from %q", len(all), subject)
		}
		xs := make([]Encoded, len(all))
		for i, e := range all {
			if err := e.Validate(); err != nil {
				t.Fatalf("accepted an invalid event: %v", err)
			}
			if IsBatchSubject(subject) && !Batchable(e) {
				t.Fatalf("accepted a %s event in a batch", e.Kind)
			}
			if xs[i], err = NewEncoded(e); err != nil {
				t.Fatal(err)
			}
		}
		if !IsBatchSubject(subject) {
			return
		}
		m, err := NewBatchMsg(context.Background(), xs)
		if err != nil {
			// Accepted events re-encode in their canonical form, which
			// may be longer than the spelling accepted.
			if errors.Is(err, ErrBatchTooLarge) {
				return
			}
			t.Fatalf("NewBatchMsg of accepted events: %v", err)
		}
		f2, r2, err := DecodeMsg(m.Subject, m.Data)
		if err != nil || len(r2) != len(rest) || !f2.Equal(first) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range rest {
			if !r2[i].Equal(rest[i]) {
				t.Fatalf("round trip of event %d", i+1)
			}
		}
	})
}
