package revocation

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// forever is the hold (and the wall-clock deadline) of a restriction that
// never expires: a revoked signing key.
const forever = math.MaxInt64

// kind is the kind of restriction a record holds; it also picks the hash
// seed, so equal ids of different kinds never share an entry.
type kind uint8

const (
	kindKey kind = iota
	kindToken
	kindSession
	kindSubject
	numKinds
)

// state is the merged restriction of one record. It is immutable once
// published: a merge builds a new state and swaps the pointer, so Check reads
// a consistent snapshot with one atomic load.
type state struct {
	// hold is until when the restriction matters, as UnixNano on the store's
	// configured clock; forever for a key.
	hold int64
	// bound is the [events.Event.Bound] of the event that decided the
	// merged state, as UnixNano (0 for a key): for a subject, its epoch.
	bound int64
	// reason is the reason of that event.
	reason string
}

// rank is s's rank in a merge.
func (s *state) rank() events.Rank {
	return events.Rank{Bound: time.Unix(0, s.bound), Reason: s.reason}
}

// record is one revoked id. Records whose (kind, id) hash to the same 64-bit
// value are chained behind the first one, the head, which is the value stored
// in ristretto under that hash; a lookup walks the chain and compares kind and
// id, so a hash collision can neither hide a revocation nor make one apply to
// the wrong id.
//
// kind and id never change. st and next are written only under the stripe
// lock of the record's hash and read without a lock. The head-only fields
// (deadline, counted, lost) are described where they are declared.
type record struct {
	id   string
	kind kind
	st   atomic.Pointer[state]
	next atomic.Pointer[record]

	// deadline (head only) is the wall-clock UnixNano until which ristretto
	// must keep this entry: the latest hold of the chain plus a margin,
	// translated to the wall clock; forever for no TTL.
	deadline atomic.Int64
	// counted (head only) is true while the entry is counted in Store.held.
	// Whoever flips it false (a ristretto callback saying the entry left)
	// decrements held, so every removal is counted exactly once.
	counted atomic.Bool
	// lost (head only) is set when ristretto refused or evicted the entry
	// while it was still live; the store then fails closed for it.
	lost atomic.Bool
}

func newRecord(k kind, id string, s *state) *record {
	r := &record{id: id, kind: k}
	r.st.Store(s)
	return r
}

// find returns the record of (k, id) in the chain that starts at r, or nil.
func (r *record) find(k kind, id string) *record {
	for ; r != nil; r = r.next.Load() {
		if r.kind == k && r.id == id {
			return r
		}
	}
	return nil
}

// appendRecord adds n at the end of the chain that starts at r. The caller
// holds the stripe lock of the chain's hash.
func (r *record) appendRecord(n *record) {
	for {
		next := r.next.Load()
		if next == nil {
			r.next.Store(n)
			return
		}
		r = next
	}
}

// maxHold returns the latest hold of the chain that starts at r.
func (r *record) maxHold() int64 {
	var m int64
	for ; r != nil; r = r.next.Load() {
		m = max(m, r.st.Load().hold)
	}
	return m
}

// live reports whether the entry headed by r must still be held at the
// wall-clock instant wallNow.
func (r *record) live(wallNow int64) bool {
	return r.deadline.Load() > wallNow
}

// merge folds s into r's state and reports whether the state changed. The
// caller holds the stripe lock of r's hash.
func (r *record) merge(s *state) bool {
	old := r.st.Load()
	m := combine(old, s)
	if *m == *old {
		return false
	}
	r.st.Store(m)
	return true
}

// combine returns the merge of a and b, two states of one record: the one
// whose event ranks first by the events' merge rule ([events.Rank.Compare]),
// which is commutative, associative and idempotent. Its hold is the longest
// too, since a hold never decreases with the bound ([events.Event.Bound]).
func combine(a, b *state) *state {
	if a.rank().Compare(b.rank()) >= 0 {
		return a
	}
	return b
}

// mergeChain folds every record of the chain src into the chain dst: equal
// ids merge their states, others are copied to the end of dst. The caller
// holds the stripe lock of the chains' hash.
func mergeChain(dst, src *record) {
	for r := src; r != nil; r = r.next.Load() {
		if x := dst.find(r.kind, r.id); x != nil {
			x.merge(r.st.Load())
			continue
		}
		dst.appendRecord(newRecord(r.kind, r.id, r.st.Load()))
	}
	if d := src.deadline.Load(); d > dst.deadline.Load() {
		dst.deadline.Store(d)
	}
}
