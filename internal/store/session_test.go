package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/revocation"
)

const (
	grace = 10 * time.Second
	ttl   = time.Hour
)

func TestCreateGetSession(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	want := createSession(t, ctx, e.st, "s1", ttl)
	got, err := e.st.GetSession(ctx, "s1")
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if sessionString(got) != sessionString(want) || !got.CreatedAt.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(ttl)) {
		t.Fatalf("GetSession = %s, want %s", sessionString(got), sessionString(want))
	}
	if d := pttl(t, ctx, e.rdb, e.st.sessionKeys("s1")[0]); d <= 59*time.Minute {
		t.Fatalf("session TTL = %s, want about the retention (1h)", d)
	}

	// A second create of the same id changes nothing.
	dup := Session{ID: "s1", Subject: "mallory", CreatedAt: t0, ExpiresAt: t0.Add(ttl)}
	if err := e.st.CreateSession(ctx, dup, h("other")); err == nil {
		t.Fatal("CreateSession of an existing id: want an error")
	}
	if got, _ := e.st.GetSession(ctx, "s1"); got.Subject != want.Subject {
		t.Fatalf("existing session overwritten: %s", sessionString(got))
	}
	if _, err := e.st.GetSession(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetSession(unknown) = %v, want ErrNotFound", err)
	}
	if err := e.st.CreateSession(ctx, Session{ID: "s2", Subject: "u", ExpiresAt: t0}, h("x")); err == nil {
		t.Fatal("CreateSession without CreatedAt: want an error")
	}
}

// rotateCase is one Rotate scenario on a fresh session "s" whose first token
// is h("s/1"), created at t0 and valid for ttl.
type rotateCase struct {
	name      string
	prep      func(t *testing.T, ctx context.Context, st *Store) // before the call
	presented []byte
	at        time.Time
	want      error
	wantRetry bool
	wantGen   int64
	// after checks the state left behind.
	after func(t *testing.T, ctx context.Context, st *Store)
}

// rotate rotates "s" from the token named from to the one named to, at.
func rotate(t *testing.T, ctx context.Context, st *Store, from, to string, at time.Time) Rotation {
	t.Helper()
	r, err := st.Rotate(ctx, "s", h(from), h(to), at, grace, ttl)
	if err != nil {
		t.Fatalf("Rotate %s -> %s: %v", from, to, err)
	}
	return r
}

// wantState checks the session's generation and revoked flag.
func wantState(gen int64, revoked bool) func(t *testing.T, ctx context.Context, st *Store) {
	return func(t *testing.T, ctx context.Context, st *Store) {
		t.Helper()
		got, err := st.GetSession(ctx, "s")
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		if got.Generation != gen || got.Revoked != revoked {
			t.Fatalf("session = %s, want generation %d revoked %t", sessionString(got), gen, revoked)
		}
	}
}

func (c rotateCase) run(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	createSession(t, ctx, e.st, "s", ttl)
	if c.prep != nil {
		c.prep(t, ctx, e.st)
	}
	r, err := e.st.Rotate(ctx, "s", c.presented, h("next"), c.at, grace, ttl)
	if c.want != nil {
		if !errors.Is(err, c.want) {
			t.Fatalf("Rotate = %v, want %v", err, c.want)
		}
	} else {
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		if r.Retry != c.wantRetry || r.Session.Generation != c.wantGen || r.Session.ID != "s" || r.Session.Subject != "user-s" {
			t.Fatalf("Rotate = retry %t %s; want retry %t generation %d", r.Retry, sessionString(r.Session), c.wantRetry, c.wantGen)
		}
	}
	if c.after != nil {
		c.after(t, ctx, e.st)
	}
}

