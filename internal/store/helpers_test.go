package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtrevoke/jwtrevoke/internal/redistest"
)

// t0 is the fixed clock of session tests; nanoseconds on purpose.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)

// testCtx bounds a test.
func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// env is one test's Redis and Store.
type env struct {
	srv *redistest.Server
	rdb redis.UniversalClient
	st  *Store
}

// newEnv starts a redis-server and a Store on it.
func newEnv(tb testing.TB) env {
	tb.Helper()
	srv := redistest.Run(tb)
	rdb := srv.Client(tb)
	return env{srv: srv, rdb: rdb, st: newStore(tb, rdb, "t")}
}

func newStore(tb testing.TB, rdb redis.UniversalClient, prefix string) *Store {
	tb.Helper()
	st, err := New(Config{Client: rdb, Prefix: prefix, Retention: time.Hour})
	if err != nil {
		tb.Fatalf("store.New: %v", err)
	}
	return st
}

// h is the hash of refresh token name.
func h(name string) []byte {
	sum := sha256.Sum256([]byte(name))
	return sum[:]
}

// createSession stores a session of sid whose first token is h(sid+"/1"),
// valid until t0 + ttl.
func createSession(tb testing.TB, ctx context.Context, st *Store, sid string, ttl time.Duration) Session {
	tb.Helper()
	sess := Session{
		ID:        sid,
		Subject:   "user-" + sid,
		Claims:    map[string]any{"role": "admin", "n": 3.5},
		CreatedAt: t0,
		ExpiresAt: t0.Add(ttl),
	}
	if err := st.CreateSession(ctx, sess, h(sid+"/1")); err != nil {
		tb.Fatalf("CreateSession(%s): %v", sid, err)
	}
	sess.Generation = 1
	return sess
}

func pttl(tb testing.TB, ctx context.Context, rdb redis.UniversalClient, key string) time.Duration {
	tb.Helper()
	d, err := rdb.PTTL(ctx, key).Result()
	if err != nil {
		tb.Fatalf("PTTL %s: %v", key, err)
	}
	return d
}

func sessionString(s Session) string {
	return fmt.Sprintf("{id %s sub %s gen %d created %s exp %s revoked %t claims %v}",
		s.ID, s.Subject, s.Generation, s.CreatedAt.UTC().Format(time.RFC3339Nano),
		s.ExpiresAt.UTC().Format(time.RFC3339Nano), s.Revoked, s.Claims)
}
