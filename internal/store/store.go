// Package store is jwtrevoke's Redis schema: the revocation records the
// revoker keeps beside the stream (so a revocation can be looked up without
// the stream), the idempotency records of revocation requests, and the
// issuer's sessions with their rotating refresh tokens.
//
// It works on a go-redis UniversalClient, so one setting moves it from a
// single server to Sentinel or Cluster: every multi-key operation touches
// only keys of one hash slot (the session id is the hash tag).
//
// Key layout (Prefix "jwtrevoke" by default):
//
//	<p>:rev:jti:<jti>       string, the token event (JSON); TTL: token exp + leeway
//	<p>:rev:sub:<sub>       string, the subject's logout epoch (Unix ns, max-merged); TTL: Retention
//	<p>:rev:kid:<kid>       string, the key event (JSON); no TTL
//	<p>:{<sid>}:session     hash, the session: sub, claims, generation, current and previous
//	                        refresh-token hashes, rotation time, expiry, revoked flag
//	                        (a revoked session is kept, flagged, for Retention)
//	<p>:{<sid>}:used        set of every retired refresh-token hash (reuse detection)
//	<p>:idem:<key>          string, the event a revocation request produced (JSON); TTL: IdempotencyTTL
//
// Times are kept as Unix nanoseconds. Lua scripts make every
// read-modify-write atomic (subject epochs, session rotation, idempotency).
// Redis 7.0 or newer is required (PEXPIREAT ... GT).
//
// A Store is safe for concurrent use.
package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtrevoke/jwtrevoke/internal/revocation"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// Errors.
var (
	// ErrNotFound: no such session (never created, expired or removed).
	ErrNotFound = errors.New("store: not found")
	// ErrSessionRevoked: the session was revoked (logout, reuse detected).
	ErrSessionRevoked = errors.New("store: session revoked")
	// ErrReuse: a retired refresh token was presented outside the grace
	// window; the session has been flagged revoked by the same operation.
	ErrReuse = errors.New("store: refresh token reuse detected")
	// ErrInvalidToken: the presented refresh token matches no generation of
	// the session (forged or garbled). Nothing is changed.
	ErrInvalidToken = errors.New("store: refresh token does not match")
)

// Config configures a Store.
type Config struct {
	// Client is the Redis client (redis.NewUniversalClient). Required.
	Client redis.UniversalClient
	// Prefix of every key; default "jwtrevoke".
	Prefix string
	// Retention is how long session and subject records outlive their last
	// use: at least the longest refresh-token lifetime. Default 30 days.
	Retention time.Duration
}

// Store reads and writes jwtrevoke's records in Redis.
type Store struct {
	rdb       redis.UniversalClient
	prefix    string
	retention time.Duration
}

// Defaults of [Config].
const (
	defaultPrefix    = "jwtrevoke"
	defaultRetention = 30 * 24 * time.Hour
)

// New validates cfg and returns a Store. It does not contact Redis.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("store: config: client is required")
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = defaultPrefix
	}
	// A brace in the prefix would become the cluster hash tag and put
	// every key in one slot, or split a session's keys apart.
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("store: config: prefix %q must not contain { or }", prefix)
	}
	retention := cfg.Retention
	if retention == 0 {
		retention = defaultRetention
	}
	if retention < time.Millisecond {
		return nil, fmt.Errorf("store: config: retention must be at least 1ms, got %s", retention)
	}
	return &Store{rdb: cfg.Client, prefix: prefix, retention: retention}, nil
}

// Ping checks that Redis answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

func (s *Store) jtiKey(jti string) string  { return s.prefix + ":rev:jti:" + jti }
func (s *Store) subKey(sub string) string  { return s.prefix + ":rev:sub:" + sub }
func (s *Store) kidKey(kid string) string  { return s.prefix + ":rev:kid:" + kid }
func (s *Store) idemKey(key string) string { return s.prefix + ":idem:" + key }

// sessionKeys returns the session hash and its set of retired hashes: the
// sid is their hash tag, so both live in one slot.
func (s *Store) sessionKeys(sid string) []string {
	tag := s.prefix + ":{" + sid + "}:"
	return []string{tag + "session", tag + "used"}
}

// nanos formats t as Unix nanoseconds; t must lie between 1970 and 2262
// (the scripts compare unsigned decimals; int64 nanoseconds end in 2262).
func nanos(what string, t time.Time) (string, error) {
	if t.Before(time.Unix(0, 0)) || t.After(time.Unix(0, math.MaxInt64)) {
		return "", fmt.Errorf("store: %s %s out of range (1970 to 2262)", what, t.Format(time.RFC3339Nano))
	}
	return strconv.FormatInt(t.UnixNano(), 10), nil
}

func parseNanos(v string) (time.Time, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("store: bad time %q in redis: %w", v, err)
	}
	return time.Unix(0, n), nil
}

