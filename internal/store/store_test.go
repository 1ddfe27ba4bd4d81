package store

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/revocation"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

func TestNew(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "defaults", cfg: Config{Client: rdb}},
		{name: "no client", cfg: Config{}, wantErr: true},
		{name: "brace in prefix", cfg: Config{Client: rdb, Prefix: "a{b"}, wantErr: true},
		{name: "tiny retention", cfg: Config{Client: rdb, Retention: time.Microsecond}, wantErr: true},
		{name: "negative retention", cfg: Config{Client: rdb, Retention: -time.Hour}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: err = %v, wantErr %t", err, tt.wantErr)
			}
			if err == nil && (st.prefix != "jwtrevoke" || st.retention != 30*24*time.Hour) {
				t.Fatalf("defaults: prefix %q retention %s", st.prefix, st.retention)
			}
		})
	}
}

func TestRecordCheck(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	now := time.Now().UTC()
	epoch := time.Date(2026, 5, 6, 7, 8, 9, 987654321, time.UTC)

	records := []events.Event{
		events.NewToken("e1", "jti-1", now.Add(time.Hour), now),
		events.NewSession("e2", "sid-1", now),
		events.NewSubject("e3", "alice", epoch, epoch),
		events.NewKey("e4", "kid-1", now),
	}
	for _, ev := range records {
		if _, err := e.st.Record(ctx, verifiertest.Encoded(t, ev), time.Minute, nil); err != nil {
			t.Fatalf("Record(%s): %v", ev.Kind, err)
		}
	}

	tests := []struct {
		name string
		q    Query
		want error
	}{
		{name: "revoked jti", q: Query{JTI: "jti-1", Sub: "bob", IssuedAt: now}, want: revocation.ErrTokenRevoked},
		{name: "other jti", q: Query{JTI: "jti-2", Sub: "bob", IssuedAt: now}},
		{name: "revoked sid", q: Query{SID: "sid-1", Sub: "bob", IssuedAt: now}, want: revocation.ErrSessionRevoked},
		{name: "other sid", q: Query{SID: "sid-2", Sub: "bob", IssuedAt: now}},
		{name: "revoked kid", q: Query{KID: "kid-1", Sub: "bob", IssuedAt: now}, want: revocation.ErrKeyRevoked},
		{name: "other kid", q: Query{KID: "kid-2", Sub: "bob", IssuedAt: now}},
		{name: "iat before epoch", q: Query{Sub: "alice", IssuedAt: epoch.Add(-time.Second)}, want: revocation.ErrSubjectRevoked},
		{name: "iat at epoch", q: Query{Sub: "alice", IssuedAt: epoch}, want: revocation.ErrSubjectRevoked},
		{name: "iat 1ns after epoch", q: Query{Sub: "alice", IssuedAt: epoch.Add(time.Nanosecond)}},
		{name: "zero iat under an epoch", q: Query{Sub: "alice"}, want: revocation.ErrSubjectRevoked},
		{name: "other subject", q: Query{Sub: "bob", IssuedAt: epoch.Add(-time.Hour)}},
		{name: "key wins over the rest", q: Query{JTI: "jti-1", SID: "sid-1", Sub: "alice", KID: "kid-1", IssuedAt: epoch}, want: revocation.ErrKeyRevoked},
		{name: "all clear", q: Query{JTI: "x", SID: "y", Sub: "z", KID: "w", IssuedAt: now}},
		{name: "empty query", q: Query{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.st.Check(ctx, tt.q)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}

	// Records are events as written: the token and key records decode.
	for _, key := range []string{e.st.idKey("", "jti", "jti-1"), e.st.idKey("", "kid", "kid-1")} {
		raw, err := e.rdb.Get(ctx, key).Bytes()
		if err != nil {
			t.Fatalf("GET %s: %v", key, err)
		}
		if _, err := events.Decode(raw); err != nil {
			t.Fatalf("record %s does not decode: %v", key, err)
		}
	}
	if d := pttl(t, ctx, e.rdb, e.st.idKey("", "kid", "kid-1")); d != -1 {
		t.Fatalf("key record TTL = %s, want none", d)
	}
}

// TestRecordFirst: Record says whether the thing had no record before, for
// every kind: the revoker then publishes without reading the stream first.
func TestRecordFirst(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	now := time.Now().UTC()
	for _, tt := range []struct{ first, again events.Event }{
		{events.NewToken("t1", "jti-first", now.Add(time.Hour), now), events.NewToken("t2", "jti-first", now.Add(2*time.Hour), now)},
		{events.NewSession("s1", "sid-first", now), events.NewSession("s2", "sid-first", now)},
		{events.NewSubject("u1", "carol", now, now), events.NewSubject("u2", "carol", now.Add(time.Second), now.Add(time.Second))},
		{events.NewKey("k1", "kid-first", now), events.NewKey("k2", "kid-first", now)},
	} {
		rec, err := e.st.Record(ctx, verifiertest.Encoded(t, tt.first), time.Minute, nil)
		if err != nil || !rec.First {
			t.Fatalf("%s: first Record = %+v, %v; want First", tt.first.Kind, rec, err)
		}
		rec, err = e.st.Record(ctx, verifiertest.Encoded(t, tt.again), time.Minute, nil)
		if err != nil || rec.First {
			t.Fatalf("%s: second Record = %+v, %v; want not First", tt.first.Kind, rec, err)
		}
	}
}

// TestRecordRefusesInvalidEvent: an invalid event cannot be encoded, so the
// only invalid thing Record can be given is the zero Encoded.
func TestRecordRefusesInvalidEvent(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	bad := events.NewToken("bad id!", "jti", time.Now().Add(time.Hour), time.Now())
	if _, err := events.NewEncoded(bad); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("NewEncoded(invalid) = %v, want events.ErrInvalid", err)
	}
	if _, err := e.st.Record(ctx, events.Encoded{}, 0, nil); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("Record(zero Encoded) = %v, want events.ErrInvalid", err)
	}
	if _, err := e.st.Delivered(ctx, events.Encoded{}); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("Delivered(zero Encoded) = %v, want events.ErrInvalid", err)
	}
}

