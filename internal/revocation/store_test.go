package revocation

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unique"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// t0 is the fixed "now" of most tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	lifetime = 15 * time.Minute
	leeway   = 30 * time.Second
)

// clock is an adjustable Config.Now.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newStore returns a store on a fixed clock at t0 (unless cfg sets Now),
// closed when the test ends.
func newStore(tb testing.TB, cfg Config) *Store {
	tb.Helper()
	if cfg.MaxTokenLifetime == 0 {
		cfg.MaxTokenLifetime = lifetime
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = leeway
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0 }
	}
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

func mustApply(tb testing.TB, s *Store, evs ...events.Event) {
	tb.Helper()
	for _, e := range evs {
		if _, err := s.Apply(e); err != nil {
			tb.Fatalf("Apply(%s %s): %v", e.Kind, e.Value(), err)
		}
	}
}

func mustSync(tb testing.TB, s *Store) {
	tb.Helper()
	if err := s.Sync(); err != nil {
		tb.Fatalf("Sync: %v", err)
	}
}

func withReason(e events.Event, r string) events.Event { e.Reason = r; return e }

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "no capacity", cfg: Config{MaxTokenLifetime: time.Minute}},
		{name: "negative capacity", cfg: Config{Capacity: -1, MaxTokenLifetime: time.Minute}},
		{name: "no lifetime", cfg: Config{Capacity: 10}},
		{name: "negative leeway", cfg: Config{Capacity: 10, MaxTokenLifetime: time.Minute, Leeway: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("New: got %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestCheckEachKind(t *testing.T) {
	s := newStore(t, Config{Capacity: 100})
	mustApply(t, s,
		events.NewToken("e1", "jti-1", t0.Add(10*time.Minute), t0),
		withReason(events.NewSession("e2", "sid-1", t0), "logout"),
		events.NewSubject("e3", "alice", t0, t0),
		withReason(events.NewKey("e4", "kid-1", t0), "compromised"),
	)
	mustSync(t, s)

	before, after := t0.Add(-time.Minute), t0.Add(time.Minute)
	tests := []struct {
		name     string
		tok      Token
		want     error
		wantText string
	}{
		{name: "revoked jti", tok: Token{JTI: "jti-1", Sub: "bob", IssuedAt: before}, want: ErrTokenRevoked, wantText: "verifier: token revoked"},
		{name: "revoked session", tok: Token{JTI: "x", SID: "sid-1", IssuedAt: before}, want: ErrSessionRevoked, wantText: "verifier: session revoked (reason: logout)"},
		{name: "logged-out subject", tok: Token{Sub: "alice", IssuedAt: before}, want: ErrSubjectRevoked},
		{name: "revoked key", tok: Token{KID: "kid-1", JTI: "jti-1"}, want: ErrKeyRevoked, wantText: "verifier: signing key revoked (reason: compromised)"},
		{name: "key checked first", tok: Token{KID: "kid-1", JTI: "jti-1", SID: "sid-1", Sub: "alice", IssuedAt: before}, want: ErrKeyRevoked},
		{name: "jti before session", tok: Token{JTI: "jti-1", SID: "sid-1", Sub: "alice", IssuedAt: before}, want: ErrTokenRevoked},
		{name: "unrelated token", tok: Token{JTI: "jti-2", SID: "sid-2", Sub: "bob", KID: "kid-2", IssuedAt: before}},
		{name: "subject logged in again", tok: Token{JTI: "jti-3", SID: "sid-3", Sub: "alice", KID: "kid-2", IssuedAt: after}},
		{name: "same id, other kind", tok: Token{JTI: "sid-1", SID: "jti-1", Sub: "kid-1", KID: "alice", IssuedAt: before}},
		{name: "empty token", tok: Token{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Check(tt.tok)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check: got %v, want %v", err, tt.want)
			}
			if tt.wantText != "" && err.Error() != tt.wantText {
				t.Fatalf("Check text: got %q, want %q", err.Error(), tt.wantText)
			}
			// Exactly one sentinel.
			n := 0
			for _, sen := range []error{ErrTokenRevoked, ErrSessionRevoked, ErrSubjectRevoked, ErrKeyRevoked, ErrOverCapacity, ErrClosed} {
				if errors.Is(err, sen) {
					n++
				}
			}
			if err != nil && n != 1 {
				t.Fatalf("Check: %v wraps %d sentinels", err, n)
			}
		})
	}
}

func TestApplyVisibleBeforeSync(t *testing.T) {
	s := newStore(t, Config{Capacity: 100})
	for i := range 50 {
		mustApply(t, s, events.NewToken("e", "j"+strconv.Itoa(i), t0.Add(time.Minute), t0))
		if err := s.Check(Token{JTI: "j" + strconv.Itoa(i)}); !errors.Is(err, ErrTokenRevoked) {
			t.Fatalf("Check right after Apply %d: %v", i, err)
		}
	}
}

func TestApplyRejectsIncompleteEvents(t *testing.T) {
	s := newStore(t, Config{Capacity: 10})
	tests := []struct {
		name string
		e    events.Event
		want error
	}{
		{name: "unknown kind", e: events.Event{Kind: "tenant", Sub: "x"}, want: events.ErrUnknownKind},
		{name: "no jti", e: events.NewToken("e", "", t0.Add(time.Minute), t0), want: events.ErrMissingField},
		{name: "no exp", e: events.Event{Kind: events.KindToken, JTI: "j"}, want: events.ErrMissingField},
		{name: "no epoch", e: events.Event{Kind: events.KindSubject, Sub: "s"}, want: events.ErrMissingField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Apply(tt.e); !errors.Is(err, tt.want) {
				t.Fatalf("Apply: got %v, want %v", err, tt.want)
			}
		})
	}
}

