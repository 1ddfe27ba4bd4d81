package chaos

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Property is one of the guarantees [Check] proves.
type Property int

// The properties, numbered as in issue 4 (5 is an addition).
const (
	// EnforcedInBound (1): every acknowledged revocation is enforced by
	// every deciding replica within the bound P: whenever a replica
	// reported itself deciding P or more after the acknowledgement, it had
	// applied the revocation.
	EnforcedInBound Property = 1
	// NoLateAccept (2): no replica accepted a token more than P after a
	// revocation covering it was acknowledged.
	NoLateAccept Property = 2
	// ReadyAfterReplay (3): no replica reported ready before it had
	// applied every revocation acknowledged before it started, nor
	// accepted a token such a revocation covers.
	ReadyAfterReplay Property = 3
	// NothingLost (4): every acknowledged revocation is in the stream at
	// the end and applied by every replica still running.
	NothingLost Property = 4
	// NoPhantom (5): a replica refused a token as revoked only if some
	// revocation covering it had been asked for before.
	NoPhantom Property = 5
	// RecordedDelivered (6): every revocation the revoker answered as
	// recorded but not acknowledged (503, recorded:true) is in the stream
	// at the end, and enforced by every deciding replica within P of NATS
	// becoming reachable again for the revoker, though no client retried.
	RecordedDelivered Property = 6
)

func (p Property) String() string {
	switch p {
	case EnforcedInBound:
		return "1-enforced-in-bound"
	case NoLateAccept:
		return "2-no-late-accept"
	case ReadyAfterReplay:
		return "3-ready-after-replay"
	case NothingLost:
		return "4-nothing-lost"
	case NoPhantom:
		return "5-no-phantom"
	case RecordedDelivered:
		return "6-recorded-delivered"
	}
	return fmt.Sprintf("Property(%d)", int(p))
}

// Violation is one breach of a [Property].
type Violation struct {
	Property Property
	Replica  string
	// Revocation is the event id concerned ("" when none).
	Revocation string
	Detail     string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s replica=%q revocation=%q: %s", v.Property, v.Replica, v.Revocation, v.Detail)
}

// boundarySlack is how close to a subject revocation's request an iat may
// lie for the checker to call coverage undecidable: the epoch is taken at
// the revoker somewhere inside [Start, End], and iat is truncated to the
// microsecond.
const boundarySlack = time.Millisecond

// coverage says whether revocation r covers the token of q.
type coverage int

const (
	notCovered coverage = iota
	maybeCovered
	covered
)

func covers(r Revocation, q Request) coverage {
	switch r.Kind {
	case KindToken:
		if r.Value == q.JTI {
			return covered
		}
	case KindSession:
		if r.Value == q.SID {
			return covered
		}
	case KindSubject:
		if r.Value != q.Sub {
			return notCovered
		}
		switch {
		case q.IssuedAt < r.Start-boundarySlack:
			return covered
		case q.IssuedAt <= r.End+boundarySlack:
			return maybeCovered
		}
	}
	return notCovered
}

// Stats summarise a history.
type Stats struct {
	Revocations int // acknowledged
	Attempts    int // asked for, acknowledged or not
	Retried     int // sent more than once
	Requests    int
	Accepted    int
	Revoked     int
	Unavailable int
	Failed      int
	// MaxLag is the longest time from an acknowledgement to a replica that
	// was ready before the revocation was asked for applying it; P99Lag
	// the 99th percentile of those times.
	MaxLag time.Duration
	P99Lag time.Duration
	// MaxUnavailable is the longest time one incarnation could not accept
	// a valid token: from a request answered Unavailable (503) to its next
	// accepted one, or to its last request's end. Refusals of revoked
	// tokens do not end it: a verifier refuses what it knows is revoked
	// even while it cannot decide the rest.
	MaxUnavailable time.Duration
}