// millis converts d to whole milliseconds for PX and PEXPIRE, at least 1.
func millis(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// --- revocation records (the revoker writes them; the issuer, introspection
// and the verifier's stale fallback read them) ---

// RaiseEpoch sets the subject's logout epoch to max(now, recorded + 1ns)
// atomically and returns it. The revoker publishes this epoch, so the
// epochs it publishes for a subject only ever grow, whatever its clock does.
func (s *Store) RaiseEpoch(ctx context.Context, sub string, now time.Time) (time.Time, error) {
	if sub == "" {
		return time.Time{}, errors.New("store: raise epoch: empty subject")
	}
	n, err := nanos("now", now)
	if err != nil {
		return time.Time{}, err
	}
	v, err := scriptRaiseEpoch.Run(ctx, s.rdb, []string{s.subKey(sub)}, n, millis(s.retention)).Text()
	if err != nil {
		return time.Time{}, fmt.Errorf("store: raise epoch: %w", err)
	}
	return parseNanos(v)
}

// Record stores the restriction of a validated event, merging
// monotonically: a token or key event is stored; a session event flags the
// session revoked (creating the flag if the session has no refresh token);
// a subject event raises the recorded epoch to at least e.Epoch. leeway is
// the verifiers' leeway (token records live until exp + leeway).
func (s *Store) Record(ctx context.Context, e events.Event, leeway time.Duration) error {
	raw, err := events.Encode(e) // validates
	if err != nil {
		return fmt.Errorf("store: record: %w", err)
	}
	switch e.Kind {
	case events.KindToken:
		until := e.Expiry.Add(leeway).UnixMilli()
		err = scriptRecordToken.Run(ctx, s.rdb, []string{s.jtiKey(e.JTI)}, raw, until).Err()
	case events.KindKey:
		err = s.rdb.SetNX(ctx, s.kidKey(e.KID), raw, 0).Err()
	case events.KindSession:
		return s.RevokeSession(ctx, e.SID)
	case events.KindSubject:
		var n string
		if n, err = nanos("epoch", e.Epoch); err != nil {
			return err
		}
		err = scriptMaxEpoch.Run(ctx, s.rdb, []string{s.subKey(e.Sub)}, n, millis(s.retention)).Err()
	default: // Encode refuses unknown kinds; kept for a future kind
		return fmt.Errorf("store: record: kind %q not handled", e.Kind)
	}
	if err != nil {
		return fmt.Errorf("store: record %s event: %w", e.Kind, err)
	}
	return nil
}

// Query is what Check needs to know of a token.
type Query struct {
	JTI, SID, Sub, KID string
	IssuedAt           time.Time
}

// Check reports whether a token is revoked by a record: nil when none of its
// jti, sid, subject epoch (iat not after it) or kid is, an error wrapping
// the verifier's sentinel (revocation.ErrTokenRevoked, ErrSessionRevoked,
// ErrSubjectRevoked, ErrKeyRevoked) when one is, and any other error when
// Redis cannot answer. One round trip per hash slot involved.
func (s *Store) Check(ctx context.Context, q Query) error {
	var kid, jti, sid, sub *redis.StringCmd
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if q.KID != "" {
			kid = p.Get(ctx, s.kidKey(q.KID))
		}
		if q.JTI != "" {
			jti = p.Get(ctx, s.jtiKey(q.JTI))
		}
		if q.SID != "" {
			sid = p.HGet(ctx, s.sessionKeys(q.SID)[0], "revoked")
		}
		if q.Sub != "" {
			sub = p.Get(ctx, s.subKey(q.Sub))
		}
		return nil
	})
	if len(cmds) == 0 {
		return nil // nothing to look up
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: check: %w", err)
	}
	// found reports whether the command found its key; a failure other
	// than "no such key" has already been returned as the pipeline's error,
	// but each command is checked again rather than trusting that.
	found := func(c *redis.StringCmd) (bool, error) {
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
	// The verifier's order: key, token, session, subject.
	if ok, err := found(kid); err != nil || ok {
		return errOr(err, fmt.Errorf("store: kid recorded revoked: %w", revocation.ErrKeyRevoked))
	}
	if ok, err := found(jti); err != nil || ok {
		return errOr(err, fmt.Errorf("store: jti recorded revoked: %w", revocation.ErrTokenRevoked))
	}
	if ok, err := found(sid); err != nil {
		return err
	} else if ok && sid.Val() == "1" {
		return fmt.Errorf("store: sid recorded revoked: %w", revocation.ErrSessionRevoked)
	}
	ok, err := found(sub)
	if err != nil || !ok {
		return err
	}
	epoch, err := parseNanos(sub.Val())
	if err != nil {
		return err
	}
	// iat <= epoch is revoked: a token minted in the same nanosecond as
	// the logout predates it. A zero iat cannot prove it is newer.
	if q.IssuedAt.IsZero() || !q.IssuedAt.After(epoch) {
		return fmt.Errorf("store: subject logged out at or after iat: %w", revocation.ErrSubjectRevoked)
	}
	return nil
}