// corpus returns events with overlaps: several holds per jti, several epochs
// per subject, several reasons per session.
func corpus() []events.Event {
	var evs []events.Event
	for i := range 200 {
		id := "e" + strconv.Itoa(i)
		evs = append(evs,
			withReason(events.NewToken(id, "jti-"+strconv.Itoa(i%70), t0.Add(time.Duration(i)*time.Second), t0), []string{"", "a", "b"}[i%3]),
			withReason(events.NewSession(id, "sid-"+strconv.Itoa(i%50), t0.Add(-time.Duration(i%7)*time.Minute)), []string{"logout", "refresh_reuse", ""}[i%3]),
			withReason(events.NewSubject(id, "sub-"+strconv.Itoa(i%40), t0.Add(-time.Duration(i%11)*time.Second), t0), strconv.Itoa(i%5)),
		)
		if i%20 == 0 {
			evs = append(evs, withReason(events.NewKey(id, "kid-"+strconv.Itoa(i%60), t0), strconv.Itoa(i%3)))
		}
		if i%4 == 0 {
			sc := events.NewScope(id, "tenant", "t-"+strconv.Itoa(i%30), t0.Add(-time.Duration(i%13)*time.Second), t0)
			if i%8 == 0 {
				sc = sc.ForIssuer("https://a.example")
			}
			evs = append(evs, withReason(sc, strconv.Itoa(i%4)))
		}
	}
	return evs
}

// probes covers every id in corpus and more, with issue instants around
// every epoch.
func probes() []Token {
	var ts []Token
	for i := range 80 {
		for _, d := range []time.Duration{-20 * time.Second, -11 * time.Second, -10 * time.Second, -time.Nanosecond, 0, time.Nanosecond, time.Second} {
			n := strconv.Itoa(i)
			ts = append(ts,
				Token{JTI: "jti-" + n},
				Token{SID: "sid-" + n},
				Token{Sub: "sub-" + n, IssuedAt: t0.Add(d)},
				Token{KID: "kid-" + n},
				Token{Sub: "nobody", Iss: "https://a.example", IssuedAt: t0.Add(d), Scopes: []events.ScopeClaim{{Claim: "tenant", Value: "t-" + n}}},
				Token{Sub: "nobody", Iss: "https://b.example", IssuedAt: t0.Add(d), Scopes: []events.ScopeClaim{{Claim: "tenant", Value: "t-" + n}}},
			)
		}
	}
	return ts
}

func TestMergeIsOrderAndDuplicateIndependent(t *testing.T) {
	evs := corpus()
	shuffled := func(seed uint64) []events.Event {
		out := append(append([]events.Event(nil), evs...), evs[:len(evs)/2]...) // duplicates
		r := rand.New(rand.NewPCG(seed, seed))
		r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}
	a, b := newStore(t, Config{Capacity: 1000}), newStore(t, Config{Capacity: 1000})
	mustApply(t, a, shuffled(1)...)
	// b: another order, each event applied concurrently from 8 goroutines.
	bs := shuffled(2)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < len(bs); i += 8 {
				if _, err := b.Apply(bs[i]); err != nil {
					t.Errorf("Apply: %v", err)
				}
			}
		})
	}
	wg.Wait()
	mustSync(t, a)
	mustSync(t, b)

	revokedN := 0
	for _, p := range probes() {
		ea, eb := a.Check(p), b.Check(p)
		if fmt.Sprint(ea) != fmt.Sprint(eb) {
			t.Fatalf("Check(%+v): %v vs %v", p, ea, eb)
		}
		if ea != nil {
			revokedN++
		}
	}
	if revokedN == 0 {
		t.Fatal("probe set revoked nothing: test is vacuous")
	}
	if a.Stats().Held != b.Stats().Held {
		t.Fatalf("Held: %d vs %d", a.Stats().Held, b.Stats().Held)
	}
}

