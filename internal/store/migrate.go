package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// scriptMigrate: KEYS[1] the record's key in the current layout; ARGV kind
// (jti, sub or kid), value, remaining TTL in ms (-1: none). Merges the old
// record in monotonically, as Record would: a token or key record is kept
// if present (its TTL only grows), an epoch only grows.
var scriptMigrate = redis.NewScript(luaCmp + `
local ttl = tonumber(ARGV[3])
if ARGV[1] == 'sub' then
  local cur = redis.call('GET', KEYS[1])
  if cur and cmp(ARGV[2], cur) <= 0 then
    if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl, 'GT') end
    return 0
  end
end
if ARGV[1] ~= 'sub' and redis.call('EXISTS', KEYS[1]) == 1 then
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl, 'GT') end
  return 0
end
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
`)

// MigrateLegacy moves the revocation records of the layout before the
// outbox (<p>:rev:jti:…, <p>:rev:sub:…, <p>:rev:kid:…) to their keys under
// {<p>:rev}, merging them in monotonically, and deletes the old keys; old
// idempotency records (<p>:idem:…, not scoped by caller) are deleted. It
// returns how many records it moved. Idempotent, and safe on several
// revokers at once; the revoker runs it when it starts.
func (s *Store) MigrateLegacy(ctx context.Context) (int, error) {
	var moved int
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		for _, pattern := range []string{s.prefix + ":rev:*", s.prefix + ":idem:*"} {
			it := c.Scan(ctx, 0, pattern, 512).Iterator()
			for it.Next(ctx) {
				n, err := s.migrateKey(ctx, it.Val())
				if err != nil {
					return err
				}
				moved += n
			}
			if err := it.Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.rdb)
	}
	if err != nil {
		return moved, fmt.Errorf("store: migrate legacy records: %w", err)
	}
	return moved, nil
}

// migrateKey moves one legacy key; it reports 1 if it wrote a record.
func (s *Store) migrateKey(ctx context.Context, old string) (int, error) {
	rest, isRev := strings.CutPrefix(old, s.prefix+":rev:")
	kind, value, ok := strings.Cut(rest, ":")
	if !isRev || !ok || (kind != "jti" && kind != "sub" && kind != "kid") {
		// An old idempotency record, or nothing of ours: drop only the
		// former.
		if strings.HasPrefix(old, s.prefix+":idem:") {
			return 0, s.rdb.Del(ctx, old).Err()
		}
		return 0, nil
	}
	v, err := s.rdb.Get(ctx, old).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil // expired meanwhile
	}
	if err != nil {
		return 0, err
	}
	ttl, err := s.rdb.PTTL(ctx, old).Result()
	if err != nil {
		return 0, err
	}
	ms := ttl.Milliseconds()
	if ttl < 0 {
		ms = -1
	}
	if ttl == 0 || ms == 0 {
		return 0, nil // about to expire
	}
	n, err := scriptMigrate.Run(ctx, s.rdb, []string{s.revTag() + kind + ":" + value}, kind, v, ms).Int()
	if err != nil {
		return 0, err
	}
	return n, s.rdb.Del(ctx, old).Err()
}
