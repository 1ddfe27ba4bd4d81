package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// revTag is the hash tag of every revocation key: one slot, so [Store.Record]
// writes the record, the idempotency record and the outbox entry atomically.
func (s *Store) revTag() string { return "{" + s.prefix + ":rev}:" }

// idKey is the record key of an identifier of a kind ("jti", "sid", "sub",
// "kid", or an epoch scope's name, [scopeName]), for every issuer when iss is
// empty, else scoped to iss:
// {p:rev}:sid:<sid> and {p:rev}:iss.<base64url(iss)>:sid:<sid>. The issuer is
// encoded so that no issuer and identifier can spell another pair's key.
func (s *Store) idKey(iss, name, id string) string {
	if iss == "" {
		return s.revTag() + name + ":" + id
	}
	return s.revTag() + "iss." + base64.RawURLEncoding.EncodeToString([]byte(iss)) + ":" + name + ":" + id
}

// scopeName is the name an epoch scope's records are kept under:
// "scope." and the claim in base64url, so that no claim (which may hold a
// colon) and value can spell another pair's key.
func scopeName(claim string) string {
	return "scope." + base64.RawURLEncoding.EncodeToString([]byte(claim))
}

// idemKey scopes an idempotency key by its caller, so one credential holder
// cannot claim another's key.
func (s *Store) idemKey(caller, key string) string {
	return s.revTag() + "idem:" + caller + ":" + key
}

func (s *Store) outboxKeys() (events, queued, due string) {
	t := s.revTag()
	return t + "outbox:events", t + "outbox:queued", t + "outbox:due"
}

// recordKey is the key of ev's restriction.
func (s *Store) recordKey(ev events.Event) string {
	switch ev.Kind {
	case events.KindToken:
		return s.idKey(ev.Issuer, "jti", ev.JTI)
	case events.KindSession:
		return s.idKey(ev.Issuer, "sid", ev.SID)
	case events.KindSubject:
		return s.idKey(ev.Issuer, "sub", ev.Sub)
	case events.KindKey:
		return s.idKey(ev.Issuer, "kid", ev.KID)
	case events.KindScope:
		return s.idKey(ev.Issuer, scopeName(ev.Claim), ev.ScopeValue)
	}
	return ""
}

// DefaultIdempotencyTTL is how long an idempotency record lives unless
// [Idempotency].TTL says otherwise.
const DefaultIdempotencyTTL = 24 * time.Hour

// OutboxGrace is how long a freshly recorded event is left to the request
// that recorded it before any outbox drainer may publish it too.
const OutboxGrace = time.Second

// Idempotency names the idempotency record of a revocation request: the
// caller (a stable id of the credential it authenticated with) and its key.
type Idempotency struct {
	Caller, Key string
	// TTL of the record; zero means DefaultIdempotencyTTL.
	TTL time.Duration
}

// Recording is the result of [Store.Record].
type Recording struct {
	// Event is the event recorded, or, when Held is true, the event the
	// idempotency key already held (as stored); nothing was written then.
	Event events.Encoded
	// Held is true when the idempotency key already held an event.
	Held bool
	// First is true when nothing of the thing was recorded before this
	// event (no record of its jti, sid, subject or kid, live or not yet
	// expired): the stream then most likely holds no event for it either
	// ([events.ExpectFirst]).
	First bool
}

// Record stores the restriction of an encoded event (validated once, by
// [events.NewEncoded]; stored as its bytes) and enqueues it in the outbox,
// in one atomic step: whatever is recorded is also queued for
// the stream, so it reaches the stream even if the caller never publishes
// it (an outbox drainer does; see [Store.ClaimOutbox]).
//
// The restriction merges monotonically: a token record lives until the
// latest exp + leeway asked for; a session or key record is kept; a
// subject's or an epoch scope's epoch only grows. leeway is the verifiers' leeway.
//
// With idem (non-nil), the event is recorded only if the idempotency record
// is new, and is remembered under it in the same step; if the record already
// holds an event, nothing is written and that event is returned with Held
// set. The caller decides whether it answers the same request and records
// it again without idem (to refresh the outbox entry).
func (s *Store) Record(ctx context.Context, x events.Encoded, leeway time.Duration, idem *Idempotency) (Recording, error) {
	c, err := s.recordCall(x, leeway, idem, time.Now())
	if err != nil {
		return Recording{}, err
	}
	return recordReply(x, scriptRecord.Run(ctx, s.rdb, c.keys, c.args...))
}

