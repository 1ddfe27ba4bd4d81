package store

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts. Each touches only the keys it is given (one hash slot),
// so it runs on Redis Cluster too; go-redis sends EVALSHA and falls back to
// EVAL when the server does not know the script yet.
//
// Times are Unix nanoseconds as decimal strings. Lua numbers are doubles,
// which hold such values only to about 256 ns, so scripts never do
// arithmetic on them: they compare them exactly with cmp, and the caller
// passes precomputed instants (the grace cutoff, the new expiry).

// luaCmp compares two non-negative decimal integers written without
// leading zeros: -1, 0 or 1. Byte by byte, so the locale plays no part.
const luaCmp = `
local function cmp(a, b)
  if #a ~= #b then
    if #a < #b then return -1 end
    return 1
  end
  for i = 1, #a do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      if x < y then return -1 end
      return 1
    end
  end
  return 0
end
`

// scriptRecord: KEYS the record, outbox events, outbox queued, outbox due,
// idempotency record (all of the revocation slot; the last one unused when
// ARGV[8] is 0). ARGV kind, event (JSON), event id, now (Unix ms), due (Unix
// ms), the kind's parameter (token: hold until, Unix ms; subject and scope:
// epoch, ns),
// retention (ms), idempotency ttl (ms, 0: none).
// Returns {1, event, first} when recorded now (first: 1 when there was no
// record of the thing before), {0, held event} when the idempotency record
// already held one (nothing written).
//
// Records merge monotonically: a token record keeps its first event and
// lives until the latest hold asked for (PEXPIREAT GT: Redis 7.0); session
// and key records keep their first event; a subject's epoch only grows.
// This is events.Merge written in Lua, which cannot call Go;
// TestRecordMergeAgreesWithEvents holds the two together.
var scriptRecord = redis.NewScript(luaCmp + `
if ARGV[8] ~= '0' then
  local held = redis.call('GET', KEYS[5])
  if held then return {0, held} end
  redis.call('SET', KEYS[5], ARGV[2], 'PX', ARGV[8])
end
local kind = ARGV[1]
local first = 0
if kind == 'token' then
  if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PXAT', ARGV[6]) then
    first = 1
  else
    redis.call('PEXPIREAT', KEYS[1], ARGV[6], 'GT')
  end
elseif kind == 'session' then
  if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[7]) then
    first = 1
  else
    redis.call('PEXPIRE', KEYS[1], ARGV[7], 'GT')
  end
elseif kind == 'key' then
  if redis.call('SET', KEYS[1], ARGV[2], 'NX') then first = 1 end
elseif kind == 'subject' or kind == 'scope' then
  local cur = redis.call('GET', KEYS[1])
  if not cur then first = 1 end
  if not cur or cmp(ARGV[6], cur) > 0 then
    redis.call('SET', KEYS[1], ARGV[6], 'PX', ARGV[7])
  else
    redis.call('PEXPIRE', KEYS[1], ARGV[7], 'GT')
  end
else
  return redis.error_reply('unknown kind ' .. kind)
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], 'NX', ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[4], 'NX', ARGV[5], ARGV[3])
return {1, ARGV[2], first}
`)

// scriptRevokeSession: KEYS[1] the session; ARGV retention (ms). Flags it
// revoked (creating a flag-only hash if missing) and keeps it for at least
// retention from now.
var scriptRevokeSession = redis.NewScript(`
redis.call('HSET', KEYS[1], 'revoked', '1')
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
`)

// scriptClaimOutbox: KEYS outbox events, queued, due; ARGV now (Unix ms),
// lease until (Unix ms), at most n. Takes up to n entries due by now, the
// longest due first, makes them due again at the lease's end (so a drainer
// that dies leaves them to another) and returns {id, event, queued ms, ...}.
// An entry whose event is missing is dropped.
var scriptClaimOutbox = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local ev = redis.call('HGET', KEYS[1], id)
  if ev then
    redis.call('ZADD', KEYS[3], 'XX', ARGV[2], id)
    table.insert(out, id)
    table.insert(out, ev)
    table.insert(out, redis.call('ZSCORE', KEYS[2], id) or ARGV[1])
  else
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
  end
