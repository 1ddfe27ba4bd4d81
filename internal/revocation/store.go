// Package revocation holds the revocation state a verifier consults on every
// request: revoked jtis, sessions and signing keys, and per-subject logout
// epochs, kept in a ristretto cache for exactly as long as they matter.
//
// ristretto is lossy by design: Set may be dropped under contention, a new
// key becomes visible to Get only some time after Set returns, and at
// capacity its TinyLFU policy evicts old entries or refuses new ones. [Store]
// makes it safe for revocations (DESIGN.md promise 5):
//
//   - one writer at a time (the feed's goroutine; a mutex serializes any
//     other caller), so no key ever has two Sets in flight;
//   - every Set's result is checked and a dropped one retried after Wait;
//   - an applied event is enforced by [Store.Check] as soon as [Store.Apply]
//     returns: until ristretto shows it, Check also consults a small map of
//     writes not yet confirmed, and [Store.Sync] confirms them (writing again
//     any write that vanished);
//   - cost is one per entry (IgnoreInternalCost) and the store admits at most
//     Config.Capacity entries itself, so ristretto's policy always has room:
//     it never runs TinyLFU between two revocations, which is why its
//     frequency counters can be few;
//   - OnReject and OnEvict report anything ristretto still lost; if a live
//     revocation is lost or refused, the store fails closed: Check returns
//     [ErrOverCapacity] for every token until the lost entry's hold has
//     passed, and [Store.Stats] says so. It never silently accepts;
//   - entries leave by themselves once every token they affect has expired
//     ([events.Event.HoldUntil]): the store keeps them in one-second buckets
//     by hold and deletes a bucket's expired entries once it has passed, so
//     ristretto keeps no TTL of its own. Key revocations never leave.
//
// Check is the hot path. A Bloom filter of the held entries' key hashes
// answers most misses from one CPU cache line (a look-up in ristretto's maps
// misses the CPU cache at 1M entries). It is sized by what is held, not by
// the capacity: a rebuild sizes it at 32 bits per entry held, rounded up to
// a power of two blocks, and it is rebuilt once twice the keys it was sized
// for were added to it (growth or churn), so it holds 16 to 64 bits per
// entry (4 MiB at 1M held, 256 KiB at 100k, 16 KiB at 6k, where a filter
// sized by the capacity took 4 MiB at any). After a burst has expired it is
// rebuilt smaller.
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
	"unique"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// Errors returned by [Store.Check], [Store.Apply] and [Store.Sync]. A Check
// error wraps exactly one of them. The revocation reasons are the events
// package's ([events.Kind.ErrRevoked]), named here too.
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
	// ErrScopeRevoked: an epoch scope of the token (its issuer, a scope
	// claim's value) was logged out at or after its issue instant.
	ErrScopeRevoked = events.ErrScopeRevoked
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
	// maxPending is how many unconfirmed writes Apply keeps before it
	// confirms them itself, bounding the pending map during a replay that
	// never calls Sync.
	maxPending = 4096
	// expiryMargin is how long an entry outlives the tokens it restricts,
	// at least.
	expiryMargin = int64(time.Second)
	// bucketWidth is the span of holds one expiry bucket covers (ns).
	bucketWidth = int64(time.Second)
	// sweepInterval is how often passed expiry buckets are deleted.
	sweepInterval = time.Second
	// maxSyncRounds bounds the confirm-and-repair rounds of one Sync.
	maxSyncRounds = 16
	// numCounters is ristretto's NumCounters. Its TinyLFU counters only
	// decide which entry to refuse or evict when the cache is full, and the
	// store never lets it be full, so a token sketch does.
	numCounters = 1 << 10
)

// Token is what [Store.Check] needs of a token whose signature and claims
// were already verified. Empty fields are not looked up; a zero IssuedAt
// counts as issued before any epoch ([events.EpochRevokes]).
type Token = events.Token