// RecordAll records each of xs as [Store.Record] does without an
// idempotency record, all in one pipeline (one round trip): each event's
// record and outbox entry are still written in one atomic step, and each
// has its own result (recs[i], errs[i]). An event whose step failed is not
// recorded.
func (s *Store) RecordAll(ctx context.Context, xs []events.Encoded, leeway time.Duration) (recs []Recording, errs []error) {
	recs, errs = make([]Recording, len(xs)), make([]error, len(xs))
	calls := make([]scriptCall, 0, len(xs))
	at := make([]int, 0, len(xs)) // at[j] is the event of calls[j]
	now := time.Now()
	for i, x := range xs {
		c, err := s.recordCall(x, leeway, nil, now)
		if err != nil {
			errs[i] = err
			continue
		}
		calls, at = append(calls, c), append(at, i)
	}
	for j, cmd := range s.runAll(ctx, scriptRecord, calls) {
		i := at[j]
		recs[i], errs[i] = recordReply(xs[i], cmd)
	}
	return recs, errs
}

// recordCall is the call of scriptRecord that records x (see
// [Store.Record]); now is this host's clock, which the outbox's bookkeeping
// runs on.
func (s *Store) recordCall(x events.Encoded, leeway time.Duration, idem *Idempotency, now time.Time) (scriptCall, error) {
	if x.IsZero() {
		return scriptCall{}, fmt.Errorf("store: record: %w: no event", events.ErrInvalid)
	}
	ev, raw := x.Event(), x.Bytes()
	var param string
	var err error
	switch ev.Kind {
	case events.KindToken:
		param = strconv.FormatInt(ev.Expiry.Add(leeway).UnixMilli(), 10)
	case events.KindSubject, events.KindScope:
		if param, err = nanos("epoch", ev.Epoch); err != nil {
			return scriptCall{}, err
		}
	case events.KindSession, events.KindKey:
	default: // NewEncoded refuses unknown kinds; kept for a future kind
		return scriptCall{}, fmt.Errorf("store: record: kind %q not handled", ev.Kind)
	}
	evKey, queued, due := s.outboxKeys()
	idemKey, idemTTL := s.recordKey(ev), int64(0) // an unused key of the same slot
	if idem != nil {
		if idem.Caller == "" || idem.Key == "" {
			return scriptCall{}, errors.New("store: record: idempotency needs a caller and a key")
		}
		ttl := idem.TTL
		if ttl == 0 {
			ttl = DefaultIdempotencyTTL
		}
		if ttl < 0 {
			return scriptCall{}, fmt.Errorf("store: record: idempotency ttl must be > 0, got %s", ttl)
		}
		idemKey, idemTTL = s.idemKey(idem.Caller, idem.Key), millis(ttl)
	}
	ms := now.UnixMilli()
	return scriptCall{
		keys: []string{s.recordKey(ev), evKey, queued, due, idemKey},
		args: []any{string(ev.Kind), raw, ev.ID, ms, ms + OutboxGrace.Milliseconds(), param, millis(s.retention), idemTTL},
	}, nil
}

// recordReply reads scriptRecord's reply to the call that recorded x.
func recordReply(x events.Encoded, cmd *redis.Cmd) (Recording, error) {
	ev := x.Event()
	r, err := cmd.Slice()
	if err != nil {
		return Recording{}, fmt.Errorf("store: record %s event: %w", ev.Kind, err)
	}
	if len(r) < 2 {
		return Recording{}, fmt.Errorf("store: record: unexpected reply %v", r)
	}
	if stored, _ := r[0].(int64); stored == 1 {
		if len(r) != 3 {
			return Recording{}, fmt.Errorf("store: record: unexpected reply %v", r)
		}
		first, _ := r[2].(int64)
		return Recording{Event: x, First: first == 1}, nil
	}
	held, _ := r[1].(string)
	got, err := events.DecodeEncoded([]byte(held))
	if err != nil {
		return Recording{}, fmt.Errorf("store: record: event held under the idempotency key: %w", err)
	}
	return Recording{Event: got, Held: true}, nil
}

// Query is what Check needs to know of a token: the identifiers, epoch
// scopes and issue instant the revocation rules look at.
type Query = events.Token

