// Package revocation holds the revocation state a verifier consults on every
// request: revoked jtis, sessions and signing keys, and per-subject logout
// epochs, kept in a ristretto cache for exactly as long as they matter.
//
// ristretto is lossy by design: Set may be dropped under contention, a write
// becomes visible to Get only some time after Set returns, and at capacity
// its TinyLFU policy evicts old entries or refuses new ones. [Store] makes it
// safe for revocations (DESIGN.md promise 5):
//
//   - every Set's result is checked and a dropped one retried after Wait;
//   - an applied event is enforced by [Store.Check] as soon as [Store.Apply]
//     returns: until ristretto shows it, Check also consults a small map of
//     writes not yet confirmed, and [Store.Sync] confirms them (repairing any
//     write that vanished);
//   - cost is one per entry (IgnoreInternalCost) and the store admits at most
//     Config.Capacity entries itself, so ristretto's policy always has room
//     and never has to choose between live revocations;
//   - OnReject and OnEvict report anything ristretto still lost; if a live
//     revocation is lost or refused, the store fails closed: Check returns
//     [ErrOverCapacity] for every token until the lost entry's hold has
//     passed, and [Store.Stats] says so. It never silently accepts;
//   - entries leave by themselves through ristretto's TTL once every token
//     they affect has expired ([events.Event.HoldUntil]); key revocations
//     have no TTL.
//
// Check is the hot path. A Bloom filter of the held entries' hashes answers
// most misses from one CPU cache line (a look-up in ristretto's maps misses
// the CPU cache at 1M entries); it is rebuilt from what is held once churn
// has added twice the capacity to it.
//
// Merging is monotonic (promise 2) and follows the events' rule
// ([events.Merge]): revoked ids are a union with the latest hold, a
// subject's epoch is the largest seen, and applying events in any order, any
// number of times, yields the same state.
package revocation