// Config is the policy of a [Store]. It is copied by [New].
type Config struct {
	// Capacity is the most revocations held at once; required > 0. It
	// counts entries (one per revoked jti, sid, subject or kid), including
	// ones whose hold passed within the last ~3 s that the sweep has not
	// deleted yet. Exceeding it makes the store fail closed.
	Capacity int
	// MaxTokenLifetime is the longest exp - iat of a token the verifier
	// accepts; required > 0. It bounds how long sessions and subject epochs
	// are held.
	MaxTokenLifetime time.Duration
	// Leeway is the clock leeway the verifier allows on exp; >= 0.
	Leeway time.Duration
	// Now returns the current time; nil means time.Now. It decides which
	// events are already past their hold. An entry is deleted once its hold
	// has passed both on Now and on a clock that runs at wall speed from
	// Now's reading at [New] (see Store.sweepNow).
	Now func() time.Time
}

// Stats is a snapshot of a store's counters.
type Stats struct {
	// Held is the number of entries held (live revocations, plus expired
	// ones not deleted yet).
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

// Store is the revocation state. It is safe for concurrent use: Check and
// Stats never wait for a writer; Apply and Sync may be called from many
// goroutines but run one at a time (the feed calls them from one). Close
// must not race with Check (stop serving first); Check after Close returns
// [ErrClosed].
type Store struct {
	cfg   Config
	cache *ristretto.Cache[uint64, *entry]
	// keySeeds pick an id's key in the cache, sumSeeds its entry's sum.
	keySeeds, sumSeeds [numKinds]maphash.Seed
	// holdAfter[k] is hold - bound for kind k (see holdOf).
	holdAfter [numKinds]int64

	// filter answers most misses without a cache look-up. It holds the key
	// of every entry reachable by Check. Added to and replaced under mu.
	filter   atomic.Pointer[filter]
	rebuilds atomic.Uint64 // filters rebuilt

	// seen[k] is set once an event of kind k was applied, before its entry
	// is written; Check skips looking up kinds never seen (most deployments
	// never revoke a key, so most Checks do three look-ups, not four).
	// scoped[k] is the same for events of kind k scoped to an issuer.
	seen, scoped [numKinds]atomic.Bool

	// mu serializes the writers (Apply, Sync, the sweep, Close) and guards
	// expiry, keys, and every write to the cache. It is held across
	// cache.Wait, so ristretto's callbacks never take it.
	mu     sync.Mutex
	closed atomic.Bool

	// readMu guards pending and overflow against Check, which reads them
	// only while pendingN or overflowN is not zero. The writer (under mu)
	// reads them freely and holds readMu to change them.
	readMu sync.RWMutex
	// pending holds, by key, the latest write not yet confirmed visible in
	// the cache. Check looks here first.
	pending  map[uint64]*entry
	pendingN atomic.Int64
	// overflow holds entries whose key the cache already holds for another
	// id (a 64-bit key collision; their sums differ). Check reads it after
	// the cache.
	overflow  map[uint64][]*entry
	overflowN atomic.Int64

	// expiry holds the key of every entry with a hold, in the bucket of its
	// hold (hold / bucketWidth). An entry whose hold grew into a later
	// bucket is in each; a passed bucket deletes only entries whose hold
	// has passed. keys holds the key of every key revocation (no hold).
	expiry map[int64][]uint64
	keys   []uint64
	// anchorNow and anchorWall are Config.Now and the monotonic clock at
	// New (see sweepNow).
	anchorNow  int64
	anchorWall time.Time

	held atomic.Int64 // entries counted: in the cache, pending or overflow
	// failUntil is until when Check fails closed, UnixNano on the Config.Now
	// clock; 0 for not failing, forever for until rebuilt.
	failUntil atomic.Int64

	// lossMu guards lost: pending writes ristretto refused or evicted, by
	// key, as its callbacks report them; settleLost takes them out.
	lossMu sync.Mutex
	lost   map[uint64]*entry
	lostN  atomic.Int64

	dropped, rejected, evicted, repaired atomic.Uint64

	stop, stopped chan struct{} // the sweeper's
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
	s := &Store{
		cfg:        cfg,
		pending:    make(map[uint64]*entry),
		overflow:   make(map[uint64][]*entry),
		expiry:     make(map[int64][]uint64),
		lost:       make(map[uint64]*entry),
		anchorNow:  cfg.Now().UnixNano(),
		anchorWall: time.Now(),
		stop:       make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	s.filter.Store(newFilter(minFilterKeys))
	for k := range numKinds {
		s.keySeeds[k], s.sumSeeds[k] = maphash.MakeSeed(), maphash.MakeSeed()
	}
	// A hold is the bound plus a span fixed per kind (events' rule).
	zero := time.Unix(0, 0)
	for k, e := range map[kind]events.Event{
		kindToken:   {Kind: events.KindToken, Expiry: zero},
		kindSession: {Kind: events.KindSession, IssuedAt: zero},
		kindSubject: {Kind: events.KindSubject, Epoch: zero},
		kindScope:   {Kind: events.KindScope, Epoch: zero},
	} {
		s.holdAfter[k] = e.HoldUntil(cfg.MaxTokenLifetime, cfg.Leeway).UnixNano()
	}
	c, err := ristretto.NewCache(&ristretto.Config[uint64, *entry]{
		NumCounters: numCounters,
		// The store admits at most Capacity entries (see add), so the
		// policy always finds room; any eviction or refusal it still makes
		// is reported to onEvict / onReject and fails closed.
		MaxCost:            int64(cfg.Capacity),
		IgnoreInternalCost: true,
		BufferItems:        64,
		// Keys are already 64-bit hashes; the entry's sum is compared on
		// every hit, which is the conflict check.
		KeyToHash: func(k uint64) (uint64, uint64) { return k, 0 },
		OnEvict:   s.onEvict,
		OnReject:  s.onReject,
	})
	if err != nil {
		return nil, fmt.Errorf("verifier: revocation cache: %w", err)
	}
	s.cache = c
	go s.sweeper()
	return s, nil
}

// Close stops the sweeper and the cache's goroutines. Apply and Sync then
// return [ErrClosed], and Check fails closed with it. Close is idempotent.
func (s *Store) Close() {
	if s.closed.Swap(true) {
		return
	}
	close(s.stop)
	<-s.stopped
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache.Close()
}

// hash is the key of the entry of (k, iss, id) in the cache; sum its second
// hash. An issuer-scoped id hashes as iss, a zero byte, id: identifiers and
// issuers hold no control character, so a scoped and an unscoped id, or two
// issuers' ids, are never the same bytes.
func (s *Store) hash(k kind, iss, id string) uint64 { return hashOf(s.keySeeds[k], iss, id) }

func (s *Store) sum(k kind, iss, id string) uint64 {
	return hashOf(s.sumSeeds[k], iss, id)&^kindBits | uint64(k)
}

// scopeKeys are the key and sum of the scope (claim, value) scoped to iss:
// the hash and sum of the id claim, a zero byte, value ([identify]),
// written in parts so that Check builds no string.
func (s *Store) scopeKeys(iss, claim, value string) (h, sum uint64) {
	part := func(seed maphash.Seed) uint64 {
		var m maphash.Hash
		m.SetSeed(seed)
		if iss != "" {
			m.WriteString(iss)
			m.WriteByte(0)
		}
		m.WriteString(claim)
		m.WriteByte(0)
		m.WriteString(value)
		return m.Sum64()
	}
	return part(s.keySeeds[kindScope]), part(s.sumSeeds[kindScope])&^kindBits | uint64(kindScope)
}

func hashOf(seed maphash.Seed, iss, id string) uint64 {
	if iss == "" {
		return maphash.String(seed, id)
	}
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(iss)
	h.WriteByte(0)
	h.WriteString(id)
	return h.Sum64()
}

// holdOf returns until when e matters, UnixNano on the Config.Now clock.
func (s *Store) holdOf(e *entry) int64 {
	k := e.kind()
	if k == kindKey {
		return forever
	}
	return e.bound + s.holdAfter[k]
}

// Check reports whether t is revoked: nil, or an error wrapping exactly one
// of [ErrKeyRevoked], [ErrTokenRevoked], [ErrSessionRevoked] (looked up in
// that order), [ErrSubjectRevoked] or [ErrScopeRevoked] (whichever epoch is
// the largest), [ErrOverCapacity] while the
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
	if e := s.lookup(f, kindKey, t.KID, t.Iss); e != nil {
		return revoked(ErrKeyRevoked, e)
	}
	if e := s.lookup(f, kindToken, t.JTI, t.Iss); e != nil {
		return revoked(ErrTokenRevoked, e)
	}
	if e := s.lookup(f, kindSession, t.SID, t.Iss); e != nil {
		return revoked(ErrSessionRevoked, e)
	}
	// Epochs: the subject's (for every issuer, for the token's) and every
	// epoch scope the token carries (its issuer, its scope claims). The
	// largest of them decides, in one comparison.
	e := s.lookup(f, kindSubject, t.Sub, t.Iss)
	if s.seen[kindScope].Load() || s.scoped[kindScope].Load() {
		e = largest(e, s.lookupScope(f, "", events.ScopeIssuer, t.Iss))
		for _, c := range t.Scopes {
			e = largest(e, s.lookupScope(f, "", c.Claim, c.Value))
			e = largest(e, s.lookupScope(f, t.Iss, c.Claim, c.Value))
		}
	}
	if e != nil && events.EpochRevokes(t.IssuedAt, time.Unix(0, e.bound)) {
		if e.kind() == kindScope {
			return revoked(ErrScopeRevoked, e)
		}
		return revoked(ErrSubjectRevoked, e)
	}
	return nil
}

// largest returns whichever of two entries ranks first by the merge rule
// (for epochs: the later epoch), either when one is nil.
func largest(a, b *entry) *entry {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return combine(a, b)
}

// lookupScope returns the entry of the epoch scope (claim, value) scoped to
// iss ("" for every issuer), or nil.
func (s *Store) lookupScope(f *filter, iss, claim, value string) *entry {
	if value == "" {
		return nil
	}
	if iss == "" && !s.seen[kindScope].Load() || iss != "" && !s.scoped[kindScope].Load() {
		return nil
	}
	h, sum := s.scopeKeys(iss, claim, value)
	if !f.mayContain(h) {
		return nil
	}
	return s.find(h, sum)
}

func revoked(sentinel error, e *entry) error {
	r := e.reasonText()
	if r == "" {
		return sentinel
	}
	return fmt.Errorf("%w (reason: %s)", sentinel, r)
}

// lookup returns the entry of kind k restricting id of a token of issuer
// iss: the unscoped entry of id or the one scoped to iss, whichever ranks
// first by the merge rule when both exist; nil when neither does. Kinds
// never applied are not looked up, nor keys f does not hold.
func (s *Store) lookup(f *filter, k kind, id, iss string) *entry {
	if id == "" {
		return nil
	}
	var all, own *entry
	if s.seen[k].Load() {
		all = s.lookupKey(f, k, "", id)
	}
	if iss != "" && s.scoped[k].Load() {
		own = s.lookupKey(f, k, iss, id)
	}
	return largest(all, own)
}

// lookupKey returns the entry of (k, iss, id) if f may hold its key, or nil.
func (s *Store) lookupKey(f *filter, k kind, iss, id string) *entry {
	h := s.hash(k, iss, id)
	if !f.mayContain(h) {
		return nil
	}
	return s.find(h, s.sum(k, iss, id))
}

// find returns the entry of key h and sum sum, newest first: the pending
// write, else what the cache shows, else an overflow entry.
func (s *Store) find(h, sum uint64) *entry {
	if s.pendingN.Load() > 0 {
		s.readMu.RLock()
		p, ok := s.pending[h]
		s.readMu.RUnlock()
		if ok && p.sum == sum {
			return p
		}
	}
	if v, ok := s.cache.Get(h); ok && v.sum == sum {
		return v
	}
	if s.overflowN.Load() > 0 {
		s.readMu.RLock()
		defer s.readMu.RUnlock()
		for _, o := range s.overflow[h] {
			if o.sum == sum {
				return o
			}
		}
	}
	return nil
}

// Apply merges e into the state and reports whether that changed anything.
// Check enforces e as soon as Apply returns. An event whose hold has already
// passed (on Config.Now) is ignored. The error wraps [ErrOverCapacity] if e
// is live but could not be held (the store then fails closed),
// [events.ErrInvalid] if e lacks what its kind needs, or [ErrClosed].
func (s *Store) Apply(e events.Event) (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return false, ErrClosed
	}
	k, id, err := identify(e)
	if err != nil {
		return false, err
	}
	iss := e.Issuer
	// A token is still accepted at exp+leeway itself, so a hold equal to
	// now still matters.
	if hold := e.HoldUntil(s.cfg.MaxTokenLifetime, s.cfg.Leeway); !hold.IsZero() && hold.Before(s.cfg.Now()) {
		return false, nil // every token it affects has expired
	}
	ne := &entry{sum: s.sum(k, iss, id)}
	if b := e.Bound(); !b.IsZero() {
		ne.bound = b.UnixNano()
	}
	if e.Reason != "" {
		ne.reason = unique.Make(e.Reason)
	}
	seen := &s.seen[k]
	if iss != "" {
		seen = &s.scoped[k]
	}
	if !seen.Load() {
		seen.Store(true)
	}
	changed, err = s.applyLocked(s.hash(k, iss, id), ne)
	if len(s.pending) >= maxPending {
		s.confirm()
	}
	if s.filter.Load().full() {
		s.rebuildFilter()
	}
	return changed, err
}

