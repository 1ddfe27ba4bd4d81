package store

import (
	"errors"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/revocation"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestMigrateLegacy: records written in the layout before the outbox are
// found by Check after the migration, with their TTLs, merged with records
// of the current layout without weakening them; old keys are gone.
func TestMigrateLegacy(t *testing.T) {
	ctx := testCtx(t)
	e := newEnv(t)
	now := time.Now().UTC()
	tok, err := events.Encode(events.NewToken("rev.old1", "j-old", now.Add(time.Hour), now))
	if err != nil {
		t.Fatal(err)
	}
	key, err := events.Encode(events.NewKey("rev.old2", "k-old", now))
	if err != nil {
		t.Fatal(err)
	}
	older := now.Add(-time.Minute)
	newer := now
	old := map[string]struct {
		v   string
		ttl time.Duration
	}{
		"t:rev:jti:j-old":  {string(tok), time.Hour},
		"t:rev:kid:k-old":  {string(key), 0},
		"t:rev:sub:alice":  {nanosOf(newer), time.Hour},
		"t:rev:sub:bob":    {nanosOf(older), time.Hour},
		"t:idem:some-key":  {string(tok), time.Hour},
		"t:rev:weird":      {"x", time.Hour}, // not a record: left alone
		"other:rev:jti:zz": {string(tok), time.Hour},
	}
	for k, v := range old {
		if err := e.rdb.Set(ctx, k, v.v, v.ttl).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// bob already has a newer epoch in the current layout: it must win.
	if _, err := e.st.Record(ctx, verifiertest.Encoded(t, events.NewSubject("rev.new", "bob", newer, newer)), 0, nil); err != nil {
		t.Fatal(err)
	}
	n, err := e.st.MigrateLegacy(ctx)
	if err != nil || n != 3 {
		t.Fatalf("MigrateLegacy = %d, %v; want 3 records moved", n, err)
	}
	checks := []struct {
		name string
		q    Query
		want error
	}{
		{"token", Query{JTI: "j-old"}, revocation.ErrTokenRevoked},
		{"key", Query{KID: "k-old"}, revocation.ErrKeyRevoked},
		{"alice's epoch", Query{Sub: "alice", IssuedAt: newer}, revocation.ErrSubjectRevoked},
		{"bob keeps the newer epoch", Query{Sub: "bob", IssuedAt: older.Add(time.Second)}, revocation.ErrSubjectRevoked},
	}
	for _, c := range checks {
		if err := e.st.Check(ctx, c.q); !errors.Is(err, c.want) {
			t.Errorf("%s: Check = %v, want %v", c.name, err, c.want)
		}
	}
	if d := pttl(t, ctx, e.rdb, e.st.idKey("", "jti", "j-old")); d <= 59*time.Minute || d > time.Hour {
		t.Errorf("migrated token TTL = %s, want about 1h", d)
	}
	if d := pttl(t, ctx, e.rdb, e.st.idKey("", "kid", "k-old")); d != -1 {
		t.Errorf("migrated key TTL = %s, want none", d)
	}
	for _, k := range []string{"t:rev:jti:j-old", "t:rev:kid:k-old", "t:rev:sub:alice", "t:rev:sub:bob", "t:idem:some-key"} {
		if n, _ := e.rdb.Exists(ctx, k).Result(); n != 0 {
			t.Errorf("old key %s still there", k)
		}
	}
	for _, k := range []string{"t:rev:weird", "other:rev:jti:zz"} {
		if n, _ := e.rdb.Exists(ctx, k).Result(); n != 1 {
			t.Errorf("unrelated key %s removed", k)
		}
	}
	// Again: nothing left to move.
	if n, err := e.st.MigrateLegacy(ctx); err != nil || n != 0 {
		t.Fatalf("second MigrateLegacy = %d, %v", n, err)
	}
}

func nanosOf(t time.Time) string {
	s, _ := nanos("t", t)
	return s
}