// Check proves properties 1 to 6 over h with bound p and returns every
// violation found (none: the run was correct) and the history's [Stats].
// It is a pure function of its arguments.
func Check(h History, p time.Duration) ([]Violation, Stats) {
	var vs []Violation
	add := func(prop Property, replica, rev, format string, args ...any) {
		vs = append(vs, Violation{Property: prop, Replica: replica, Revocation: rev, Detail: fmt.Sprintf(format, args...)})
	}

	incs := make(map[string]Incarnation, len(h.Incarnations))
	for _, in := range h.Incarnations {
		incs[in.Name] = in
	}

	var acked []Revocation
	st := Stats{Attempts: len(h.Revocations), Requests: len(h.Requests)}
	byID := make(map[string]Revocation, len(h.Revocations))
	for _, r := range h.Revocations {
		if r.Acked {
			acked = append(acked, r)
			byID[r.ID] = r
		}
		if r.Attempts > 1 {
			st.Retried++
		}
	}
	st.Revocations = len(acked)
	// The stream keeps one message per revoked value: a later revocation of
	// the same value (a subject's newer epoch) supersedes an earlier one,
	// in the stream and in a replay. An event ev may enforce acknowledged
	// revocation r when it revokes the same thing and is r's own, or comes
	// from a revocation that had not finished before r started, acknowledged
	// or not. Such a one may have reached the stream and replaced r's there,
	// or been stored first with the revoker acknowledging r as its duplicate
	// (two concurrent logouts of a subject can carry the same epoch); either
	// way it restricts at least as much, since the publisher never stores a
	// weaker event over a stronger one. One that finished before r started
	// carries an older epoch and cannot stand in. An event whose id no
	// acknowledgement carried belongs to an attempt never acknowledged (the
	// client stopped waiting, or its last retry was refused); it stands in
	// when such an attempt of the same value had not finished before r
	// started.
	//
	// That is for subjects. A token, session or key revocation is the same
	// restriction whenever it was made (a token's expiry is its own; the
	// workload always sends it): any event of the same value enforces it,
	// and the revoker acknowledges a repeat as a duplicate of the event the
	// stream holds.
	supersedes := func(r Revocation, ev Stored) bool {
		if ev.Kind != r.Kind || ev.Value != r.Value {
			return false
		}
		if ev.ID == r.ID || r.Kind != KindSubject {
			return true
		}
		if o, ok := byID[ev.ID]; ok {
			return o.End >= r.Start
		}
		return slices.ContainsFunc(h.Revocations, func(o Revocation) bool {
			return !o.Acked && o.Kind == r.Kind && o.Value == r.Value && o.End >= r.Start
		})
	}

	// What each incarnation applied, per revoked thing, in order of time.
	type thing struct {
		replica string
		kind    Kind
		value   string
	}
	applied := make(map[thing][]Applied)
	for _, a := range h.Applied {
		k := thing{a.Replica, a.Kind, a.Value}
		applied[k] = append(applied[k], a)
	}
	for _, as := range applied {
		slices.SortFunc(as, func(x, y Applied) int { return cmp.Compare(x.At, y.At) })
	}
	// appliedAt is when incarnation in first applied r or an event
	// superseding it.
	type key struct{ replica, id string }
	firstApplied := make(map[key]time.Duration)
	appliedAt := func(in string, r Revocation) (time.Duration, bool) {
		k := key{in, r.ID}
		if t, ok := firstApplied[k]; ok {
			return t, t >= 0
		}
		t := time.Duration(-1)
		for _, a := range applied[thing{in, r.Kind, r.Value}] {
			if supersedes(r, a.Stored) {
				t = a.At
				break
			}
		}
		firstApplied[k] = t
		return t, t >= 0
	}

	// 1: enforced within the bound at every deciding sample. The earliest
	// sample of an incarnation at or after the deadline is the one to look
	// at: if the revocation was applied before it, it was before every
	// later one too.
	deciding := make(map[string][]time.Duration)
	for _, d := range h.Deciding {
		deciding[d.Replica] = append(deciding[d.Replica], d.At)
	}
	names := make([]string, 0, len(deciding))
	for name, ats := range deciding {
		slices.Sort(ats)
		names = append(names, name)
	}
	slices.Sort(names)
	// unenforced returns the first incarnation deciding at or after
	// deadline without having applied r, and that sample.
	unenforced := func(r Revocation, deadline time.Duration) (string, time.Duration, bool) {
		for _, name := range names {
			ats := deciding[name]
			i, _ := slices.BinarySearch(ats, deadline)
			if i == len(ats) {
				continue
			}
			if at, ok := appliedAt(name, r); !ok || at > ats[i] {
				return name, ats[i], true
			}
		}
		return "", 0, false
	}
	for _, r := range acked {
		// One violation per revocation is enough to find it.
		if name, at, bad := unenforced(r, r.End+p); bad {
			add(EnforcedInBound, name, r.ID, "deciding at %v, %v after the ack at %v, without having applied it", at, at-r.End, r.End)
		}
	}

	// 6: recorded revocations, from the first time NATS was reachable
	// again after the answer. Their event id is known, so only that event
	// or (as for property 1) one superseding it enforces them.
	var recorded []Revocation
	for _, r := range h.Revocations {
		if r.Recorded && !r.Acked && r.ID != "" {
			recorded = append(recorded, r)
		}
	}
	reachable := slices.Sorted(slices.Values(h.Reachable))
	for _, r := range recorded {
		i, _ := slices.BinarySearch(reachable, r.End)
		if i == len(reachable) {
			continue // NATS never came back: nothing to bound
		}
		if name, at, bad := unenforced(r, reachable[i]+p); bad {
			add(RecordedDelivered, name, r.ID, "deciding at %v, %v after NATS was reachable again at %v, without the revocation recorded at %v", at, at-reachable[i], reachable[i], r.End)
		}
	}

	// Lags, for the stats.
	var lags []time.Duration
	for _, r := range acked {
		for _, in := range h.Incarnations {
			if in.Ready < 0 || in.Ready > r.Start {
				continue
			}
			if at, ok := appliedAt(in.Name, r); ok {
				lags = append(lags, max(0, at-r.End))
			}
		}
	}
	if len(lags) > 0 {
		slices.Sort(lags)
		st.MaxLag = lags[len(lags)-1]
		st.P99Lag = lags[(len(lags)*99)/100]
	}

	// 2, 3 (accepting) and 5 per request. asked lists the revocations,
	// acknowledged or not, of q's jti, sid or subject.
	byValue := make(map[thing][]Revocation)
	for _, r := range h.Revocations {
		k := thing{"", r.Kind, r.Value}
		byValue[k] = append(byValue[k], r)
	}
	asked := func(q Request) []Revocation {
		return slices.Concat(byValue[thing{"", KindToken, q.JTI}], byValue[thing{"", KindSession, q.SID}], byValue[thing{"", KindSubject, q.Sub}])
	}
	for _, q := range h.Requests {
		switch q.Outcome {
		case Accepted:
			st.Accepted++
		case Revoked:
			st.Revoked++
		case Unavailable:
			st.Unavailable++
		case Failed:
			st.Failed++
		}
		switch q.Outcome {
		case Accepted:
			in, known := incs[q.Replica]
			for _, r := range asked(q) {
				if !r.Acked || covers(r, q) != covered {
					continue
				}
				if known && r.End < in.Start {
					add(ReadyAfterReplay, q.Replica, r.ID, "accepted %s at %v; the revocation was acknowledged at %v, before the replica started at %v", q.JTI, q.Start, r.End, in.Start)
				} else if q.Start > r.End+p {
					add(NoLateAccept, q.Replica, r.ID, "accepted %s at %v, %v after the ack at %v", q.JTI, q.Start, q.Start-r.End, r.End)
				}
			}
		case Revoked:
			if !slices.ContainsFunc(asked(q), func(r Revocation) bool {
				return r.Start < q.End && covers(r, q) != notCovered
			}) {
				add(NoPhantom, q.Replica, "", "refused %s (sid %s, sub %s) as revoked at %v; nothing covering it was asked for", q.JTI, q.SID, q.Sub, q.Start)
			}
		}
	}

	st.MaxUnavailable = maxUnavailable(h.Requests)

	// 3: replayed before ready.
	for _, in := range h.Incarnations {
		if in.Ready < 0 {
			continue
		}
		for _, r := range acked {
			if r.End >= in.Start {
				continue
			}
			if at, ok := appliedAt(in.Name, r); !ok || at > in.Ready {
				add(ReadyAfterReplay, in.Name, r.ID, "ready at %v without having applied a revocation acknowledged at %v, before it started at %v", in.Ready, r.End, in.Start)
			}
		}
	}

	// 4: in the stream and applied by every running replica.
	inStream := make(map[thing][]Stored, len(h.Stream))
	for _, ev := range h.Stream {
		k := thing{"", ev.Kind, ev.Value}
		inStream[k] = append(inStream[k], ev)
	}
	for _, r := range recorded {
		held := inStream[thing{"", r.Kind, r.Value}]
		if h.Stream != nil && !slices.ContainsFunc(held, func(ev Stored) bool { return supersedes(r, ev) }) {
			add(RecordedDelivered, "", r.ID, "recorded at %v but neither it nor a later revocation of %s %s is in the stream at the end", r.End, r.Kind, r.Value)
		}
	}
	for _, r := range acked {
		held := inStream[thing{"", r.Kind, r.Value}]
		if h.Stream != nil && !slices.ContainsFunc(held, func(ev Stored) bool { return supersedes(r, ev) }) {
			add(NothingLost, "", r.ID, "acknowledged at %v but neither it nor a later revocation of %s %s is in the stream at the end", r.End, r.Kind, r.Value)
		}
		for _, in := range h.Incarnations {
			if in.Stop >= 0 {
				continue
			}
			if _, ok := appliedAt(in.Name, r); !ok {
				add(NothingLost, in.Name, r.ID, "acknowledged at %v but never applied by this running replica", r.End)
			}
		}
	}
	return vs, st
}

// maxUnavailable returns [Stats.MaxUnavailable] of qs.
func maxUnavailable(qs []Request) time.Duration {
	byReplica := make(map[string][]Request)
	for _, q := range qs {
		byReplica[q.Replica] = append(byReplica[q.Replica], q)
	}
	var longest time.Duration
	for _, rq := range byReplica {
		slices.SortFunc(rq, func(a, b Request) int { return cmp.Compare(a.Start, b.Start) })
		from := time.Duration(-1) // start of the current run of 503s
		for _, q := range rq {
			switch {
			case q.Outcome == Unavailable && from < 0:
				from = q.Start
			case q.Outcome == Accepted && from >= 0:
				longest = max(longest, q.Start-from)
				from = -1
			}
		}
		if from >= 0 {
			longest = max(longest, rq[len(rq)-1].End-from)
		}
	}
	return longest
}