// errOr returns err if it is not nil, else revoked.
func errOr(err, revoked error) error {
	if err != nil {
		return err
	}
	return revoked
}

// SubjectEpoch returns the subject's recorded logout epoch; zero if none.
func (s *Store) SubjectEpoch(ctx context.Context, sub string) (time.Time, error) {
	v, err := s.rdb.Get(ctx, s.subKey(sub)).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: subject epoch: %w", err)
	}
	return parseNanos(v)
}

// --- idempotency (revoker) ---

// Remember stores ev under the idempotency key unless the key already holds
// an event, and returns the event the key holds and whether it was stored
// now. A retried request thus publishes the same event (same id, so the
// stream stores it once).
func (s *Store) Remember(ctx context.Context, key string, ev events.Event, ttl time.Duration) (events.Event, bool, error) {
	if key == "" {
		return events.Event{}, false, errors.New("store: remember: empty idempotency key")
	}
	if ttl <= 0 {
		return events.Event{}, false, fmt.Errorf("store: remember: ttl must be > 0, got %s", ttl)
	}
	raw, err := events.Encode(ev)
	if err != nil {
		return events.Event{}, false, fmt.Errorf("store: remember: %w", err)
	}
	r, err := scriptRemember.Run(ctx, s.rdb, []string{s.idemKey(key)}, raw, millis(ttl)).Slice()
	if err != nil {
		return events.Event{}, false, fmt.Errorf("store: remember: %w", err)
	}
	stored, _ := r[0].(int64)
	held, _ := r[1].(string)
	got, err := events.Decode([]byte(held))
	if err != nil {
		return events.Event{}, false, fmt.Errorf("store: remember: event held under the key: %w", err)
	}
	return got, stored == 1, nil
}

// --- sessions and refresh tokens (issuer) ---

// Session is one login: the subject, the extra claims its access tokens
// carry, and its refresh-token generation.
type Session struct {
	ID         string
	Subject    string
	Claims     map[string]any // extra claims for access tokens; JSON-encodable
	Generation int64          // 1 for the first refresh token, +1 per rotation
	CreatedAt  time.Time
	ExpiresAt  time.Time // the current refresh token's expiry
	Revoked    bool
}

// CreateSession stores a new session whose first refresh token has the
// given hash (SHA-256 of the token; the token itself is never stored).
//
// It fails, changing nothing, if a record of sess.ID exists (even one that
// holds only a revoked flag). sess.ID, Subject, CreatedAt and ExpiresAt are
// required; a zero Generation is stored as 1. Times are kept to the
// nanosecond (from 1970 to 2262); Claims come back from JSON, so numbers
// as float64.
func (s *Store) CreateSession(ctx context.Context, sess Session, tokenHash []byte) error {
	switch {
	case sess.ID == "":
		return errors.New("store: create session: empty id")
	case sess.Subject == "":
		return errors.New("store: create session: empty subject")
	case len(tokenHash) == 0:
		return errors.New("store: create session: empty token hash")
	}
	created, err := nanos("created_at", sess.CreatedAt)
	if err != nil {
		return err
	}
	exp, err := nanos("expires_at", sess.ExpiresAt)
	if err != nil {
		return err
	}
	claims, err := json.Marshal(sess.Claims)
	if err != nil {
		return fmt.Errorf("store: create session: claims: %w", err)
	}
	gen := max(sess.Generation, 1)
	revoked := ""
	if sess.Revoked {
		revoked = "1"
	}
	ttl := millis(max(s.retention, sess.ExpiresAt.Sub(sess.CreatedAt)))
	n, err := scriptCreateSession.Run(ctx, s.rdb, s.sessionKeys(sess.ID),
		sess.Subject, claims, gen, hex.EncodeToString(tokenHash), created, exp, revoked, ttl).Int64()
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("store: create session %q: already exists", sess.ID)
	}
	return nil
}

// Rotation is the result of a successful Rotate.
type Rotation struct {
	Session Session // after the operation
	// Retry is true when the presented token was the one rotated just
	// before, inside the grace window: nothing changed, and the caller must
	// hand out the same successor again (the issuer derives successors
	// deterministically, so it can).
	Retry bool
}