func TestMergeNeverWeakens(t *testing.T) {
	s := newStore(t, Config{Capacity: 100})
	newer, older := t0, t0.Add(-time.Minute)
	if changed, err := s.Apply(events.NewSubject("e1", "alice", newer, t0)); err != nil || !changed {
		t.Fatalf("Apply newer epoch: changed=%v err=%v", changed, err)
	}
	if changed, err := s.Apply(events.NewSubject("e2", "alice", older, t0)); err != nil || changed {
		t.Fatalf("Apply older epoch: changed=%v err=%v, want unchanged", changed, err)
	}
	if changed, err := s.Apply(events.NewSubject("e1", "alice", newer, t0)); err != nil || changed {
		t.Fatalf("Apply replay: changed=%v err=%v, want unchanged", changed, err)
	}
	// A shorter hold for a revoked jti does not shorten it.
	mustApply(t, s, events.NewToken("e3", "j", t0.Add(time.Hour), t0))
	if changed, _ := s.Apply(events.NewToken("e4", "j", t0.Add(time.Minute), t0)); changed {
		t.Fatal("shorter hold changed the state")
	}
	mustSync(t, s)

	tests := []struct {
		name string
		tok  Token
		want error
	}{
		{name: "between older and newer epoch", tok: Token{Sub: "alice", IssuedAt: older.Add(time.Second)}, want: ErrSubjectRevoked},
		{name: "jti still revoked", tok: Token{JTI: "j"}, want: ErrTokenRevoked},
	}
	for _, tt := range tests {
		if err := s.Check(tt.tok); !errors.Is(err, tt.want) {
			t.Fatalf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	if e := s.entryOf(kindToken, "j"); e == nil || s.holdOf(e) != t0.Add(time.Hour+leeway).UnixNano() {
		t.Fatal("jti hold shortened")
	}
}

func TestPastHoldIgnored(t *testing.T) {
	s := newStore(t, Config{Capacity: 100})
	tests := []struct {
		name string
		e    events.Event
		tok  Token
	}{
		{name: "expired token", e: events.NewToken("e1", "old", t0.Add(-leeway-time.Nanosecond), t0.Add(-time.Hour)), tok: Token{JTI: "old"}},
		{name: "old session", e: events.NewSession("e2", "old", t0.Add(-lifetime-leeway-events.MaxFutureSkew-time.Nanosecond)), tok: Token{SID: "old"}},
		{name: "old epoch", e: events.NewSubject("e3", "old", t0.Add(-lifetime-leeway-time.Nanosecond), t0.Add(-time.Hour)), tok: Token{Sub: "old", IssuedAt: t0.Add(-2 * time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed, err := s.Apply(tt.e)
			if err != nil || changed {
				t.Fatalf("Apply: changed=%v err=%v, want ignored", changed, err)
			}
			if err := s.Check(tt.tok); err != nil {
				t.Fatalf("Check: %v", err)
			}
		})
	}
	mustSync(t, s)
	if h := s.Stats().Held; h != 0 {
		t.Fatalf("Held = %d, want 0", h)
	}
	// A hold that ends exactly now still matters: the token is accepted at
	// exp+leeway itself.
	if changed, err := s.Apply(events.NewToken("e4", "edge", t0.Add(-leeway), t0.Add(-time.Hour))); err != nil || !changed {
		t.Fatalf("Apply hold == now: changed=%v err=%v", changed, err)
	}
	if err := s.Check(Token{JTI: "edge"}); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("Check(edge): %v", err)
	}
}

func TestSubjectEpochBoundary(t *testing.T) {
	s := newStore(t, Config{Capacity: 10})
	epoch := t0.Add(-123456789 * time.Nanosecond)
	mustApply(t, s, events.NewSubject("e1", "alice", epoch, t0))
	mustSync(t, s)
	tests := []struct {
		name string
		iat  time.Time
		want error
	}{
		{name: "1ms before", iat: epoch.Add(-time.Millisecond), want: ErrSubjectRevoked},
		{name: "1ns before", iat: epoch.Add(-time.Nanosecond), want: ErrSubjectRevoked},
		{name: "at epoch", iat: epoch, want: ErrSubjectRevoked},
		{name: "1ns after", iat: epoch.Add(time.Nanosecond)},
		{name: "1ms after", iat: epoch.Add(time.Millisecond)},
		{name: "same second, later", iat: epoch.Truncate(time.Second).Add(999 * time.Millisecond)},
		{name: "zero iat", iat: time.Time{}, want: ErrSubjectRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Check(Token{Sub: "alice", IssuedAt: tt.iat})
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check(iat=%s): got %v, want %v", tt.iat.Format(time.RFC3339Nano), err, tt.want)
			}
		})
	}
}

func TestEntriesExpireByThemselves(t *testing.T) {
	// The injected clock runs at wall speed from an arbitrary instant;
	// ristretto's TTL runs on the wall clock, so holds are short and real.
	base, start := t0, time.Now()
	now := func() time.Time { return base.Add(time.Since(start)) }
	s := newStore(t, Config{Capacity: 100, MaxTokenLifetime: time.Second, Leeway: 1, Now: now})

	mustApply(t, s,
		events.NewToken("e1", "short", now().Add(time.Second), now()),
		events.NewSubject("e2", "alice", now(), now()),
		events.NewKey("e3", "kid", now()),
	)
	mustSync(t, s)
	if h := s.Stats().Held; h != 3 {
		t.Fatalf("Held = %d, want 3", h)
	}
	// TTL = remaining hold + 1 s margin; ristretto sweeps in 5 s buckets.
	eventually.True(t, 20*time.Second, "held back to 1", func() bool { return s.Stats().Held == 1 })
	if err := s.Check(Token{JTI: "short"}); err != nil {
		t.Fatalf("expired jti: %v", err)
	}
	if err := s.Check(Token{KID: "kid"}); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("key revocation expired: %v", err)
	}
	st := s.Stats()
	if st.OverCapacity || st.Evicted != 0 || st.Rejected != 0 || st.Repaired != 0 {
		t.Fatalf("expiry counted as loss: %+v", st)
	}
}

func TestOverCapacityFailsClosed(t *testing.T) {
	clk := newClock(t0)
	const capacity = 8
	s := newStore(t, Config{Capacity: capacity, Now: clk.Now})
	for i := range capacity {
		mustApply(t, s, events.NewToken("e", "j"+strconv.Itoa(i), t0.Add(time.Minute), t0))
	}
	mustSync(t, s)
	if err := s.Check(Token{JTI: "unrelated"}); err != nil {
		t.Fatalf("at capacity: %v", err)
	}
	// One more live revocation than capacity: refused, and from now on
	// nothing is accepted.
	overHold := t0.Add(10*time.Minute + leeway)
	_, err := s.Apply(events.NewToken("e", "over", t0.Add(10*time.Minute), t0))
	if !errors.Is(err, ErrOverCapacity) {
		t.Fatalf("Apply beyond capacity: %v", err)
	}
	if err := s.Sync(); !errors.Is(err, ErrOverCapacity) {
		t.Fatalf("Sync: %v", err)
	}
	for _, tok := range []Token{{JTI: "over"}, {JTI: "j0"}, {JTI: "unrelated"}, {}} {
		if err := s.Check(tok); !errors.Is(err, ErrOverCapacity) {
			t.Fatalf("Check(%+v) = %v, want ErrOverCapacity", tok, err)
		}
	}
	st := s.Stats()
	if !st.OverCapacity || !st.FailClosedUntil.Equal(overHold) || st.Rejected != 1 || st.Held != capacity {
		t.Fatalf("Stats = %+v", st)
	}
	// Once the refused revocation's hold has passed, the store decides again.
	clk.Advance(overHold.Sub(t0))
	if err := s.Check(Token{JTI: "unrelated"}); err != nil {
		t.Fatalf("after the refused hold passed: %v", err)
	}
	if err := s.Check(Token{JTI: "j0"}); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("held revocation after recovery: %v", err)
	}
}