func TestNextEpoch(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name          string
		recorded, now time.Time
		want          time.Time
	}{
		{name: "none recorded is now", now: base, want: base},
		{name: "recorded before now is now", recorded: base.Add(-time.Hour), now: base, want: base},
		{name: "recorded at now is +1ns", recorded: base, now: base, want: base.Add(time.Nanosecond)},
		{name: "clock went back an hour", recorded: base, now: base.Add(-time.Hour), want: base.Add(time.Nanosecond)},
		{name: "1ns after the record is now", recorded: base, now: base.Add(time.Nanosecond), want: base.Add(time.Nanosecond)},
	}
	for _, tt := range tests {
		if got := NextEpoch(tt.recorded, tt.now); !got.Equal(tt.want) {
			t.Errorf("%s: NextEpoch = %s, want %s", tt.name, got.Format(time.RFC3339Nano), tt.want.Format(time.RFC3339Nano))
		}
	}
}

func TestRecordSubjectMaxMerge(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	epoch := time.Date(2026, 3, 3, 3, 3, 3, 3, time.UTC)
	record := func(id string, at time.Time) {
		t.Helper()
		if _, err := e.st.Record(ctx, verifiertest.Encoded(t, events.NewSubject(id, "carol", at, at)), 0, nil); err != nil {
			t.Fatalf("Record(%s): %v", at, err)
		}
	}
	want := func(w time.Time) {
		t.Helper()
		got, err := e.st.SubjectEpoch(ctx, "", "carol")
		if err != nil || !got.Equal(w) {
			t.Fatalf("SubjectEpoch = %s, %v; want %s", got.Format(time.RFC3339Nano), err, w.Format(time.RFC3339Nano))
		}
	}
	if got, err := e.st.SubjectEpoch(ctx, "", "carol"); err != nil || !got.IsZero() {
		t.Fatalf("SubjectEpoch before any record = %s, %v; want zero", got, err)
	}
	record("a", epoch)
	want(epoch)
	record("b", epoch.Add(-time.Nanosecond)) // older: no effect
	want(epoch)
	record("c", epoch.Add(time.Nanosecond)) // 1ns newer: raises
	want(epoch.Add(time.Nanosecond))
	if d := pttl(t, ctx, e.rdb, e.st.idKey("", "sub", "carol")); d <= 59*time.Minute || d > time.Hour {
		t.Fatalf("epoch TTL = %s, want about the retention (1h)", d)
	}
}