// applyLocked merges ne into the entry of its id, whose key is h, and writes
// the result if it changed. The caller holds mu.
func (s *Store) applyLocked(h uint64, ne *entry) (changed bool, err error) {
	s.settleLost()
	cur, occupied := s.current(h, ne.sum)
	if cur != nil {
		m := combine(cur, ne)
		if m == cur {
			return false, nil
		}
		if s.bucket(m) != s.bucket(cur) {
			s.schedule(h, m)
		}
		s.write(h, cur, m)
		return true, nil
	}
	// A new id: reserve one unit of capacity, or refuse and fail closed.
	if n := s.held.Add(1); n > int64(s.cfg.Capacity) {
		s.held.Add(-1)
		s.rejected.Add(1)
		s.failClosed(s.holdOf(ne))
		return true, fmt.Errorf("%w: %d revocations held", ErrOverCapacity, s.cfg.Capacity)
	}
	s.schedule(h, ne)
	if occupied {
		// Into the filter before the entry can be seen anywhere.
		s.filter.Load().add(h)
		s.readMu.Lock()
		s.overflow[h] = append(s.overflow[h], ne)
		s.overflowN.Store(int64(len(s.overflow)))
		s.readMu.Unlock()
		return true, nil
	}
	s.write(h, nil, ne)
	return true, nil
}