func TestLostKeyFailsClosedForever(t *testing.T) {
	clk := newClock(t0)
	s := newStore(t, Config{Capacity: 1, Now: clk.Now})
	mustApply(t, s, events.NewKey("e", "k1", t0))
	if _, err := s.Apply(events.NewKey("e", "k2", t0)); !errors.Is(err, ErrOverCapacity) {
		t.Fatalf("Apply: %v", err)
	}
	clk.Advance(100 * 365 * 24 * time.Hour)
	if err := s.Check(Token{KID: "k3"}); !errors.Is(err, ErrOverCapacity) {
		t.Fatalf("Check: %v", err)
	}
	if st := s.Stats(); !st.OverCapacity || !st.FailClosedUntil.IsZero() {
		t.Fatalf("Stats = %+v", st)
	}
}

// TestCacheLossDetected plays the ristretto callbacks that report a loss and
// the case of a write that vanished before Sync.
func TestCacheLossDetected(t *testing.T) {
	t.Run("live victim evicted", func(t *testing.T) {
		s := newStore(t, Config{Capacity: 10})
		mustApply(t, s, events.NewSession("e", "sid", t0))
		mustSync(t, s)
		h, e := s.hash(kindSession, "", "sid"), s.entryOf(kindSession, "sid")
		s.cache.Del(h) // as ristretto does before it calls OnEvict
		s.cache.Wait()
		s.onEvict(&ristretto.Item[*entry]{Key: h, Value: e})
		if err := s.Check(Token{JTI: "other"}); !errors.Is(err, ErrOverCapacity) {
			t.Fatalf("Check: %v", err)
		}
		if st := s.Stats(); st.Evicted != 1 || !st.OverCapacity || st.Held != 0 {
			t.Fatalf("Stats = %+v", st)
		}
		if err := s.Sync(); !errors.Is(err, ErrOverCapacity) {
			t.Fatalf("Sync: %v", err)
		}
	})
	t.Run("live entry refused", func(t *testing.T) {
		s := newStore(t, Config{Capacity: 10})
		e := &entry{sum: s.sum(kindToken, "", "j"), bound: t0.Add(time.Hour).UnixNano()}
		s.onReject(&ristretto.Item[*entry]{Key: s.hash(kindToken, "", "j"), Value: e})
		if err := s.Check(Token{}); !errors.Is(err, ErrOverCapacity) {
			t.Fatalf("Check: %v", err)
		}
		if st := s.Stats(); st.Rejected != 1 || !st.FailClosedUntil.Equal(t0.Add(time.Hour+leeway)) {
			t.Fatalf("Stats = %+v", st)
		}
	})
	t.Run("refused pending write fails closed for its hold", func(t *testing.T) {
		s := newStore(t, Config{Capacity: 10})
		mustApply(t, s, events.NewToken("e", "j", t0.Add(time.Hour), t0))
		h, e := s.hash(kindToken, "", "j"), s.entryOf(kindToken, "j")
		s.cache.Wait()
		s.cache.Del(h) // the policy refused it: never stored
		s.cache.Wait()
		s.onReject(&ristretto.Item[*entry]{Key: h, Value: e})
		if err := s.Sync(); !errors.Is(err, ErrOverCapacity) {
			t.Fatalf("Sync: %v", err)
		}
		if st := s.Stats(); st.Rejected != 1 || st.Held != 0 || st.Pending != 0 || !st.FailClosedUntil.Equal(t0.Add(time.Hour+leeway)) {
			t.Fatalf("Stats = %+v", st)
		}
	})
	t.Run("victim whose hold passed is no loss", func(t *testing.T) {
		clk := newClock(t0)
		s := newStore(t, Config{Capacity: 10, Now: clk.Now})
		mustApply(t, s, events.NewToken("e", "j", t0, t0.Add(-time.Minute)))
		mustSync(t, s)
		h, e := s.hash(kindToken, "", "j"), s.entryOf(kindToken, "j")
		passHolds(s, clk, time.Hour)
		s.cache.Del(h)
		s.cache.Wait()
		s.onEvict(&ristretto.Item[*entry]{Key: h, Value: e})
		if err := s.Check(Token{}); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if st := s.Stats(); st.Evicted != 0 || st.Held != 0 {
			t.Fatalf("Stats = %+v", st)
		}
	})
	t.Run("vanished write repaired", func(t *testing.T) {
		s := newStore(t, Config{Capacity: 10})
		mustApply(t, s, events.NewToken("e", "j", t0.Add(time.Hour), t0))
		s.cache.Wait()
		s.cache.Del(s.hash(kindToken, "", "j")) // behind the store's back
		s.cache.Wait()
		if err := s.Check(Token{JTI: "j"}); !errors.Is(err, ErrTokenRevoked) {
			t.Fatalf("Check before Sync: %v", err)
		}
		mustSync(t, s)
		if _, ok := s.cache.Get(s.hash(kindToken, "", "j")); !ok {
			t.Fatal("not repaired into the cache")
		}
		if st := s.Stats(); st.Repaired != 1 || st.Pending != 0 {
			t.Fatalf("Stats = %+v", st)
		}
	})
}

// passHolds moves both clocks the sweep reads forward by d.
func passHolds(s *Store, clk *clock, d time.Duration) {
	s.mu.Lock()
	s.anchorNow += int64(d)
	s.mu.Unlock()
	clk.Advance(d)
}

// entryOf returns the entry Check would find for (k, id), or nil.
func (s *Store) entryOf(k kind, id string) *entry {
	return s.find(s.hash(k, "", id), s.sum(k, "", id))
}

