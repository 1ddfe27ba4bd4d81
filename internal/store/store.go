// Package store is jwtrevoke's Redis schema: the revocation records the
// revoker keeps beside the stream (so a revocation can be looked up without
// the stream), the idempotency records of revocation requests, and the
// issuer's sessions with their rotating refresh tokens.
//
// It works on a go-redis UniversalClient, so one setting moves it from a
// single server to Sentinel or Cluster: every multi-key operation touches
// only keys of one hash slot (the session id is the hash tag).
//
// Key layout (Prefix "jwtrevoke" by default). Every revocation key shares
// the hash tag {<p>:rev}, so a record, its idempotency record and its outbox
// entry live in one hash slot and are written in one atomic step on Redis
// Cluster too:
//
//	{<p>:rev}:jti:<jti>          string, the token event (JSON); TTL: token exp + leeway
//	{<p>:rev}:sid:<sid>          string, the session event (JSON); TTL: Retention
//	{<p>:rev}:sub:<sub>          string, the subject's logout epoch (Unix ns, max-merged); TTL: Retention
//	{<p>:rev}:kid:<kid>          string, the key event (JSON); no TTL
//	{<p>:rev}:idem:<caller>:<key> string, the event a revocation request produced (JSON); TTL: the idempotency TTL
//	{<p>:rev}:outbox:events      hash, event id -> event (JSON): recorded, not yet acknowledged by the stream
//	{<p>:rev}:outbox:queued      sorted set, event id by the Unix ms it was recorded (depth, oldest age)
//	{<p>:rev}:outbox:due         sorted set, event id by the Unix ms a drainer may next take it
//	<p>:{<sid>}:session          hash, the session: sub, claims, generation, current and previous
//	                             refresh-token hashes, rotation time, expiry, revoked flag
//	                             (a revoked session is kept, flagged, for Retention)
//	<p>:{<sid>}:used             set of every retired refresh-token hash (reuse detection)
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

// The revocation records, the idempotency records and the outbox are in
// revocations.go and outbox.go.

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
	c, err := s.revokeSessionCall(sid)
	if err != nil {
		return err
	}
	if err := scriptRevokeSession.Run(ctx, s.rdb, c.keys, c.args...).Err(); err != nil {
		return fmt.Errorf("store: revoke session: %w", err)
	}
	return nil
}

// revokeSessionCall is the call of scriptRevokeSession that flags sid.
func (s *Store) revokeSessionCall(sid string) (scriptCall, error) {
	if sid == "" {
		return scriptCall{}, errors.New("store: revoke session: empty session id")
	}
	return scriptCall{keys: s.sessionKeys(sid)[:1], args: []any{millis(s.retention)}}, nil
}