end
return out
`)

// scriptDelivered: KEYS outbox events, queued, due; ARGV id, event (JSON).
// Removes the entry if it still holds exactly that event (a retry may have
// replaced it with a later one, still to be published). Returns 1 if removed.
var scriptDelivered = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`)

// scriptCreateSession: KEYS session, used; ARGV sub, claims, generation,
// current hash, created (ns), expiry (ns), revoked ("1" or ""), ttl (ms).
// Returns 0 if the session key exists (nothing changed), 1 when created.
var scriptCreateSession = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'sub', ARGV[1], 'claims', ARGV[2], 'gen', ARGV[3],
  'cur', ARGV[4], 'created', ARGV[5], 'rot', ARGV[5], 'exp', ARGV[6])
if ARGV[7] == '1' then redis.call('HSET', KEYS[1], 'revoked', '1') end
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return 1
`)

// Outcomes of scriptRotate, its reply's first element.
const (
	rotRotated  = "rotated"
	rotRetry    = "retry"
	rotReuse    = "reuse"
	rotRevoked  = "revoked"
	rotNotFound = "notfound"
	rotInvalid  = "invalid"
)

// scriptRotate: KEYS session, used; ARGV presented hash (hex), successor
// hash (hex), now (ns), grace cutoff = now - grace (ns), new expiry (ns),
// key ttl (ms), retention (ms). Replies {outcome} or, for rotated and
// retry, {outcome, HGETALL of the session...}.
//
// Compare-and-swap on the current hash: of concurrent calls presenting the
// same current token exactly one rotates; the others then find it as the
// previous hash, rotated at or after the cutoff, and retry.
var scriptRotate = redis.NewScript(luaCmp + `
local h = redis.call('HMGET', KEYS[1], 'gen', 'cur', 'prev', 'rot', 'exp', 'revoked')
local gen, cur, prev, rot, exp, revoked = h[1], h[2], h[3], h[4], h[5], h[6]
if revoked == '1' then return {'` + rotRevoked + `'} end
if not gen or not exp or cmp(exp, ARGV[3]) <= 0 then return {'` + rotNotFound + `'} end
local p = ARGV[1]
if p == cur then
  redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'prev', p, 'rot', ARGV[3], 'exp', ARGV[5])
  redis.call('HINCRBY', KEYS[1], 'gen', 1)
  redis.call('SADD', KEYS[2], p)
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  local r = redis.call('HGETALL', KEYS[1])
  table.insert(r, 1, '` + rotRotated + `')
  return r
end
if p == prev and rot and cmp(rot, ARGV[4]) > 0 then
  local r = redis.call('HGETALL', KEYS[1])
  table.insert(r, 1, '` + rotRetry + `')
  return r
end
if p == prev or redis.call('SISMEMBER', KEYS[2], p) == 1 then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[7]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[7])
  end
  return {'` + rotReuse + `'}
end
return {'` + rotInvalid + `'}
`)

// scriptCall is one call of a script: its keys and arguments.
type scriptCall struct {
	keys []string
	args []any
}

// runAll runs calls of sc in one pipeline, in order, and returns each
// one's reply. Script.Run falls back from EVALSHA to EVAL only outside a
// pipeline (inside one, NOSCRIPT arrives after the whole pipeline ran), so
// the calls answered NOSCRIPT, which ran nothing, are sent again with EVAL
// in a second pipeline.
func (s *Store) runAll(ctx context.Context, sc *redis.Script, calls []scriptCall) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(calls))
	if len(calls) == 0 {
		return cmds
	}
	// Each command keeps its own error; the pipeline's is the first.
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = sc.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	var again []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range again {
				cmds[i] = sc.Eval(ctx, p, calls[i].keys, calls[i].args...)
			}
			return nil
		})
	}
	return cmds
}