// TestSweepDeletesOnlyPassedHolds: an entry leaves once its hold has passed,
// not when an earlier, shorter hold of it would have; an entry of the same
// bucket that was not extended leaves.
func TestSweepDeletesOnlyPassedHolds(t *testing.T) {
	clk := newClock(t0)
	s := newStore(t, Config{Capacity: 10, Now: clk.Now})
	mustApply(t, s,
		events.NewToken("e1", "short", t0.Add(time.Minute), t0),
		events.NewToken("e2", "extended", t0.Add(time.Minute), t0),
		events.NewToken("e3", "extended", t0.Add(time.Hour), t0),
		events.NewSubject("e4", "alice", t0.Add(-lifetime), t0),
		events.NewKey("e5", "kid", t0),
	)
	passHolds(s, clk, 10*time.Minute) // before Sync: pending writes are confirmed first
	s.sweep()
	tests := []struct {
		name string
		tok  Token
		want error
	}{
		{name: "short hold passed", tok: Token{JTI: "short"}},
		{name: "extended hold still held", tok: Token{JTI: "extended"}, want: ErrTokenRevoked},
		{name: "old epoch passed", tok: Token{Sub: "alice"}},
		{name: "key held for ever", tok: Token{KID: "kid"}, want: ErrKeyRevoked},
	}
	for _, tt := range tests {
		if err := s.Check(tt.tok); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Fatalf("%s: Check = %v, want %v", tt.name, err, tt.want)
		}
	}
	if st := s.Stats(); st.Held != 2 || st.Pending != 0 || st.OverCapacity {
		t.Fatalf("Stats = %+v", st)
	}
	// The freed capacity is usable again.
	mustApply(t, s, events.NewToken("e6", "new", clk.Now().Add(time.Minute), clk.Now()))
	mustSync(t, s)
	passHolds(s, clk, 2*time.Hour)
	s.sweep()
	if st := s.Stats(); st.Held != 1 {
		t.Fatalf("Held after every hold passed = %d, want 1 (the key)", st.Held)
	}
}

// TestHoldOfFollowsEvents: the hold the store derives from an entry's bound
// is the events' HoldUntil.
func TestHoldOfFollowsEvents(t *testing.T) {
	s := newStore(t, Config{Capacity: 10})
	for _, e := range []events.Event{
		events.NewToken("e", "j", t0.Add(time.Hour), t0),
		events.NewSession("e", "s", t0),
		events.NewSubject("e", "u", t0.Add(-time.Second), t0),
		events.NewKey("e", "k", t0),
	} {
		mustApply(t, s, e)
		k, id, _ := identify(e)
		want := int64(forever)
		if h := e.HoldUntil(lifetime, leeway); !h.IsZero() {
			want = h.UnixNano()
		}
		if got := s.holdOf(s.entryOf(k, id)); got != want {
			t.Fatalf("%s: holdOf = %d, want %d", e.Kind, got, want)
		}
	}
}

// TestKeyCollisionsKeptApart: two ids sharing a 64-bit key but not the sum
// are two entries; each is found, merged, counted and expired on its own.
func TestKeyCollisionsKeptApart(t *testing.T) {
	clk := newClock(t0)
	s := newStore(t, Config{Capacity: 10, Now: clk.Now})
	mustApply(t, s, events.NewToken("e", "a", t0.Add(time.Minute), t0))
	mustSync(t, s)
	h := s.hash(kindToken, "", "a")
	sumB := s.sum(kindToken, "", "b")
	collide := func(exp time.Time, reason string) {
		t.Helper()
		e := &entry{sum: sumB, bound: exp.UnixNano()}
		if reason != "" {
			e.reason = unique.Make(reason)
		}
		s.mu.Lock()
		_, err := s.applyLocked(h, e)
		s.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	collide(t0.Add(time.Hour), "")
	collide(t0.Add(time.Hour), "logout") // merges into the overflow entry
	if e := s.find(h, sumB); e == nil || e.reasonText() != "logout" {
		t.Fatalf("colliding id: %+v", e)
	}
	if e := s.find(h, s.sum(kindToken, "", "c")); e != nil {
		t.Fatal("collision matched a third id")
	}
	if err := s.Check(Token{JTI: "a"}); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("Check(a): %v", err)
	}
	if st := s.Stats(); st.Held != 2 {
		t.Fatalf("Held = %d, want 2", st.Held)
	}
	passHolds(s, clk, 10*time.Minute) // a's hold passes, b's does not
	s.sweep()
	if err := s.Check(Token{JTI: "a"}); err != nil {
		t.Fatalf("Check(a) after its hold: %v", err)
	}
	if e := s.find(h, sumB); e == nil {
		t.Fatal("colliding id lost with the other's expiry")
	}
	passHolds(s, clk, time.Hour)
	s.sweep()
	if st := s.Stats(); st.Held != 0 || s.overflowN.Load() != 0 {
		t.Fatalf("Stats = %+v, overflow %d", st, s.overflowN.Load())
	}
}

func TestConcurrentSameSubject(t *testing.T) {
	s := newStore(t, Config{Capacity: 10})
	const n = 2000
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := g; i < n; i += 64 {
				if _, err := s.Apply(events.NewSubject("e", "alice", t0.Add(-time.Duration(i)*time.Millisecond), t0)); err != nil {
					t.Errorf("Apply: %v", err)
				}
			}
		})
	}
	wg.Wait()
	mustSync(t, s)
	if err := s.Check(Token{Sub: "alice", IssuedAt: t0}); !errors.Is(err, ErrSubjectRevoked) {
		t.Fatalf("latest epoch lost: %v", err)
	}
	if err := s.Check(Token{Sub: "alice", IssuedAt: t0.Add(time.Nanosecond)}); err != nil {
		t.Fatalf("after latest epoch: %v", err)
	}
	if h := s.Stats().Held; h != 1 {
		t.Fatalf("Held = %d, want 1", h)
	}
}

