package store

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/revocation"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
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
		if err := e.st.Record(ctx, ev, time.Minute); err != nil {
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
	for _, key := range []string{e.st.jtiKey("jti-1"), e.st.kidKey("kid-1")} {
		raw, err := e.rdb.Get(ctx, key).Bytes()
		if err != nil {
			t.Fatalf("GET %s: %v", key, err)
		}
		if _, err := events.Decode(raw); err != nil {
			t.Fatalf("record %s does not decode: %v", key, err)
		}
	}
	if d := pttl(t, ctx, e.rdb, e.st.kidKey("kid-1")); d != -1 {
		t.Fatalf("key record TTL = %s, want none", d)
	}
}

func TestRecordRefusesInvalidEvent(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	bad := events.NewToken("bad id!", "jti", time.Now().Add(time.Hour), time.Now())
	if err := e.st.Record(ctx, bad, 0); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("Record(invalid) = %v, want events.ErrInvalid", err)
	}
}

func TestRaiseEpochMonotonic(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)
	steps := []struct {
		name string
		now  time.Time
		want time.Time
	}{
		{name: "first is now", now: base, want: base},
		{name: "same now is +1ns", now: base, want: base.Add(time.Nanosecond)},
		{name: "clock went back an hour", now: base.Add(-time.Hour), want: base.Add(2 * time.Nanosecond)},
		{name: "clock 1ns behind the record", now: base.Add(time.Nanosecond), want: base.Add(3 * time.Nanosecond)},
		{name: "clock ahead", now: base.Add(time.Hour), want: base.Add(time.Hour)},
		{name: "1ns after the record", now: base.Add(time.Hour + time.Nanosecond), want: base.Add(time.Hour + time.Nanosecond)},
		{name: "same now again", now: base.Add(time.Hour + time.Nanosecond), want: base.Add(time.Hour + 2*time.Nanosecond)},
	}
	for _, s := range steps { // in order: each step depends on the last
		got, err := e.st.RaiseEpoch(ctx, "alice", s.now)
		if err != nil {
			t.Fatalf("%s: RaiseEpoch: %v", s.name, err)
		}
		if !got.Equal(s.want) {
			t.Fatalf("%s: RaiseEpoch = %s, want %s", s.name, got.Format(time.RFC3339Nano), s.want.Format(time.RFC3339Nano))
		}
		rec, err := e.st.SubjectEpoch(ctx, "alice")
		if err != nil || !rec.Equal(s.want) {
			t.Fatalf("%s: SubjectEpoch = %s, %v; want %s", s.name, rec, err, s.want)
		}
	}
	if d := pttl(t, ctx, e.rdb, e.st.subKey("alice")); d <= 59*time.Minute || d > time.Hour {
		t.Fatalf("epoch TTL = %s, want about the retention (1h)", d)
	}
	if _, err := e.st.RaiseEpoch(ctx, "alice", time.Unix(-1, 0)); err == nil {
		t.Fatal("RaiseEpoch(before 1970): want an error")
	}
}

func TestRecordSubjectMaxMerge(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	epoch := time.Date(2026, 3, 3, 3, 3, 3, 3, time.UTC)
	record := func(id string, at time.Time) {
		t.Helper()
		if err := e.st.Record(ctx, events.NewSubject(id, "carol", at, at), 0); err != nil {
			t.Fatalf("Record(%s): %v", at, err)
		}
	}
	want := func(w time.Time) {
		t.Helper()
		got, err := e.st.SubjectEpoch(ctx, "carol")
		if err != nil || !got.Equal(w) {
			t.Fatalf("SubjectEpoch = %s, %v; want %s", got.Format(time.RFC3339Nano), err, w.Format(time.RFC3339Nano))
		}
	}
	if got, err := e.st.SubjectEpoch(ctx, "carol"); err != nil || !got.IsZero() {
		t.Fatalf("SubjectEpoch before any record = %s, %v; want zero", got, err)
	}
	record("a", epoch)
	want(epoch)
	record("b", epoch.Add(-time.Nanosecond)) // older: no effect
	want(epoch)
	record("c", epoch.Add(time.Nanosecond)) // 1ns newer: raises
	want(epoch.Add(time.Nanosecond))
	// RaiseEpoch continues from the merged record.
	got, err := e.st.RaiseEpoch(ctx, "carol", epoch)
	if err != nil || !got.Equal(epoch.Add(2*time.Nanosecond)) {
		t.Fatalf("RaiseEpoch = %s, %v; want epoch+2ns", got, err)
	}
}