// current returns the entry of key h and sum sum, as the writer sees it, and
// whether the cache's slot h holds (or is about to hold) another id. The
// caller holds mu.
func (s *Store) current(h, sum uint64) (cur *entry, occupied bool) {
	// Every entry reachable under h, pending, cached or in overflow, had h
	// added to the filter first, and a rebuilt filter holds every key still
	// in a bucket: absent from the filter is absent everywhere, without
	// ristretto's look-up (most of a replay's Applies are of new ids).
	if !s.filter.Load().mayContain(h) {
		return nil, false
	}
	if p, ok := s.pending[h]; ok {
		if p.sum == sum {
			return p, false
		}
		occupied = true
	} else if v, ok := s.cache.Get(h); ok {
		if v.sum == sum {
			return v, false
		}
		occupied = true
	}
	for _, o := range s.overflow[h] {
		if o.sum == sum {
			return o, occupied
		}
	}
	return nil, occupied
}

// write replaces old (nil for a new id) by e under key h: in overflow if old
// is there, else in the cache, as a pending write until confirm sees it.
// At most one Set of a key is in flight: while h is pending, only the
// pending entry changes and confirm writes it. The caller holds mu.
func (s *Store) write(h uint64, old, e *entry) {
	// Into the filter before the entry can be seen anywhere.
	s.filter.Load().add(h)
	if old != nil {
		if os := s.overflow[h]; len(os) > 0 {
			for i, o := range os {
				if o == old {
					s.readMu.Lock()
					os[i] = e
					s.readMu.Unlock()
					return
				}
			}
		}
	}
	_, inFlight := s.pending[h]
	s.readMu.Lock()
	s.pending[h] = e
	s.pendingN.Store(int64(len(s.pending)))
	s.readMu.Unlock()
	if !inFlight {
		s.set(h, e)
	}
}