func TestTokenRecordExpiry(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	now := time.Now()
	key := e.st.idKey("", "jti", "j")

	// exp + leeway sets the TTL.
	if _, err := e.st.Record(ctx, verifiertest.Encoded(t, events.NewToken("e1", "j", now.Add(time.Hour), now)), time.Minute, nil); err != nil {
		t.Fatalf("Record: %v", err)
	}
	if d := pttl(t, ctx, e.rdb, key); d <= time.Hour || d > time.Hour+time.Minute {
		t.Fatalf("TTL = %s, want within (1h, 1h1m]", d)
	}
	// A later expiry extends the record; an earlier one never shortens it.
	if _, err := e.st.Record(ctx, verifiertest.Encoded(t, events.NewToken("e2", "j", now.Add(2*time.Hour), now)), time.Minute, nil); err != nil {
		t.Fatalf("Record later: %v", err)
	}
	if _, err := e.st.Record(ctx, verifiertest.Encoded(t, events.NewToken("e3", "j", now.Add(time.Minute), now)), 0, nil); err != nil {
		t.Fatalf("Record earlier: %v", err)
	}
	if d := pttl(t, ctx, e.rdb, key); d <= 2*time.Hour {
		t.Fatalf("TTL = %s, want > 2h", d)
	}

	// A short-lived record disappears on its own.
	short := events.NewToken("e4", "short", now.Add(300*time.Millisecond), now)
	if _, err := e.st.Record(ctx, verifiertest.Encoded(t, short), 0, nil); err != nil {
		t.Fatalf("Record short: %v", err)
	}
	if err := e.st.Check(ctx, Query{JTI: "short"}); !errors.Is(err, revocation.ErrTokenRevoked) {
		t.Fatalf("Check before expiry = %v, want ErrTokenRevoked", err)
	}
	eventually.True(t, 5*time.Second, "the token record to expire", func() bool {
		return e.st.Check(ctx, Query{JTI: "short"}) == nil
	})
}

func TestRecordIdempotency(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	now := time.Now().UTC()
	first := events.NewSession("ev-1", "sid-1", now)
	second := events.NewSession("ev-2", "sid-2", now.Add(time.Second))
	third := events.NewSession("ev-3", "sid-3", now.Add(time.Second))
	alice := &Idempotency{Caller: "alice", Key: "k", TTL: time.Minute}

	tests := []struct {
		name     string
		idem     *Idempotency
		ev       events.Event
		want     events.Event
		wantHeld bool
	}{
		{name: "first call records", idem: alice, ev: first, want: first},
		{name: "retry returns the first", idem: alice, ev: second, want: first, wantHeld: true},
		{name: "same event again", idem: alice, ev: first, want: first, wantHeld: true},
		{name: "other key records", idem: &Idempotency{Caller: "alice", Key: "k2"}, ev: second, want: second},
		{name: "same key of another caller records", idem: &Idempotency{Caller: "mallory", Key: "k"}, ev: third, want: third},
	}
	for _, tt := range tests { // in order: rows build on each other
		got, err := e.st.Record(ctx, verifiertest.Encoded(t, tt.ev), 0, tt.idem)
		if err != nil {
			t.Fatalf("%s: Record: %v", tt.name, err)
		}
		if got.Held != tt.wantHeld || !got.Event.Event().Equal(tt.want) {
			t.Fatalf("%s: Record = %+v; want %+v, held %t", tt.name, got, tt.want, tt.wantHeld)
		}
	}
	// A held key wrote nothing: sid-2 was recorded by its own key only,
	// and the second row's event never reached the outbox under ev-2 twice.
	if err := e.st.Check(ctx, Query{SID: "sid-2"}); !errors.Is(err, revocation.ErrSessionRevoked) {
		t.Fatalf("Check(sid-2) = %v, want ErrSessionRevoked", err)
	}
	if d := pttl(t, ctx, e.rdb, e.st.idemKey("alice", "k")); d <= 0 || d > time.Minute {
		t.Fatalf("idempotency TTL = %s, want (0, 1m]", d)
	}
	if d := pttl(t, ctx, e.rdb, e.st.idemKey("alice", "k2")); d <= time.Minute || d > DefaultIdempotencyTTL {
		t.Fatalf("default idempotency TTL = %s, want (1m, %s]", d, DefaultIdempotencyTTL)
	}
	if _, err := e.st.Record(ctx, events.Encoded{}, 0, alice); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("Record(zero Encoded) = %v, want events.ErrInvalid", err)
	}
	if _, err := e.st.Record(ctx, verifiertest.Encoded(t, first), 0, &Idempotency{Key: "k"}); err == nil {
		t.Fatal("Record with an idempotency key and no caller: want an error")
	}
}