func TestTokenRecordExpiry(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	now := time.Now()
	key := e.st.jtiKey("j")

	// exp + leeway sets the TTL.
	if err := e.st.Record(ctx, events.NewToken("e1", "j", now.Add(time.Hour), now), time.Minute); err != nil {
		t.Fatalf("Record: %v", err)
	}
	if d := pttl(t, ctx, e.rdb, key); d <= time.Hour || d > time.Hour+time.Minute {
		t.Fatalf("TTL = %s, want within (1h, 1h1m]", d)
	}
	// A later expiry extends the record; an earlier one never shortens it.
	if err := e.st.Record(ctx, events.NewToken("e2", "j", now.Add(2*time.Hour), now), time.Minute); err != nil {
		t.Fatalf("Record later: %v", err)
	}
	if err := e.st.Record(ctx, events.NewToken("e3", "j", now.Add(time.Minute), now), 0); err != nil {
		t.Fatalf("Record earlier: %v", err)
	}
	if d := pttl(t, ctx, e.rdb, key); d <= 2*time.Hour {
		t.Fatalf("TTL = %s, want > 2h", d)
	}

	// A short-lived record disappears on its own.
	short := events.NewToken("e4", "short", now.Add(300*time.Millisecond), now)
	if err := e.st.Record(ctx, short, 0); err != nil {
		t.Fatalf("Record short: %v", err)
	}
	if err := e.st.Check(ctx, Query{JTI: "short"}); !errors.Is(err, revocation.ErrTokenRevoked) {
		t.Fatalf("Check before expiry = %v, want ErrTokenRevoked", err)
	}
	eventually.True(t, 5*time.Second, "the token record to expire", func() bool {
		return e.st.Check(ctx, Query{JTI: "short"}) == nil
	})
}

func TestRemember(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	now := time.Now().UTC()
	first := events.NewSession("ev-1", "sid-1", now)
	second := events.NewSession("ev-2", "sid-2", now.Add(time.Second))

	tests := []struct {
		name       string
		key        string
		ev         events.Event
		want       events.Event
		wantStored bool
	}{
		{name: "first call stores", key: "k", ev: first, want: first, wantStored: true},
		{name: "retry returns the first", key: "k", ev: second, want: first},
		{name: "same event again", key: "k", ev: first, want: first},
		{name: "other key stores", key: "k2", ev: second, want: second, wantStored: true},
	}
	for _, tt := range tests { // in order: rows build on each other
		got, stored, err := e.st.Remember(ctx, tt.key, tt.ev, time.Minute)
		if err != nil {
			t.Fatalf("%s: Remember: %v", tt.name, err)
		}
		if stored != tt.wantStored || !got.Equal(tt.want) {
			t.Fatalf("%s: Remember = %+v, %t; want %+v, %t", tt.name, got, stored, tt.want, tt.wantStored)
		}
	}
	if d := pttl(t, ctx, e.rdb, e.st.idemKey("k")); d <= 0 || d > time.Minute {
		t.Fatalf("idempotency TTL = %s, want (0, 1m]", d)
	}
	if _, _, err := e.st.Remember(ctx, "k3", events.Event{}, time.Minute); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("Remember(invalid event) = %v, want events.ErrInvalid", err)
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
		{name: "RaiseEpoch", call: func() error { _, err := st.RaiseEpoch(ctx, "u", time.Now()); return err }},
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
	if err := e.rdb.Set(ctx, e.st.subKey("u"), "not-a-number", 0).Err(); err != nil {
		t.Fatal(err)
	}
	err := e.st.Check(ctx, Query{Sub: "u", IssuedAt: time.Now()})
	if err == nil || errors.Is(err, revocation.ErrSubjectRevoked) {
		t.Fatalf("Check with a corrupt epoch = %v, want a plain error", err)
	}
}