// Rotate atomically (one Lua script on the session's hash slot) replaces
// the session's current refresh token, whose hash must be presented, by the
// successor hash, with a new expiry:
//
//   - presented == current, session live and unexpired: rotated,
//     Generation+1, the old hash retired;
//   - presented == previous, rotated less than grace ago: Retry, no change;
//   - presented retired otherwise (an older generation, or the previous one
//     after the grace window): the session is flagged revoked, ErrReuse;
//   - session revoked: ErrSessionRevoked; expired or missing: ErrNotFound;
//   - presented unknown: ErrInvalidToken, nothing changed.
func (s *Store) Rotate(ctx context.Context, sid string, presented, successor []byte, now time.Time, grace, ttl time.Duration) (Rotation, error) {
	switch {
	case sid == "":
		return Rotation{}, errors.New("store: rotate: empty session id")
	case len(presented) == 0 || len(successor) == 0:
		return Rotation{}, errors.New("store: rotate: empty token hash")
	case grace < 0:
		return Rotation{}, fmt.Errorf("store: rotate: grace must be >= 0, got %s", grace)
	case ttl <= 0:
		return Rotation{}, fmt.Errorf("store: rotate: ttl must be > 0, got %s", ttl)
	}
	nowS, err := nanos("now", now)
	if err != nil {
		return Rotation{}, err
	}
	// Clamped at 1970 so the script compares non-negative numbers only.
	cutoff, err := nanos("grace cutoff", maxTime(now.Add(-grace), time.Unix(0, 0)))
	if err != nil {
		return Rotation{}, err
	}
	exp, err := nanos("expiry", now.Add(ttl))
	if err != nil {
		return Rotation{}, err
	}
	r, err := scriptRotate.Run(ctx, s.rdb, s.sessionKeys(sid),
		hex.EncodeToString(presented), hex.EncodeToString(successor), nowS, cutoff, exp,
		millis(max(s.retention, ttl)), millis(s.retention)).Slice()
	if err != nil {
		return Rotation{}, fmt.Errorf("store: rotate: %w", err)
	}
	outcome, _ := r[0].(string)
	switch outcome {
	case rotRotated, rotRetry:
		sess, err := parseSession(sid, r[1:])
		if err != nil {
			return Rotation{}, err
		}
		return Rotation{Session: sess, Retry: outcome == rotRetry}, nil
	case rotReuse:
		return Rotation{}, ErrReuse
	case rotRevoked:
		return Rotation{}, ErrSessionRevoked
	case rotNotFound:
		return Rotation{}, ErrNotFound
	case rotInvalid:
		return Rotation{}, ErrInvalidToken
	}
	return Rotation{}, fmt.Errorf("store: rotate: unexpected reply %v", r)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// parseSession reads a session from HGETALL's flat field, value list.
func parseSession(sid string, kv []any) (Session, error) {
	f := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		v, _ := kv[i+1].(string)
		f[k] = v
	}
	return sessionFromFields(sid, f)
}

func sessionFromFields(sid string, f map[string]string) (Session, error) {
	if f["gen"] == "" {
		// No record, or only a revoked flag (RevokeSession of a session
		// that had none): no session.
		return Session{}, ErrNotFound
	}
	sess := Session{ID: sid, Subject: f["sub"], Revoked: f["revoked"] == "1"}
	var err error
	if sess.Generation, err = strconv.ParseInt(f["gen"], 10, 64); err != nil {
		return Session{}, fmt.Errorf("store: session %q: bad generation: %w", sid, err)
	}
	if sess.CreatedAt, err = parseNanos(f["created"]); err != nil {
		return Session{}, fmt.Errorf("store: session %q: created: %w", sid, err)
	}
	if sess.ExpiresAt, err = parseNanos(f["exp"]); err != nil {
		return Session{}, fmt.Errorf("store: session %q: expiry: %w", sid, err)
	}
	if c := f["claims"]; c != "" && c != "null" {
		if err := json.Unmarshal([]byte(c), &sess.Claims); err != nil {
			return Session{}, fmt.Errorf("store: session %q: claims: %w", sid, err)
		}
	}
	return sess, nil
}

// GetSession returns the session (revoked ones too); ErrNotFound if none.
//
// A sid known only by its revoked flag (revoked while it had no refresh
// token) is not a session: ErrNotFound; [Store.Check] still reports it.
func (s *Store) GetSession(ctx context.Context, sid string) (Session, error) {
	f, err := s.rdb.HGetAll(ctx, s.sessionKeys(sid)[0]).Result()
	if err != nil {
		return Session{}, fmt.Errorf("store: get session: %w", err)
	}
	return sessionFromFields(sid, f)
}

// RevokeSession flags the session revoked: no refresh token of it rotates
// again. Idempotent; works for sessions that have no record yet.
//
// The record is kept for at least Retention from now.
func (s *Store) RevokeSession(ctx context.Context, sid string) error {
	if sid == "" {
		return errors.New("store: revoke session: empty session id")
	}
	if err := scriptRevokeSession.Run(ctx, s.rdb, s.sessionKeys(sid)[:1], millis(s.retention)).Err(); err != nil {
		return fmt.Errorf("store: revoke session: %w", err)
	}
	return nil
}