func TestRotate(t *testing.T) {
	tests := []rotateCase{
		{
			name: "current token rotates", presented: h("s/1"), at: t0.Add(time.Minute), wantGen: 2,
			after: func(t *testing.T, ctx context.Context, st *Store) {
				wantState(2, false)(t, ctx, st)
				got, _ := st.GetSession(ctx, "s")
				if !got.ExpiresAt.Equal(t0.Add(time.Minute + ttl)) {
					t.Fatalf("expiry = %s, want rotation time + ttl", got.ExpiresAt)
				}
				// The successor rotates in turn.
				if r := rotate(t, ctx, st, "next", "third", t0.Add(2*time.Minute)); r.Session.Generation != 3 || r.Retry {
					t.Fatalf("second rotation: %+v", r)
				}
			},
		},
		{
			name: "previous token inside grace is a retry",
			prep: func(t *testing.T, ctx context.Context, st *Store) {
				rotate(t, ctx, st, "s/1", "s/2", t0.Add(time.Minute))
			},
			presented: h("s/1"), at: t0.Add(time.Minute + grace - time.Nanosecond), wantRetry: true, wantGen: 2,
			after: func(t *testing.T, ctx context.Context, st *Store) {
				wantState(2, false)(t, ctx, st)
				got, _ := st.GetSession(ctx, "s")
				if !got.ExpiresAt.Equal(t0.Add(time.Minute + ttl)) {
					t.Fatalf("retry changed the expiry: %s", got.ExpiresAt)
				}
				// The successor handed out by the first rotation still works.
				rotate(t, ctx, st, "s/2", "s/3", t0.Add(2*time.Minute))
			},
		},
		{
			name: "previous token at the end of grace is reuse",
			prep: func(t *testing.T, ctx context.Context, st *Store) {
				rotate(t, ctx, st, "s/1", "s/2", t0.Add(time.Minute))
			},
			presented: h("s/1"), at: t0.Add(time.Minute + grace), want: ErrReuse,
			after: func(t *testing.T, ctx context.Context, st *Store) {
				wantState(2, true)(t, ctx, st)
				// The current token is dead too, and Check reports the sid.
				if _, err := st.Rotate(ctx, "s", h("s/2"), h("s/3"), t0.Add(2*time.Minute), grace, ttl); !errors.Is(err, ErrSessionRevoked) {
					t.Fatalf("Rotate with the current token after reuse = %v, want ErrSessionRevoked", err)
				}
				if err := st.Check(ctx, Query{SID: "s"}); !errors.Is(err, revocation.ErrSessionRevoked) {
					t.Fatalf("Check(sid) after reuse = %v, want revocation.ErrSessionRevoked", err)
				}
			},
		},
		{
			name: "older generation inside grace is reuse",
			prep: func(t *testing.T, ctx context.Context, st *Store) {
				rotate(t, ctx, st, "s/1", "s/2", t0.Add(time.Minute))
				rotate(t, ctx, st, "s/2", "s/3", t0.Add(time.Minute+time.Second))
			},
			presented: h("s/1"), at: t0.Add(time.Minute + 2*time.Second), want: ErrReuse,
			after: wantState(3, true),
		},
		{
			name: "unknown token changes nothing", presented: h("forged"), at: t0.Add(time.Minute), want: ErrInvalidToken,
			after: func(t *testing.T, ctx context.Context, st *Store) {
				wantState(1, false)(t, ctx, st)
				rotate(t, ctx, st, "s/1", "s/2", t0.Add(time.Minute))
			},
		},
		{
			name: "revoked session",
			prep: func(t *testing.T, ctx context.Context, st *Store) {
				if err := st.RevokeSession(ctx, "s"); err != nil {
					t.Fatalf("RevokeSession: %v", err)
				}
			},
			presented: h("s/1"), at: t0.Add(time.Minute), want: ErrSessionRevoked,
			after: wantState(1, true),
		},
		{
			name: "expired at exactly ExpiresAt", presented: h("s/1"), at: t0.Add(ttl), want: ErrNotFound,
			after: wantState(1, false),
		},
		{
			name: "1ns before expiry still rotates", presented: h("s/1"), at: t0.Add(ttl - time.Nanosecond), wantGen: 2,
		},
		{
			name: "missing session",
			prep: func(t *testing.T, ctx context.Context, st *Store) {
				if _, err := st.Rotate(ctx, "other", h("s/1"), h("x"), t0, grace, ttl); !errors.Is(err, ErrNotFound) {
					t.Fatalf("Rotate(other) = %v, want ErrNotFound", err)
				}
			},
			presented: h("s/1"), at: t0, wantGen: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// TestRevokeSession: revocation is idempotent, works for unknown sids (a
// flag-only record) and keeps the record for the retention.
func TestRevokeSession(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	for range 2 {
		if err := e.st.RevokeSession(ctx, "ghost"); err != nil {
			t.Fatalf("RevokeSession: %v", err)
		}
	}
	if _, err := e.st.GetSession(ctx, "ghost"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetSession(flag only) = %v, want ErrNotFound", err)
	}
	if err := e.st.Check(ctx, Query{SID: "ghost"}); !errors.Is(err, revocation.ErrSessionRevoked) {
		t.Fatalf("Check = %v, want revocation.ErrSessionRevoked", err)
	}
	if _, err := e.st.Rotate(ctx, "ghost", h("a"), h("b"), t0, grace, ttl); !errors.Is(err, ErrSessionRevoked) {
		t.Fatalf("Rotate = %v, want ErrSessionRevoked", err)
	}
	if d := pttl(t, ctx, e.rdb, e.st.sessionKeys("ghost")[0]); d <= 59*time.Minute || d > time.Hour {
		t.Fatalf("flag TTL = %s, want about the retention (1h)", d)
	}
	if err := e.st.CreateSession(ctx, Session{ID: "ghost", Subject: "u", CreatedAt: t0, ExpiresAt: t0.Add(ttl)}, h("g")); err == nil {
		t.Fatal("CreateSession over a revoked flag: want an error")
	}
}

// TestRotateRace: many requests present the same current token at once
// (a client retrying, several tabs): exactly one rotates, every other one
// is a retry that sees the winner's generation; nobody trips reuse.
func TestRotateRace(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	createSession(t, ctx, e.st, "s", ttl)
	n := 100
	if testing.Short() {
		n = 20
	}
	type result struct {
		r   Rotation
		err error
	}
	results := make(chan result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := e.st.Rotate(ctx, "s", h("s/1"), h(fmt.Sprintf("succ-%d", i)), t0.Add(time.Minute), grace, ttl)
			results <- result{r, err}
		})
	}
	close(start)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("rotations did not finish before the test deadline")
	}
	close(results)

	winners, retries := 0, 0
	for res := range results {
		if res.err != nil {
			t.Fatalf("Rotate: %v", res.err)
		}
		if res.r.Session.Generation != 2 {
			t.Fatalf("generation %d, want 2 (retry %t)", res.r.Session.Generation, res.r.Retry)
		}
		if res.r.Retry {
			retries++
		} else {
			winners++
		}
	}
	if winners != 1 || retries != n-1 {
		t.Fatalf("%d rotated, %d retried; want 1 and %d", winners, retries, n-1)
	}
	wantState(2, false)(t, ctx, e.st)
}
