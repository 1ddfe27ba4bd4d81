package store

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// BenchmarkRotate: sequential rotations of one session against a real
// redis-server over loopback (one Lua script per rotation, one round trip).
func BenchmarkRotate(b *testing.B) {
	ctx := testCtx(b)
	e := newEnv(b)
	createSession(b, ctx, e.st, "s", time.Hour)
	cur := h("s/1")
	now := t0
	var buf [8]byte
	i := uint64(0)
	for b.Loop() {
		i++
		binary.BigEndian.PutUint64(buf[:], i)
		next := sha256.Sum256(buf[:])
		now = now.Add(time.Millisecond)
		r, err := e.st.Rotate(ctx, "s", cur, next[:], now, time.Second, time.Hour)
		if err != nil || r.Retry {
			b.Fatalf("Rotate: %v (retry %t)", err, r.Retry)
		}
		cur = next[:]
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rotations/s")
}

// BenchmarkCheck: a Check of a token that is not revoked, so every lookup
// (kid, jti, sid, subject epoch) is made: one pipelined round trip.
func BenchmarkCheck(b *testing.B) {
	ctx := testCtx(b)
	e := newEnv(b)
	if _, err := e.st.Record(ctx, verifiertest.Encoded(b, events.NewSubject("rev.bench", "alice", t0, t0)), 0, nil); err != nil {
		b.Fatal(err)
	}
	q := Query{JTI: "jti", SID: "sid", Sub: "alice", KID: "kid", IssuedAt: t0.Add(time.Second)}
	for b.Loop() {
		if err := e.st.Check(ctx, q); err != nil {
			b.Fatalf("Check: %v", err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}