// TestRedisDown: with Redis gone, every call returns promptly an error that
// is none of the sentinels (callers answer 503, not 401).
func TestRedisDown(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	rdb := redis.NewClient(&redis.Options{
		Addr:         e.srv.Addr(),
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
		MaxRetries:   -1,
		// go-redis dials 5 times, 100ms apart, by default: one try here.
		DialerRetries: 1,
	})
	t.Cleanup(func() { _ = rdb.Close() })
	st := newStore(t, rdb, "t")
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping while up: %v", err)
	}
	e.srv.Stop()

	sentinels := []error{
		revocation.ErrTokenRevoked, revocation.ErrSessionRevoked, revocation.ErrSubjectRevoked,
		revocation.ErrKeyRevoked, ErrNotFound, ErrSessionRevoked, ErrReuse, ErrInvalidToken,
	}
	calls := []struct {
		name string
		call func() error
	}{
		{name: "Ping", call: func() error { return st.Ping(ctx) }},
		{name: "Check", call: func() error {
			return st.Check(ctx, Query{JTI: "j", SID: "s", Sub: "u", KID: "k", IssuedAt: time.Now()})
		}},
		{name: "Rotate", call: func() error {
			_, err := st.Rotate(ctx, "s", h("a"), h("b"), t0, time.Second, time.Hour)
			return err
		}},
		{name: "GetSession", call: func() error { _, err := st.GetSession(ctx, "s"); return err }},
		{name: "Record", call: func() error {
			_, err := st.Record(ctx, verifiertest.Encoded(t, events.NewSession("rev.down", "s", time.Now())), 0, nil)
			return err
		}},
		{name: "ClaimOutbox", call: func() error { _, err := st.ClaimOutbox(ctx, time.Now(), time.Second, 1); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			err := c.call()
			if err == nil {
				t.Fatal("got nil error with Redis down")
			}
			for _, s := range sentinels {
				if errors.Is(err, s) {
					t.Fatalf("error %v wraps sentinel %v; want a plain error", err, s)
				}
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %s, want under 1s", d)
			}
		})
	}

	// Back up (empty): it answers again.
	e.srv.Restart(t)
	eventually.True(t, 5*time.Second, "Check to answer after restart", func() bool {
		return st.Check(ctx, Query{JTI: "j", Sub: "u", IssuedAt: time.Now()}) == nil
	})
}

func TestSubjectEpochCorruptValue(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	if err := e.rdb.Set(ctx, e.st.idKey("", "sub", "u"), "not-a-number", 0).Err(); err != nil {
		t.Fatal(err)
	}
	err := e.st.Check(ctx, Query{Sub: "u", IssuedAt: time.Now()})
	if err == nil || errors.Is(err, revocation.ErrSubjectRevoked) {
		t.Fatalf("Check with a corrupt epoch = %v, want a plain error", err)
	}
}