// Check reports whether a token is revoked by a record, published to the
// stream or not, by the events' rules: nil when none of its jti, sid, kid,
// subject epoch or epoch scopes (its issuer, q.Scopes; [events.EpochRevokes]
// against the largest epoch) is, for every issuer or for the token's
// (q.Iss), an error wrapping the reason ([events.ErrTokenRevoked],
// ErrSessionRevoked, ErrSubjectRevoked, ErrScopeRevoked, ErrKeyRevoked) when
// one is, and any other error when Redis cannot answer. A session counts as
// revoked by its revocation record or by the session's own revoked flag
// (refresh-token reuse sets it). One round trip per hash slot involved.
func (s *Store) Check(ctx context.Context, q Query) error {
	// The look-ups, in the verifier's order: key, token, session, then the
	// epochs.
	looks := append([]lookup{
		{name: "kid", id: q.KID, reason: events.ErrKeyRevoked},
		{name: "jti", id: q.JTI, reason: events.ErrTokenRevoked},
		{name: "sid", id: q.SID, reason: events.ErrSessionRevoked},
	}, epochLookups(q)...)
	var flag *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.get(ctx, p, q.Iss, looks)
		if q.SID != "" {
			flag = p.HGet(ctx, s.sessionKeys(q.SID)[0], "revoked")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: check: %w", err)
	}
	for _, l := range looks[:3] {
		for _, c := range l.cmds {
			if ok, err := found(c); err != nil || ok {
				return errOr(err, fmt.Errorf("store: %s recorded revoked: %w", l.name, l.reason))
			}
		}
		if l.name == "sid" {
			if ok, err := found(flag); err != nil {
				return err
			} else if ok && flag.Val() == "1" {
				return fmt.Errorf("store: session flagged revoked: %w", events.ErrSessionRevoked)
			}
		}
	}
	epoch, reason, err := largestEpoch(looks[3:])
	if err != nil {
		return err
	}
	if !epoch.IsZero() && events.EpochRevokes(q.IssuedAt, epoch) {
		return fmt.Errorf("store: logged out at or after iat: %w", reason)
	}
	return nil
}

// LogoutEpoch returns the largest logout epoch recorded for a token like q:
// of its subject and of its epoch scopes (its issuer, q.Scopes), for every
// issuer and for q.Iss; zero if none. A token of q's identities is revoked
// when [events.EpochRevokes] its iat against it: the issuer mints after it,
// and refuses to refresh a session that began at or before it.
func (s *Store) LogoutEpoch(ctx context.Context, q Query) (time.Time, error) {
	return s.epochOf(ctx, q.Iss, epochLookups(q))
}

// epochOf reads looks (for every issuer and, with iss, for iss) in one
// round trip and returns the largest epoch recorded; zero if none.
func (s *Store) epochOf(ctx context.Context, iss string, looks []lookup) (time.Time, error) {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.get(ctx, p, iss, looks)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return time.Time{}, fmt.Errorf("store: epoch: %w", err)
	}
	epoch, _, err := largestEpoch(looks)
	return epoch, err
}

// lookup is one identifier a check reads the records of.
type lookup struct {
	name, id string // idKey's name and identifier; nothing is read when id is ""
	reason   error  // the revocation a record of it means
	// unscoped: no record of it is scoped to an issuer.
	unscoped bool
	// cmds read the record for every issuer and the one for the token's.
	cmds [2]*redis.StringCmd
}

// epochLookups are the epochs a token's identities carry: its subject's,
// then its issuer's own scope (never itself scoped to an issuer:
// events.Event.Validate) and its scope claims'.
func epochLookups(q Query) []lookup {
	looks := make([]lookup, 0, 2+len(q.Scopes))
	looks = append(looks,
		lookup{name: "sub", id: q.Sub, reason: events.ErrSubjectRevoked},
		lookup{name: scopeName(events.ScopeIssuer), id: q.Iss, reason: events.ErrScopeRevoked, unscoped: true})
	for _, sc := range q.Scopes {
		looks = append(looks, lookup{name: scopeName(sc.Claim), id: sc.Value, reason: events.ErrScopeRevoked})
	}
	return looks
}