import (
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// Errors returned by [Store.Check], [Store.Apply] and [Store.Sync]. A Check
// error wraps exactly one of them. The four revocation reasons are the
// events package's ([events.Kind.ErrRevoked]), named here too.
var (
	// ErrTokenRevoked: the token's jti is revoked.
	ErrTokenRevoked = events.ErrTokenRevoked
	// ErrSessionRevoked: the token's session (sid) is revoked.
	ErrSessionRevoked = events.ErrSessionRevoked
	// ErrSubjectRevoked: the token's subject logged out at or after the
	// token's issue instant.
	ErrSubjectRevoked = events.ErrSubjectRevoked
	// ErrKeyRevoked: the key that signed the token (kid) is revoked.
	ErrKeyRevoked = events.ErrKeyRevoked
	// ErrOverCapacity: a live revocation could not be held, so the store
	// cannot decide and fails closed. It is an "I cannot decide now" error
	// (503), not a verdict on the token.
	ErrOverCapacity = errors.New("verifier: revocation capacity exceeded")
	// ErrClosed: the store was closed; Check fails closed with it.
	ErrClosed = errors.New("verifier: revocation store closed")
	// ErrInvalidConfig: [New] was given a config it cannot work with.
	ErrInvalidConfig = errors.New("verifier: invalid revocation config")
)

// Tuning constants.
const (
	// numStripes is the number of key-hash stripes serializing the
	// read-modify-write of one entry.
	numStripes = 1024
	// maxPendingPerStripe is how many unconfirmed writes a stripe keeps
	// before Apply confirms them itself (bounding the pending maps during a
	// replay that never calls Sync).
	maxPendingPerStripe = 128
	// expiryMargin is added to every TTL, so an entry outlives the token it
	// restricts by a little, never the reverse.
	expiryMargin = time.Second
	// maxSyncRounds bounds the confirm-and-repair rounds of one Sync.
	maxSyncRounds = 16
	// counterFactor is NumCounters per unit of capacity, as ristretto advises.
	counterFactor = 10
)

// Token is what [Store.Check] needs of a token whose signature and claims
// were already verified. Empty fields are not looked up; a zero IssuedAt
// counts as issued before any epoch ([events.EpochRevokes]).
type Token = events.Token

// Config is the policy of a [Store]. It is copied by [New].
type Config struct {
	// Capacity is the most revocations held at once; required > 0. It
	// counts entries (one per revoked jti, sid, subject or kid), including
	// ones whose hold passed within the last ~10 s that ristretto has not
	// collected yet. Exceeding it makes the store fail closed.
	Capacity int
	// MaxTokenLifetime is the longest exp - iat of a token the verifier
	// accepts; required > 0. It bounds how long sessions and subject epochs
	// are held.
	MaxTokenLifetime time.Duration
	// Leeway is the clock leeway the verifier allows on exp; >= 0.
	Leeway time.Duration
	// Now returns the current time; nil means time.Now. It decides which
	// events are already past their hold. ristretto's TTLs run on the wall
	// clock: an entry lives for its remaining hold as seen by Now.
	Now func() time.Time
}

// Stats is a snapshot of a store's counters.
type Stats struct {
	// Held is the number of entries in the cache (live revocations, plus
	// expired ones not collected yet).
	Held int
	// Capacity is Config.Capacity.
	Capacity int
	// Pending is the number of writes not yet confirmed visible by Sync.
	Pending int
	// Dropped counts Sets that ristretto dropped and the store retried.
	Dropped uint64
	// Rejected counts live revocations refused: by the store's capacity
	// check or by ristretto's admission policy.
	Rejected uint64
	// Evicted counts live revocations that ristretto evicted for room.
	Evicted uint64
	// Repaired counts writes that vanished after being accepted and were
	// written again.
	Repaired uint64
	// OverCapacity is true while the store fails closed.
	OverCapacity bool
	// FailClosedUntil is when failing closed ends (on the Config.Now clock).
	// It is zero while OverCapacity is true if a key revocation, held
	// forever, was lost: the store then fails closed until it is rebuilt.
	FailClosedUntil time.Time
}

// pend is a write Apply made that Sync has not confirmed yet.
type pend struct {
	head *record
	// seq orders the write against Store.waited: once waited >= seq,
	// ristretto has processed it.
	seq uint64
	// resets is true if the entry was Set again while an earlier Set of it
	// was pending: ristretto may have kept the earlier Set's shorter TTL.
	resets bool
}

// stripe serializes writes to the entries whose hash falls in it.
type stripe struct {
	// mu guards pending, and every read-modify-write of an entry (its chain
	// and states) whose hash maps to this stripe.
	mu      sync.RWMutex
	pending map[uint64]pend
	_       [32]byte // keep neighbouring stripes off one cache line
}

// Store is the revocation state. It is safe for concurrent use by many
// goroutines: Apply, Sync, Check and Stats may all run at once. Close must
// not race with Check (stop serving first); Check after Close returns
// [ErrClosed].
type Store struct {
	cfg   Config
	cache *ristretto.Cache[uint64, *record]
	seeds [numKinds]maphash.Seed

	stripes [numStripes]stripe

	// filter answers most misses without a cache look-up. It holds the
	// hash of every entry reachable by Check (cached, pending); entries
	// awaiting repair are looked up regardless. Added to under lifeMu held
	// for reading, replaced under lifeMu held for writing (rebuildFilter).
	filter     atomic.Pointer[filter]
	rebuilding atomic.Bool   // a goroutine is about to rebuild the filter
	rebuilds   atomic.Uint64 // filters rebuilt

	// seen[k] is set once an event of kind k was applied, before its entry
	// is written; Check skips looking up kinds never seen (most deployments
	// never revoke a key, so most Checks do three look-ups, not four).
	seen [numKinds]atomic.Bool

	// lifeMu is held for reading by Apply and Sync (every writer) and for
	// writing by Close, so the cache is never closed under a writer, and by
	// rebuildFilter, so no entry is written while it collects them.
	lifeMu sync.RWMutex
	closed atomic.Bool

	held     atomic.Int64  // entries counted in the cache (see record.counted)
	pendingN atomic.Int64  // entries in all stripes' pending maps
	seq      atomic.Uint64 // last write sequence handed out
	waited   atomic.Uint64 // every write <= waited has been processed by ristretto
	waiting  atomic.Bool   // a prune is waiting for ristretto

	// failUntil is until when Check fails closed, UnixNano on the Config.Now
	// clock; 0 for not failing, forever for until rebuilt.
	failUntil atomic.Int64

	// lossMu guards repair. It is never held while calling into ristretto,
	// since ristretto's callbacks take it.
	lossMu  sync.RWMutex
	repair  map[uint64][]*record // live entries that vanished, by hash
	repairN atomic.Int64         // len(repair), read by Check without lossMu

	dropped, rejected, evicted, repaired atomic.Uint64
}

// New validates cfg and returns an empty store. Close it when done.
func New(cfg Config) (*Store, error) {
	switch {
	case cfg.Capacity <= 0:
		return nil, fmt.Errorf("%w: capacity must be > 0, got %d", ErrInvalidConfig, cfg.Capacity)
	case cfg.MaxTokenLifetime <= 0:
		return nil, fmt.Errorf("%w: max token lifetime must be > 0, got %s", ErrInvalidConfig, cfg.MaxTokenLifetime)
	case cfg.Leeway < 0:
		return nil, fmt.Errorf("%w: leeway must be >= 0, got %s", ErrInvalidConfig, cfg.Leeway)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{cfg: cfg, repair: make(map[uint64][]*record)}
	s.filter.Store(newFilter(cfg.Capacity))
	for i := range s.seeds {
		s.seeds[i] = maphash.MakeSeed()
	}
	for i := range s.stripes {
		s.stripes[i].pending = make(map[uint64]pend)
	}
	c, err := ristretto.NewCache(&ristretto.Config[uint64, *record]{
		NumCounters: int64(cfg.Capacity)*counterFactor + 64,
		// The store admits at most Capacity entries (see putLocked), so
		// the policy always finds room and never runs TinyLFU between two
		// revocations; any eviction or refusal it still makes is reported
		// to onEvict / onReject and fails closed.
		MaxCost:            int64(cfg.Capacity),
		IgnoreInternalCost: true,
		BufferItems:        64,
		// Keys are already 64-bit hashes; the id is compared on every hit
		// (record.find), which is the conflict check.
		KeyToHash:              func(k uint64) (uint64, uint64) { return k, 0 },
		OnEvict:                s.onEvict,
		OnReject:               s.onReject,
		ShouldUpdate:           s.shouldUpdate,
		TtlTickerDurationInSec: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("verifier: revocation cache: %w", err)
	}
	s.cache = c
	return s, nil
}

// Close stops the cache's goroutines. Apply and Sync then return
// [ErrClosed], and Check fails closed with it. Close is idempotent.
func (s *Store) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.cache.Close()
}

func (s *Store) hash(k kind, id string) uint64 {
	return maphash.String(s.seeds[k], id)
}

func (s *Store) stripe(h uint64) *stripe {
	return &s.stripes[h%numStripes]
}

// Check reports whether t is revoked: nil, or an error wrapping exactly one
// of [ErrKeyRevoked], [ErrTokenRevoked], [ErrSessionRevoked],
// [ErrSubjectRevoked] (looked up in that order), [ErrOverCapacity] while the
// store fails closed, or [ErrClosed]. It makes no allocation unless it
// rejects.
func (s *Store) Check(t Token) error {
	if s.closed.Load() {
		return ErrClosed
	}
	// Fail closed before looking anything up: a revocation that could not
	// be held would otherwise be accepted.
	if fu := s.failUntil.Load(); fu != 0 {
		if fu == forever || s.cfg.Now().UnixNano() < fu {
			return ErrOverCapacity
		}
		s.failUntil.CompareAndSwap(fu, 0)
	}
	f := s.filter.Load()
	if t.KID != "" && s.seen[kindKey].Load() {
		if r := s.find(f, kindKey, t.KID); r != nil {
			return revoked(ErrKeyRevoked, r.st.Load())
		}
	}
	if t.JTI != "" && s.seen[kindToken].Load() {
		if r := s.find(f, kindToken, t.JTI); r != nil {
			return revoked(ErrTokenRevoked, r.st.Load())
		}
	}
	if t.SID != "" && s.seen[kindSession].Load() {
		if r := s.find(f, kindSession, t.SID); r != nil {
			return revoked(ErrSessionRevoked, r.st.Load())
		}
	}
	if t.Sub != "" && s.seen[kindSubject].Load() {
		if r := s.find(f, kindSubject, t.Sub); r != nil {
			// A subject's bound is its epoch.
			if st := r.st.Load(); events.EpochRevokes(t.IssuedAt, time.Unix(0, st.bound)) {
				return revoked(ErrSubjectRevoked, st)
			}
		}
	}
	return nil
}

func revoked(sentinel error, st *state) error {
	if st.reason == "" {
		return sentinel
	}
	return fmt.Errorf("%w (reason: %s)", sentinel, st.reason)
}

// find looks (k, id) up: if f may hold it, in the cache, then among writes
// not yet visible there; then among vanished writes awaiting repair.
func (s *Store) find(f *filter, k kind, id string) *record {
	h := s.hash(k, id)
	if f.mayContain(h) {
		if r := s.findHeld(h, k, id); r != nil {
			return r
		}
	}
	if s.repairN.Load() > 0 {
		s.lossMu.RLock()
		defer s.lossMu.RUnlock()
		for _, head := range s.repair[h] {
			if r := head.find(k, id); r != nil {
				return r
			}
		}
	}
	return nil
}

// findHeld looks (k, id), of hash h, up in the cache, then among writes not
// yet visible there.
func (s *Store) findHeld(h uint64, k kind, id string) *record {
	if head, ok := s.cache.Get(h); ok {
		if r := head.find(k, id); r != nil {
			return r
		}
	}
	if s.pendingN.Load() > 0 {
		st := s.stripe(h)
		st.mu.RLock()
		p, ok := st.pending[h]
		st.mu.RUnlock()
		if ok {
			if r := p.head.find(k, id); r != nil {
				return r
			}
		}
	}
	return nil
}

// Apply merges e into the state and reports whether that changed anything.
// It is safe to call from many goroutines at once, and Check enforces e as
// soon as Apply returns. An event whose hold has already passed (on
// Config.Now) is ignored. The error wraps [ErrOverCapacity] if e is live
// but could not be held (the store then fails closed),
// [events.ErrInvalid] if e lacks what its kind needs, or [ErrClosed].
func (s *Store) Apply(e events.Event) (changed bool, err error) {
	changed, err = s.apply(e)
	if f := s.filter.Load(); f.added.Load() > 2*int64(s.cfg.Capacity) && s.rebuilding.CompareAndSwap(false, true) {
		s.rebuildFilter()
		s.rebuilding.Store(false)
	}
	return changed, err
}

func (s *Store) apply(e events.Event) (changed bool, err error) {
	s.lifeMu.RLock()
	defer s.lifeMu.RUnlock()
	if s.closed.Load() {
		return false, ErrClosed
	}
	k, id, err := identify(e)
	if err != nil {
		return false, err
	}
	now := s.cfg.Now()
	ns := &state{hold: forever, reason: e.Reason}
	if hold := e.HoldUntil(s.cfg.MaxTokenLifetime, s.cfg.Leeway); !hold.IsZero() {
		// A token is still accepted at exp+leeway itself, so a hold
		// equal to now still matters.
		if hold.Before(now) {
			return false, nil // every token it affects has expired
		}
		ns.hold = hold.UnixNano()
	}
	if b := e.Bound(); !b.IsZero() {
		ns.bound = b.UnixNano()
	}
	dl := wallDeadline(ns.hold, now.UnixNano(), time.Now().UnixNano())

	if s.repairN.Load() > 0 {
		s.repairAll()
	}

	if !s.seen[k].Load() {
		s.seen[k].Store(true)
	}
	h := s.hash(k, id)
	st := s.stripe(h)
	st.mu.Lock()
	changed, err = s.applyLocked(st, h, k, id, ns, dl)
	crowded := len(st.pending) > maxPendingPerStripe
	st.mu.Unlock()
	if crowded {
		s.prune(st)
	}
	return changed, err
}

// applyLocked merges ns into the record of (k, id) under hash h and writes
// the entry if it is new or needs a longer TTL. The caller holds st.mu.
func (s *Store) applyLocked(st *stripe, h uint64, k kind, id string, ns *state, dl int64) (changed bool, err error) {
	head := s.currentLocked(st, h)
	fresh := head == nil
	if r := head.find(k, id); r != nil {
		changed = r.merge(ns)
	} else {
		changed = true
		r := newRecord(k, id, ns)
		if fresh {
			head = r
		} else {
			// The hash is in the filter already (the head's put added it);
			// adding again costs nothing and needs no proof.
			s.filter.Load().add(h)
			head.appendRecord(r)
		}
	}
	if head.lost.Load() {
		// ristretto lost this entry while it was live; the store is
		// already failing closed for it, and now for this hold too.
		s.failClosed(ns.hold)
		return changed, fmt.Errorf("%w: entry lost to the cache", ErrOverCapacity)
	}
	// A longer hold needs a longer TTL, which only a new Set gives.
	if dl > head.deadline.Load() {
		head.deadline.Store(dl)
		fresh = true
	}
	if fresh {
		if err := s.putLocked(st, h, head); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// prune confirms the writes of a crowded stripe that ristretto has
// processed, so pending maps stay small during a long replay without Sync.
// At most one goroutine at a time waits for ristretto; the others keep
// feeding it and prune what the last wait covered.
func (s *Store) prune(st *stripe) {
	if s.waiting.CompareAndSwap(false, true) {
		s.waitMark()
		s.waiting.Store(false)
	}
	st.mu.Lock()
	s.confirmLocked(st, s.waited.Load())
	st.mu.Unlock()
}

// identify returns the kind and id e revokes, checking that e carries what
// the merge needs (the rest of the contract is [events.Decode]'s job).
func identify(e events.Event) (kind, string, error) {
	var k kind
	switch e.Kind {
	case events.KindKey:
		k = kindKey
	case events.KindToken:
		k = kindToken
		if e.Expiry.IsZero() {
			return 0, "", fmt.Errorf("verifier: revocation: %w: exp", events.ErrMissingField)
		}
	case events.KindSession:
		k = kindSession
		if e.IssuedAt.IsZero() {
			return 0, "", fmt.Errorf("verifier: revocation: %w: issued_at", events.ErrMissingField)
		}
	case events.KindSubject:
		k = kindSubject
		if e.Epoch.IsZero() {
			return 0, "", fmt.Errorf("verifier: revocation: %w: epoch", events.ErrMissingField)
		}
	default:
		return 0, "", fmt.Errorf("verifier: revocation: %w: %q", events.ErrUnknownKind, e.Kind)
	}
	id := e.Value()
	if id == "" {
		return 0, "", fmt.Errorf("verifier: revocation: %w: %s id", events.ErrMissingField, e.Kind)
	}
	return k, id, nil
}

// wallDeadline translates a hold on the configured clock into the wall-clock
// instant until which ristretto must keep the entry.
func wallDeadline(hold, now, wallNow int64) int64 {
	if hold == forever {
		return forever
	}
	return wallNow + (hold - now) + int64(expiryMargin)
}

// currentLocked returns the head stored for h, newest first: the pending
// write, else what the cache shows. The caller holds st.mu.
func (s *Store) currentLocked(st *stripe, h uint64) *record {
	if p, ok := st.pending[h]; ok && !p.head.lost.Load() {
		return p.head
	}
	if head, ok := s.cache.Get(h); ok {
		return head
	}
	return nil
}

// putLocked writes head under h, retrying until ristretto accepts the Set,
// and records the write as pending. A head not yet counted reserves one unit
// of capacity first; if none is left the write is refused and the store
// fails closed. The caller holds st.mu.
func (s *Store) putLocked(st *stripe, h uint64, head *record) error {
	if !head.counted.Load() {
		if n := s.held.Add(1); n > int64(s.cfg.Capacity) {
			s.held.Add(-1)
			s.rejected.Add(1)
			s.failClosed(head.maxHold())
			return fmt.Errorf("%w: %d revocations held", ErrOverCapacity, s.cfg.Capacity)
		}
		head.counted.Store(true)
	}
	// Into the filter before the entry can be seen anywhere.
	s.filter.Load().add(h)
	var ttl time.Duration
	if d := head.deadline.Load(); d != forever {
		ttl = max(time.Duration(d-time.Now().UnixNano()), time.Millisecond)
	}
	for !s.cache.SetWithTTL(h, head, 1, ttl) {
		// Dropped under contention: let ristretto drain, then retry.
		if s.closed.Load() {
			return ErrClosed
		}
		s.dropped.Add(1)
		s.cache.Wait()
	}
	p, ok := st.pending[h]
	if !ok {
		s.pendingN.Add(1)
	}
	st.pending[h] = pend{head: head, seq: s.seq.Add(1), resets: ok && (p.resets || p.seq > s.waited.Load())}
	return nil
}

// rebuildFilter replaces the filter, whose bits only accumulate, by one
// holding just the entries reachable now. Writers wait meanwhile (lifeMu);
// Check goes on with the old filter, a superset, until the swap.
func (s *Store) rebuildFilter() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed.Load() {
		return
	}
	f := newFilter(s.cfg.Capacity)
	// Every write not confirmed yet is pending (no writer runs, so none is
	// removed or added); every confirmed one is in the cache unless it left:
	// expired, lost (failing closed) or vanished (on the repair list, which
	// Check reads regardless of the filter).
	for i := range s.stripes {
		st := &s.stripes[i]
		st.mu.RLock()
		for h := range st.pending {
			f.add(h)
		}
		st.mu.RUnlock()
	}
	s.cache.IterValues(func(head *record) bool {
		f.add(s.hash(head.kind, head.id))
		return false
	})
	s.filter.Store(f)
	s.rebuilds.Add(1)
}

// waitMark waits until ristretto has processed every Set made so far and
// returns the sequence number it covers.
func (s *Store) waitMark() uint64 {
	mark := s.seq.Load()
	s.cache.Wait()
	for {
		w := s.waited.Load()
		if w >= mark || s.waited.CompareAndSwap(w, mark) {
			return mark
		}
	}
}

// confirmLocked checks every pending write of st made at or before mark
// (which ristretto has processed): visible ones leave the pending map,
// vanished live ones are written again. It reports whether it rewrote any.
// The caller holds st.mu.
func (s *Store) confirmLocked(st *stripe, mark uint64) (rewrote bool) {
	wallNow := time.Now().UnixNano()
	for h, p := range st.pending {
		if p.seq > mark {
			continue
		}
		head := p.head
		v, ok := s.cache.Get(h)
		switch {
		case ok && v == head:
			if p.resets && !s.ttlCovers(h, head) {
				// An earlier Set with a shorter TTL won the race; this
				// Set of a stored key updates its expiry at once.
				_ = s.putLocked(st, h, head) // a refusal fails closed by itself
				rewrote = true
				continue
			}
		case head.lost.Load():
			// Already failing closed for it; nothing to rewrite.
		case !head.live(wallNow):
			// Its hold passed while pending.
		default:
			// Accepted by Set, yet not in the cache: repair.
			s.repaired.Add(1)
			if ok {
				mergeChain(v, head)
				head = v
			}
			if err := s.putLocked(st, h, head); err == nil {
				rewrote = true
				continue
			}
		}
		delete(st.pending, h)
		s.pendingN.Add(-1)
	}
	return rewrote
}

// ttlCovers reports whether the cache keeps h at least until head's deadline.
func (s *Store) ttlCovers(h uint64, head *record) bool {
	ttl, ok := s.cache.GetTTL(h)
	if !ok {
		return false
	}
	d := head.deadline.Load()
	if ttl == 0 { // no expiry
		return true
	}
	return d != forever && time.Now().UnixNano()+int64(ttl) >= d-int64(time.Millisecond)
}

// Sync waits until every Apply that returned before the call is visible in
// the cache, repairing writes that vanished. It returns an error wrapping
// [ErrOverCapacity] while the store fails closed because a live revocation
// was lost or refused, or [ErrClosed].
func (s *Store) Sync() error {
	s.lifeMu.RLock()
	defer s.lifeMu.RUnlock()
	if s.closed.Load() {
		return ErrClosed
	}
	for range maxSyncRounds {
		s.repairAll()
		mark := s.waitMark()
		again := false
		for i := range s.stripes {
			st := &s.stripes[i]
			st.mu.Lock()
			if len(st.pending) > 0 && s.confirmLocked(st, mark) {
				again = true
			}
			st.mu.Unlock()
		}
		if !again && s.repairN.Load() == 0 {
			return s.overCapacityErr()
		}
	}
	return fmt.Errorf("%w: writes still not visible after %d rounds", ErrOverCapacity, maxSyncRounds)
}

func (s *Store) overCapacityErr() error {
	fu := s.failUntil.Load()
	switch {
	case fu == 0:
		return nil
	case fu == forever:
		return fmt.Errorf("%w: a key revocation was lost; failing closed until rebuilt", ErrOverCapacity)
	case s.cfg.Now().UnixNano() < fu:
		return fmt.Errorf("%w: failing closed until %s", ErrOverCapacity, time.Unix(0, fu).UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// failClosed makes Check fail closed until hold (UnixNano, Config.Now clock).
func (s *Store) failClosed(hold int64) {
	for {
		fu := s.failUntil.Load()
		if fu >= hold || s.failUntil.CompareAndSwap(fu, hold) {
			return
		}
	}
}

// repairAll writes back every live entry that vanished from the cache,
// merging it into whatever is stored under its hash by now.
func (s *Store) repairAll() {
	s.lossMu.RLock()
	todo := make(map[uint64][]*record, len(s.repair))
	for h, heads := range s.repair {
		todo[h] = heads
	}
	s.lossMu.RUnlock()
	for h, heads := range todo {
		st := s.stripe(h)
		st.mu.Lock()
		cur := s.currentLocked(st, h)
		for _, head := range heads {
			if cur == nil {
				cur = head
				continue
			}
			if cur != head {
				mergeChain(cur, head)
			}
		}
		s.repaired.Add(1)
		_ = s.putLocked(st, h, cur) // a refusal fails closed by itself
		st.mu.Unlock()
		// Only now, with the write pending (and so seen by Check), leave
		// the repair list.
		s.lossMu.Lock()
		if len(s.repair[h]) == len(heads) {
			delete(s.repair, h)
		}
		s.repairN.Store(int64(len(s.repair)))
		s.lossMu.Unlock()
	}
}

// gone records that head left the cache.
func (s *Store) gone(head *record) {
	if head.counted.CompareAndSwap(true, false) {
		s.held.Add(-1)
	}
}

// lose records that ristretto refused or evicted head while it was live: the
// store fails closed until every hold in it has passed.
func (s *Store) lose(head *record) {
	head.lost.Store(true)
	s.failClosed(head.maxHold())
}

// queueRepair puts head, which vanished while live, on the repair list.
func (s *Store) queueRepair(h uint64, head *record) {
	s.lossMu.Lock()
	s.repair[h] = append(s.repair[h], head)
	s.repairN.Store(int64(len(s.repair)))
	s.lossMu.Unlock()
}

// onEvict is ristretto's OnEvict: a policy victim (zero Expiration) or an
// entry whose TTL passed. It runs on ristretto's goroutine and must not
// block on a stripe.
func (s *Store) onEvict(it *ristretto.Item[*record]) {
	if s.closed.Load() {
		return // Close clears the cache
	}
	head := it.Value
	if head == nil {
		// The policy evicted a key the store no longer had: nothing tells
		// what it was, so it may have been a key revocation.
		if it.Expiration.IsZero() {
			s.evicted.Add(1)
			s.failClosed(forever)
		}
		return
	}
	s.gone(head)
	if !head.live(time.Now().UnixNano()) {
		return // expired by itself, as intended
	}
	if it.Expiration.IsZero() {
		s.evicted.Add(1)
		s.lose(head)
		return
	}
	// The TTL sweep removed an entry whose hold was extended meanwhile.
	s.queueRepair(it.Key, head)
}

// onReject is ristretto's OnReject: the policy refused a new entry, or a
// second Set of a key it already has (the value of the first stays).
func (s *Store) onReject(it *ristretto.Item[*record]) {
	if s.closed.Load() {
		return
	}
	head := it.Value
	if v, ok := s.cache.Get(it.Key); ok && v == head {
		return // a repeated Set of a stored entry
	}
	s.gone(head)
	if !head.live(time.Now().UnixNano()) {
		return
	}
	s.rejected.Add(1)
	s.lose(head)
}

// shouldUpdate is ristretto's ShouldUpdate, called when a Set replaces the
// stored value of a key. A different head replaces an expired one; if the old
// one still held something live, it goes to the repair list to be merged.
// Runs under a ristretto shard lock: must not call into the cache.
func (s *Store) shouldUpdate(cur, prev *record) bool {
	if cur != prev && prev != nil {
		s.gone(prev)
		if prev.live(time.Now().UnixNano()) {
			// Every record of a chain has the chain's hash.
			s.queueRepair(s.hash(prev.kind, prev.id), prev)
		}
	}
	return true
}

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Held:     int(s.held.Load()),
		Capacity: s.cfg.Capacity,
		Pending:  int(s.pendingN.Load()),
		Dropped:  s.dropped.Load(),
		Rejected: s.rejected.Load(),
		Evicted:  s.evicted.Load(),
		Repaired: s.repaired.Load(),
	}
	switch fu := s.failUntil.Load(); {
	case fu == forever:
		st.OverCapacity = true
	case fu != 0 && s.cfg.Now().UnixNano() < fu:
		st.OverCapacity = true
		st.FailClosedUntil = time.Unix(0, fu)
	}
	return st
}