func TestMillionRevocationsFrom64Goroutines(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	s := newStore(t, Config{Capacity: n})
	start := time.Now()
	var wg sync.WaitGroup
	const workers = 64
	for g := range workers {
		wg.Go(func() {
			for i := g; i < n; i += workers {
				e := events.NewToken("e", "jti-"+strconv.Itoa(i), t0.Add(10*time.Minute), t0)
				if _, err := s.Apply(e); err != nil {
					t.Errorf("Apply %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	applied := time.Since(start)
	mustSync(t, s)
	synced := time.Since(start)
	// After Sync nothing is pending: every entry is answered by the cache.
	if p := s.Stats().Pending; p != 0 {
		t.Fatalf("Pending after Sync = %d", p)
	}
	for i := range n {
		if err := s.Check(Token{JTI: "jti-" + strconv.Itoa(i)}); !errors.Is(err, ErrTokenRevoked) {
			t.Fatalf("jti-%d: %v", i, err)
		}
	}
	st := s.Stats()
	if st.Held != n || st.OverCapacity || st.Evicted != 0 || st.Rejected != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	t.Logf("%d revocations: applied in %s, synced at %s, all checked at %s; stats %+v",
		n, applied, synced, time.Since(start), st)
}

// TestIssuerScoped: an event scoped to an issuer restricts only that
// issuer's tokens; an unscoped one every issuer's; a subject's largest
// epoch among the two decides.
func TestIssuerScoped(t *testing.T) {
	const a, b = "https://a.example", "https://b.example"
	s := newStore(t, Config{Capacity: 100})
	mustApply(t, s,
		events.NewSession("e1", "sid-1", t0).ForIssuer(a),
		events.NewToken("e2", "jti-1", t0.Add(time.Hour), t0).ForIssuer(a),
		events.NewKey("e3", "kid-1", t0).ForIssuer(b),
		events.NewSubject("e4", "alice", t0, t0),
		withReason(events.NewSubject("e5", "alice", t0.Add(time.Minute), t0.Add(time.Minute)).ForIssuer(a), "provider_logout"),
		events.NewSession("e6", "sid-2", t0),
	)
	mustSync(t, s)
	between, later := t0.Add(30*time.Second), t0.Add(2*time.Minute)
	tests := []struct {
		name string
		tok  Token
		want error
	}{
		{"session of its issuer", Token{SID: "sid-1", Iss: a, IssuedAt: later}, ErrSessionRevoked},
		{"same sid, other issuer", Token{SID: "sid-1", Iss: b, IssuedAt: later}, nil},
		{"same sid, token without iss", Token{SID: "sid-1", IssuedAt: later}, nil},
		{"token of its issuer", Token{JTI: "jti-1", Iss: a, IssuedAt: later}, ErrTokenRevoked},
		{"same jti, other issuer", Token{JTI: "jti-1", Iss: b, IssuedAt: later}, nil},
		{"key of its issuer", Token{KID: "kid-1", Iss: b, IssuedAt: later}, ErrKeyRevoked},
		{"same kid, other issuer", Token{KID: "kid-1", Iss: a, IssuedAt: later}, nil},
		{"unscoped session, any issuer", Token{SID: "sid-2", Iss: b, IssuedAt: later}, ErrSessionRevoked},
		{"subject: issuer's later epoch", Token{Sub: "alice", Iss: a, IssuedAt: between}, ErrSubjectRevoked},
		{"subject: only the unscoped epoch for another issuer", Token{Sub: "alice", Iss: b, IssuedAt: between}, nil},
		{"subject: before both", Token{Sub: "alice", Iss: b, IssuedAt: t0}, ErrSubjectRevoked},
		{"subject: after both", Token{Sub: "alice", Iss: a, IssuedAt: later}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Check(tt.tok); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
	if err := s.Check(Token{Sub: "alice", Iss: a, IssuedAt: between}); err == nil || err.Error() != "verifier: subject logged out (reason: provider_logout)" {
		t.Fatalf("the later epoch's reason: %v", err)
	}
	if st := s.Stats(); st.Held != 6 {
		t.Fatalf("held %d entries, want 6 (a scoped and an unscoped subject are two)", st.Held)
	}
}

func TestCheckAllocatesNothingOnMiss(t *testing.T) {
	s := newStore(t, Config{Capacity: 10_003})
	for i := range 10_000 {
		mustApply(t, s, events.NewToken("e", "jti-"+strconv.Itoa(i), t0.Add(time.Hour), t0))
	}
	// Scoped entries of every kind a token is checked for, so the scoped
	// look-ups run too.
	mustApply(t, s, events.NewToken("e", "j", t0.Add(time.Hour), t0).ForIssuer("https://idp"),
		events.NewSubject("e", "alice", t0, t0).ForIssuer("https://idp"))
	mustSync(t, s)
	tok := Token{JTI: "not-revoked", SID: "sid", Sub: "bob", KID: "kid", Iss: "https://idp", IssuedAt: t0}
	allocs := testing.AllocsPerRun(10_000, func() {
		if err := s.Check(tok); err != nil {
			t.Fatal(err)
		}
	})
	if raceEnabled {
		// sync.Pool (ristretto's read buffer) drops items under -race.
		t.Logf("under -race: %v allocs per miss (not asserted)", allocs)
		return
	}
	if allocs != 0 {
		t.Fatalf("Check allocates %v per miss", allocs)
	}
	// Same with writes still pending.
	mustApply(t, s, events.NewSession("e", "other", t0))
	allocs = testing.AllocsPerRun(10_000, func() { _ = s.Check(tok) })
	if allocs != 0 {
		t.Fatalf("Check allocates %v per miss with pending writes", allocs)
	}
}

func TestClosedFailsClosed(t *testing.T) {
	s := newStore(t, Config{Capacity: 10})
	s.Close()
	s.Close()
	if err := s.Check(Token{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Check: %v", err)
	}
	if _, err := s.Apply(events.NewKey("e", "k", t0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply: %v", err)
	}
	if err := s.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync: %v", err)
	}
}

// TestApplyCheckSyncConcurrently: while writers apply and a goroutine keeps
// calling Sync, each write is enforced the moment its Apply returns, and
// unrelated tokens keep passing.
func TestApplyCheckSyncConcurrently(t *testing.T) {
	const writers, per = 8, 5000
	s := newStore(t, Config{Capacity: writers * per})
	done := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := s.Sync(); err != nil {
				t.Errorf("Sync: %v", err)
				return
			}
		}
	})
	bg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if err := s.Check(Token{JTI: "never-" + strconv.Itoa(i), Sub: "nobody", IssuedAt: t0}); err != nil {
				t.Errorf("unrelated token: %v", err)
				return
			}
		}
	})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				id := fmt.Sprintf("w%d-%d", w, i)
				var e events.Event
				var tok Token
				var want error
				switch i % 3 {
				case 0:
					e, tok, want = events.NewToken("e", id, t0.Add(time.Hour), t0), Token{JTI: id}, ErrTokenRevoked
				case 1:
					e, tok, want = events.NewSession("e", id, t0), Token{SID: id}, ErrSessionRevoked
				default:
					e, tok, want = events.NewSubject("e", id, t0, t0), Token{Sub: id, IssuedAt: t0}, ErrSubjectRevoked
				}
				if _, err := s.Apply(e); err != nil {
					t.Errorf("Apply: %v", err)
					return
				}
				if err := s.Check(tok); !errors.Is(err, want) {
					t.Errorf("Check(%s) right after Apply: %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	bg.Wait()
	mustSync(t, s)
	if st := s.Stats(); st.Held != writers*per || st.Pending != 0 || st.OverCapacity {
		t.Fatalf("Stats = %+v", st)
	}
}

// TestFilterRebuildLosesNothing: extending holds over and over makes the
// filter rebuild many times while checkers watch every revoked id; none may
// ever pass, and unrelated tokens keep passing.
func TestFilterRebuildLosesNothing(t *testing.T) {
	const ids, rounds = 64, 40
	s := newStore(t, Config{Capacity: ids})
	for i := range ids {
		mustApply(t, s, events.NewToken("e", "j"+strconv.Itoa(i), t0.Add(time.Hour), t0))
	}
	done := make(chan struct{})
	var bg sync.WaitGroup
	// Sync confirms writes, so most entries are found through the cache
	// rather than the pending maps when the filter is rebuilt.
	bg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := s.Sync(); err != nil {
				t.Errorf("Sync: %v", err)
				return
			}
		}
	})
	for range 2 {
		bg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				id := "j" + strconv.Itoa(n%ids)
				if err := s.Check(Token{JTI: id}); !errors.Is(err, ErrTokenRevoked) {
					t.Errorf("Check(%s) during rebuilds: %v", id, err)
					return
				}
				if err := s.Check(Token{JTI: "x" + id}); err != nil {
					t.Errorf("unrelated token: %v", err)
					return
				}
			}
		})
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for r := 1; r <= rounds; r++ {
				for i := w; i < ids; i += 4 {
					// A later exp: a longer hold, so a new Set (and filter add).
					e := events.NewToken("e", "j"+strconv.Itoa(i), t0.Add(time.Hour+time.Duration(r)*time.Second), t0)
					if changed, err := s.Apply(e); err != nil || !changed {
						t.Errorf("Apply: changed=%v err=%v", changed, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(done)
	bg.Wait()
	mustSync(t, s)
	if n := s.rebuilds.Load(); n < 10 {
		t.Fatalf("filter rebuilt %d times, want many", n)
	}
	// With nothing pending, a rebuild must find everything in the cache.
	s.rebuildFilter()
	for i := range ids {
		if err := s.Check(Token{JTI: "j" + strconv.Itoa(i)}); !errors.Is(err, ErrTokenRevoked) {
			t.Fatalf("after rebuilds: j%d: %v", i, err)
		}
	}
	if st := s.Stats(); st.Held != ids || st.OverCapacity {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestFilter(t *testing.T) {
	f := newFilter(10_000)
	key := func(i int) uint64 { return uint64(i) * 0x9E3779B97F4A7C15 }
	for i := range 10_000 {
		f.add(key(i))
	}
	for i := range 10_000 {
		if !f.mayContain(key(i)) {
			t.Fatalf("false negative for %d", i)
		}
	}
	// fpRate probes keys never added.
	fpRate := func() float64 {
		const probes = 100_000
		fp := 0
		for i := range uint64(probes) {
			if f.mayContain(i*0xC2B2AE3D27D4EB4F + 12345) {
				fp++
			}
		}
		return float64(fp) / probes
	}
	if rate := fpRate(); rate > 0.01 {
		t.Fatalf("false-positive rate %.4f at 32 bits per key or more", rate)
	}
	// Full (the store rebuilds it past this): 16 bits per key.
	for i := 10_000; i < int(2*f.keys); i++ {
		f.add(key(i))
	}
	if f.full() {
		t.Fatal("full before 2*keys additions")
	}
	if rate := fpRate(); rate > 0.005 {
		t.Fatalf("false-positive rate %.4f at 16 bits per key", rate)
	}
}

// TestFilterFollowsHeld: the Bloom filter is sized by the entries held, not
// by the capacity: a store of capacity 1M holding 10k entries spends about
// 64 KiB on it, not 4 MiB, still finds every entry after growing, and gives
// the memory back once a burst has expired.
func TestFilterFollowsHeld(t *testing.T) {
	const n = 10_000
	clk := newClock(t0)
	s := newStore(t, Config{Capacity: 1_000_000, Now: clk.Now})
	mustApply(t, s, events.NewKey("k", "kid", t0))
	for i := range n {
		mustApply(t, s, events.NewToken("e", "j"+strconv.Itoa(i), t0.Add(time.Minute), t0))
	}
	mustSync(t, s)
	bytes := func() int { return len(s.filter.Load().blocks) * 32 }
	if b := bytes(); b > 16*(n+1) || b < 4*n {
		t.Fatalf("filter of %d bytes for %d held, want 4 to 16 bytes per entry", b, n+1)
	}
	for i := range n {
		if err := s.Check(Token{JTI: "j" + strconv.Itoa(i)}); !errors.Is(err, ErrTokenRevoked) {
			t.Fatalf("j%d after the filter grew: %v", i, err)
		}
	}
	passHolds(s, clk, time.Hour)
	s.sweep()
	if b := bytes(); b != 32*minFilterKeys/8 {
		t.Fatalf("filter of %d bytes once only the key is held, want %d", b, 32*minFilterKeys/8)
	}
	if err := s.Check(Token{KID: "kid"}); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("key revocation after the filter shrank: %v", err)
	}
	if err := s.Check(Token{JTI: "j1"}); err != nil {
		t.Fatalf("expired jti: %v", err)
	}
}

// TestEpochScopes: a scope entry refuses the tokens whose claim has its
// value, issued up to its epoch; an issuer epoch every token of that
// issuer; a scope scoped to an issuer that issuer's tokens only. The
// largest epoch among the subject's and the token's scopes decides, once,
// and names its own reason.
func TestEpochScopes(t *testing.T) {
	const a, b = "https://a.example", "https://b.example"
	s := newStore(t, Config{Capacity: 100})
	mustApply(t, s,
		events.NewScope("e1", "client_id", "app-1", t0, t0),
		events.NewIssuerEpoch("e2", b, t0, t0),
		events.NewScope("e3", "tenant", "t-1", t0, t0).ForIssuer(a),
		events.NewSubject("e4", "alice", t0.Add(time.Minute), t0.Add(time.Minute)),
		withReason(events.NewScope("e5", "tenant", "t-2", t0.Add(2*time.Minute), t0.Add(2*time.Minute)), "tenant_offboarded"),
	)
	mustSync(t, s)
	before, after := t0.Add(-time.Second), t0.Add(time.Second)
	scopes := func(kv ...string) []events.ScopeClaim {
		var out []events.ScopeClaim
		for i := 0; i < len(kv); i += 2 {
			out = append(out, events.ScopeClaim{Claim: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name string
		tok  Token
		want error
	}{
		{"its client, issued before", Token{Sub: "bob", Iss: a, IssuedAt: before, Scopes: scopes("client_id", "app-1")}, ErrScopeRevoked},
		{"its client, issued at the epoch", Token{Sub: "bob", Iss: a, IssuedAt: t0, Scopes: scopes("client_id", "app-1")}, ErrScopeRevoked},
		{"its client, issued after", Token{Sub: "bob", Iss: a, IssuedAt: after, Scopes: scopes("client_id", "app-1")}, nil},
		{"another client", Token{Sub: "bob", Iss: a, IssuedAt: before, Scopes: scopes("client_id", "app-2")}, nil},
		{"the value under another claim", Token{Sub: "bob", Iss: a, IssuedAt: before, Scopes: scopes("azp", "app-1")}, nil},
		{"an issuer's epoch", Token{Sub: "bob", Iss: b, IssuedAt: before}, ErrScopeRevoked},
		{"an issuer's epoch, later token", Token{Sub: "bob", Iss: b, IssuedAt: after}, nil},
		{"the tenant of its issuer", Token{Sub: "bob", Iss: a, IssuedAt: before, Scopes: scopes("tenant", "t-1")}, ErrScopeRevoked},
		{"the same tenant at another issuer", Token{Sub: "bob", Iss: "https://c.example", IssuedAt: before, Scopes: scopes("tenant", "t-1")}, nil},
		{"subject's epoch is the largest", Token{Sub: "alice", Iss: a, IssuedAt: after, Scopes: scopes("client_id", "app-1")}, ErrSubjectRevoked},
		{"a scope's epoch is the largest", Token{Sub: "alice", Iss: a, IssuedAt: t0.Add(90 * time.Second), Scopes: scopes("tenant", "t-2")}, ErrScopeRevoked},
		{"after every epoch", Token{Sub: "alice", Iss: a, IssuedAt: t0.Add(3 * time.Minute), Scopes: scopes("client_id", "app-1", "tenant", "t-2")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Check(tt.tok); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
	if err := s.Check(Token{Sub: "x", Iss: a, IssuedAt: t0, Scopes: scopes("tenant", "t-2")}); err == nil ||
		err.Error() != "verifier: scope logged out (reason: tenant_offboarded)" {
		t.Fatalf("the scope's reason: %v", err)
	}
	// A token the scopes do not restrict costs no allocation.
	miss := Token{Sub: "carol", JTI: "j", SID: "s", Iss: a, IssuedAt: after, Scopes: scopes("client_id", "app-9", "tenant", "t-9")}
	if n := testing.AllocsPerRun(100, func() { _ = s.Check(miss) }); n != 0 {
		t.Fatalf("Check of a miss with scope entries held: %v allocations", n)
	}
}

// TestCheckAgreesWithRules: the memory refuses exactly the tokens that
// some held event restricts by pkg/events' rule (events.Event.Restricts),
// for every kind, scoped or not, epoch scopes included.
func TestCheckAgreesWithRules(t *testing.T) {
	evs := corpus()
	s := newStore(t, Config{Capacity: 1000})
	mustApply(t, s, evs...)
	mustSync(t, s)
	n := 0
	for _, p := range probes() {
		var want error
		for _, e := range evs {
			if want = e.Restricts(p); want != nil {
				break
			}
		}
		got := s.Check(p)
		if (got == nil) != (want == nil) {
			t.Fatalf("Check(%+v) = %v; the rules say %v", p, got, want)
		}
		if got != nil {
			n++
		}
	}
	if n == 0 {
		t.Fatal("nothing refused: the test is vacuous")
	}
}
