package revocation

import (
	"math"
	"time"
	"unique"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// forever is the hold of a restriction that never expires: a revoked
// signing key.
const forever = math.MaxInt64

// kind is the kind of restriction an entry holds; it also picks the hash
// seeds, so equal ids of different kinds never share an entry.
type kind uint8

const (
	kindKey kind = iota
	kindToken
	kindSession
	kindSubject
	kindScope
	numKinds
)

// kindBits is the mask of an entry's sum that holds its kind.
const kindBits = 7

// entry is one revoked id, the value ristretto stores under the id's key
// hash. It is immutable once written: a merge writes a new entry, so Check
// reads a consistent snapshot without a lock.
//
// The id itself is not kept. The key hash and sum are two independent
// 64-bit keyed hashes of (kind, id) with per-process random seeds: an entry
// answers for an id only if both match. Two ids that share the key hash but
// not the sum are kept apart (Store.overflow). Only ids sharing all 126 bits
// would share an entry, and merging two restrictions only ever restricts
// each more, so even that cannot hide a revocation.
type entry struct {
	// sum is the second hash of the id, with the kind in its low bits.
	sum uint64
	// bound is the [events.Event.Bound] of the event that decided the
	// merged state, as UnixNano (0 for a key): for a subject, its epoch. The
	// hold follows from it and the kind (Store.hold).
	bound int64
	// reason is that event's reason; the zero handle for none.
	reason unique.Handle[string]
}

func (e *entry) kind() kind { return kind(e.sum & kindBits) }

func (e *entry) reasonText() string {
	if e.reason == (unique.Handle[string]{}) {
		return ""
	}
	return e.reason.Value()
}

// rank is e's rank in a merge.
func (e *entry) rank() events.Rank {
	return events.Rank{Bound: time.Unix(0, e.bound), Reason: e.reasonText()}
}

// combine returns the merge of a and b, two entries of one id: the one whose
// event ranks first by the events' merge rule ([events.Rank.Compare]), which
// is commutative, associative and idempotent; a if they rank alike. Its hold
// is the longest too, since a hold never decreases with the bound.
func combine(a, b *entry) *entry {
	if a.rank().Compare(b.rank()) >= 0 {
		return a
	}
	return b
}