// get queues the reads of looks on p: each record for every issuer and,
// with iss, the one scoped to it.
func (s *Store) get(ctx context.Context, p redis.Pipeliner, iss string, looks []lookup) {
	for i := range looks {
		l := &looks[i]
		if l.id == "" {
			continue
		}
		l.cmds[0] = p.Get(ctx, s.idKey("", l.name, l.id))
		if iss != "" && !l.unscoped {
			l.cmds[1] = p.Get(ctx, s.idKey(iss, l.name, l.id))
		}
	}
}

// found reports whether the command found its key; a failure other than
// "no such key" has already been returned as the pipeline's error, but each
// command is checked again rather than trusting that.
func found(c *redis.StringCmd) (bool, error) {
	if c == nil {
		return false, nil
	}
	switch err := c.Err(); {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil):
		return false, nil
	default:
		return false, fmt.Errorf("store: check: %w", err)
	}
}

// largestEpoch returns the largest epoch the look-ups read and the reason
// of the one that holds it (on a tie the first, as in the verifier); zero
// if none.
func largestEpoch(looks []lookup) (epoch time.Time, reason, err error) {
	for _, l := range looks {
		for _, c := range l.cmds {
			ok, err := found(c)
			if err != nil {
				return time.Time{}, nil, err
			}
			if !ok {
				continue
			}
			e, err := parseNanos(c.Val())
			if err != nil {
				return time.Time{}, nil, err
			}
			if e.After(epoch) {
				epoch, reason = e, l.reason
			}
		}
	}
	return epoch, reason, nil
}

// errOr returns err if it is not nil, else revoked.
func errOr(err, revoked error) error {
	if err != nil {
		return err
	}
	return revoked
}

// SubjectEpoch returns the logout epoch recorded for the subject's tokens
// of issuer iss: the larger of the epoch for every issuer and the one scoped
// to iss; with iss empty, the epoch for every issuer alone. Zero if none.
func (s *Store) SubjectEpoch(ctx context.Context, iss, sub string) (time.Time, error) {
	return s.Epoch(ctx, events.Event{Kind: events.KindSubject, Sub: sub, Issuer: iss})
}

// Epoch returns the epoch recorded for what the subject or scope event ev
// logs out (its sub, or its claim and value), for the tokens of ev's
// issuer: the larger of the epoch for every issuer and, when ev has an
// issuer, the one scoped to it. Zero if none. Only ev's kind, identifier
// and issuer are read: a revoker asks it before it builds the event.
func (s *Store) Epoch(ctx context.Context, ev events.Event) (time.Time, error) {
	l, err := epochLookup(ev)
	if err != nil {
		return time.Time{}, err
	}
	return s.epochOf(ctx, ev.Issuer, []lookup{l})
}

// EpochAll returns [Store.Epoch] of each of evs (epochs[i], errs[i]), all
// read in one round trip.
func (s *Store) EpochAll(ctx context.Context, evs []events.Event) (epochs []time.Time, errs []error) {
	epochs, errs = make([]time.Time, len(evs)), make([]error, len(evs))
	looks := make([][]lookup, len(evs))
	for i, ev := range evs {
		l, err := epochLookup(ev)
		if err != nil {
			errs[i] = err
			continue
		}
		looks[i] = []lookup{l}
	}
	// The pipeline's error is the first of its reads'; each read keeps its
	// own, which largestEpoch checks.
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, l := range looks {
			if l != nil {
				s.get(ctx, p, evs[i].Issuer, l)
			}
		}
		return nil
	})
	for i, l := range looks {
		if l != nil {
			epochs[i], _, errs[i] = largestEpoch(l)
		}
	}
	return epochs, errs
}

// epochLookup is the look-up of what the subject or scope event ev logs
// out (see [Store.Epoch]).
func epochLookup(ev events.Event) (lookup, error) {
	switch ev.Kind {
	case events.KindSubject:
		return lookup{name: "sub", id: ev.Sub}, nil
	case events.KindScope:
		return lookup{name: scopeName(ev.Claim), id: ev.ScopeValue}, nil
	}
	return lookup{}, fmt.Errorf("store: epoch of a %s event: only subjects and scopes have one", ev.Kind)
}

// NextEpoch returns the epoch a new logout of a subject gets when recorded
// is its recorded epoch: now, or just after recorded if that is not before
// now, so that the epochs recorded for a subject strictly grow whatever the
// clocks do.
func NextEpoch(recorded, now time.Time) time.Time {
	if !recorded.IsZero() && !recorded.Before(now) {
		return recorded.Add(time.Nanosecond)
	}
	return now
}