// set writes e under h, retrying until ristretto accepts the Set. A Set of a
// key the cache holds takes effect at once; a new key goes through
// ristretto's buffers. The caller holds mu.
func (s *Store) set(h uint64, e *entry) {
	for !s.cache.Set(h, e, 1) {
		// Dropped under contention: let ristretto drain, then retry.
		s.dropped.Add(1)
		s.cache.Wait()
	}
}

// bucket returns e's expiry bucket, or forever for no hold.
func (s *Store) bucket(e *entry) int64 {
	hold := s.holdOf(e)
	if hold == forever {
		return forever
	}
	return hold / bucketWidth
}

// schedule files key h under e's expiry bucket (or as a key revocation).
// The caller holds mu.
func (s *Store) schedule(h uint64, e *entry) {
	if b := s.bucket(e); b != forever {
		s.expiry[b] = append(s.expiry[b], h)
		return
	}
	s.keys = append(s.keys, h)
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
	case events.KindScope:
		if e.Epoch.IsZero() || e.Claim == "" {
			return 0, "", fmt.Errorf("verifier: revocation: %w: epoch or claim", events.ErrMissingField)
		}
		if e.ScopeValue == "" {
			return 0, "", fmt.Errorf("verifier: revocation: %w: scope id", events.ErrMissingField)
		}
		// Claims and values hold no control character: a zero byte
		// between them keeps (claim, value) pairs apart.
		return kindScope, e.Claim + "\x00" + e.ScopeValue, nil
	default:
		return 0, "", fmt.Errorf("verifier: revocation: %w: %q", events.ErrUnknownKind, e.Kind)
	}
	id := e.Value()
	if id == "" {
		return 0, "", fmt.Errorf("verifier: revocation: %w: %s id", events.ErrMissingField, e.Kind)
	}
	return k, id, nil
}

// confirm waits until ristretto has processed every Set made so far, then
// checks each pending write: a visible one leaves the pending map, one that
// an earlier value still hides is written over it (a Set of a held key takes
// effect at once), and one that vanished is written again. It reports
// whether any is still pending. The caller holds mu.
func (s *Store) confirm() (again bool) {
	s.cache.Wait()
	s.settleLost()
	cut := s.sweepNow() - expiryMargin
	for h, want := range s.pending {
		got, ok := s.cache.Get(h)
		switch {
		case ok && got == want:
		case ok:
			s.set(h, want)
			if got, _ = s.cache.Get(h); got != want {
				again = true
				continue
			}
		case s.holdOf(want) < cut:
			// Its hold passed while pending: nothing to write.
			s.held.Add(-1)
		default:
			// Accepted by Set, yet not in the cache: repair.
			s.repaired.Add(1)
			s.set(h, want)
			again = true
			continue
		}
		s.readMu.Lock()
		delete(s.pending, h)
		s.pendingN.Store(int64(len(s.pending)))
		s.readMu.Unlock()
	}
	return again
}

// Sync waits until every Apply that returned before the call is visible in
// the cache, repairing writes that vanished. It returns an error wrapping
// [ErrOverCapacity] while the store fails closed because a live revocation
// was lost or refused, or [ErrClosed].
func (s *Store) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	for range maxSyncRounds {
		if len(s.pending) == 0 {
			s.settleLost()
			return s.overCapacityErr()
		}
		if !s.confirm() {
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

// rebuildFilter replaces the filter, whose bits only accumulate, by one
// holding just the keys of entries that may still be held: every entry with
// a hold is in an expiry bucket, every key revocation in keys. It is sized
// for the entries held: 32 to 64 bits per key, 16 when it is next rebuilt. Check goes on with the old filter, a superset, until
// the swap. The caller holds mu.
func (s *Store) rebuildFilter() {
	held := s.held.Load()
	f := newFilter(int(held))
	for _, hs := range s.expiry {
		for _, h := range hs {
			f.add(h)
		}
	}
	for _, h := range s.keys {
		f.add(h)
	}
	// An entry whose hold grew is in several buckets, its key added as many
	// times to the same bits: count each held entry once, or duplicates
	// would make the new filter look full already.
	f.added.Store(held)
	s.filter.Store(f)
	s.rebuilds.Add(1)
}

// sweepNow is the instant up to which holds have passed: Config.Now, but no
// later than Config.Now at New plus the monotonic time since. With the real
// clock they agree; with an injected clock an entry outlives its hold on
// both (it lived for its hold on the wall clock before entries had their own
// buckets, and still does).
func (s *Store) sweepNow() int64 {
	return min(s.cfg.Now().UnixNano(), s.anchorNow+int64(time.Since(s.anchorWall)))
}

// sweeper deletes passed expiry buckets every sweepInterval until Close.
func (s *Store) sweeper() {
	defer close(s.stopped)
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep deletes every entry whose hold passed at least expiryMargin ago,
// from the buckets that end before then.
func (s *Store) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return
	}
	cut := s.sweepNow() - expiryMargin
	var due []int64
	for b := range s.expiry {
		if (b+1)*bucketWidth <= cut {
			due = append(due, b)
		}
	}
	if len(due) == 0 {
		return
	}
	if len(s.pending) > 0 {
		s.confirm()
	}
	s.settleLost()
	for _, b := range due {
		for _, h := range s.expiry[b] {
			s.expire(h, cut)
		}
		delete(s.expiry, b)
	}
	// After a burst has expired, give its filter's memory back.
	if f := s.filter.Load(); f.keys > minFilterKeys && s.held.Load()*8 < f.keys {
		s.rebuildFilter()
	}
}

// expire deletes the entries of key h whose hold is before cut. An entry
// still pending stays: it is in a later bucket, or confirm drops it. The
// caller holds mu.
func (s *Store) expire(h uint64, cut int64) {
	if _, ok := s.pending[h]; !ok {
		if v, ok := s.cache.Get(h); ok && s.holdOf(v) < cut {
			s.cache.Del(h)
			s.held.Add(-1)
		}
	}
	os := s.overflow[h]
	if len(os) == 0 {
		return
	}
	keep := os[:0:0]
	for _, o := range os {
		if s.holdOf(o) < cut {
			s.held.Add(-1)
			continue
		}
		keep = append(keep, o)
	}
	s.readMu.Lock()
	if len(keep) == 0 {
		delete(s.overflow, h)
	} else {
		s.overflow[h] = keep
	}
	s.overflowN.Store(int64(len(s.overflow)))
	s.readMu.Unlock()
}

// settleLost takes out the pending writes that ristretto reported refused or
// evicted: the store fails closed until their holds have passed (a pending
// write newer than the lost one included). The caller holds mu.
func (s *Store) settleLost() {
	if s.lostN.Load() == 0 {
		return
	}
	s.lossMu.Lock()
	lost := s.lost
	s.lost = make(map[uint64]*entry)
	s.lostN.Store(0)
	s.lossMu.Unlock()
	for h := range lost {
		p, ok := s.pending[h]
		if !ok {
			continue
		}
		s.failClosed(s.holdOf(p))
		s.held.Add(-1)
		s.readMu.Lock()
		delete(s.pending, h)
		s.pendingN.Store(int64(len(s.pending)))
		s.readMu.Unlock()
	}
}

// lose records that ristretto refused or evicted e, the value of key h. If
// the write is pending, settleLost takes it out and counts it; otherwise it
// left the cache now and is uncounted here. It runs on ristretto's
// goroutine: it must not take mu.
func (s *Store) lose(h uint64, e *entry) {
	s.readMu.RLock()
	_, pending := s.pending[h]
	s.readMu.RUnlock()
	if !pending {
		s.held.Add(-1)
		return
	}
	s.lossMu.Lock()
	s.lost[h] = e
	s.lostN.Store(int64(len(s.lost)))
	s.lossMu.Unlock()
}

// onEvict is ristretto's OnEvict. With no TTLs, it is only ever called for
// a policy victim, which the store's sizing should make impossible.
func (s *Store) onEvict(it *ristretto.Item[*entry]) {
	if s.closed.Load() {
		return // Close clears the cache
	}
	e := it.Value
	if e == nil {
		// The policy evicted a key the store no longer had: nothing tells
		// what it was, so it may have been a key revocation.
		s.evicted.Add(1)
		s.failClosed(forever)
		return
	}
	if hold := s.holdOf(e); hold >= s.sweepNow()-expiryMargin {
		s.evicted.Add(1)
		s.failClosed(hold)
	}
	s.lose(it.Key, e)
}

// onReject is ristretto's OnReject: the policy refused a new entry.
func (s *Store) onReject(it *ristretto.Item[*entry]) {
	if s.closed.Load() {
		return
	}
	e := it.Value
	if v, ok := s.cache.Get(it.Key); ok && v == e {
		return // not lost after all
	}
	if hold := s.holdOf(e); hold >= s.sweepNow()-expiryMargin {
		s.rejected.Add(1)
		s.failClosed(hold)
	}
	s.readMu.RLock()
	_, pending := s.pending[it.Key]
	s.readMu.RUnlock()
	if pending {
		s.lossMu.Lock()
		s.lost[it.Key] = e
		s.lostN.Store(int64(len(s.lost)))
		s.lossMu.Unlock()
	}
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
