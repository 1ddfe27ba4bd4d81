#!/bin/sh
# Starts redis-server of pod redis-N: as the replica of the primary the
# Sentinels name, or, on a fresh install (no Sentinel answers), redis-0 is
# the primary. Persistence is always on: AOF, fsync on every write.
set -eu
self="$(hostname).redis-headless"
primary=""
for i in 0 1 2; do
  primary="$(timeout 3 redis-cli -h "redis-$i.redis-headless" -p 26379 --raw \
    sentinel get-master-addr-by-name jwtrevoke 2>/dev/null | head -n 1 || true)"
  [ -n "$primary" ] && break
done
[ -n "$primary" ] || primary="redis-0.redis-headless"

mkdir -p /etc/redis-run
cat > /etc/redis-run/redis.conf <<CONF
port 6379
dir /data
# Durability: append-only file, fsync on every write (see docs/operations.md).
appendonly yes
appendfsync always
aof-use-rdb-preamble yes
# Refuse writes unless a replica is connected and close: a failover then
# loses at most the replication lag, never minutes of sessions.
min-replicas-to-write 1
min-replicas-max-lag 10
requirepass ${REDIS_PASSWORD}
masterauth ${REDIS_PASSWORD}
replica-announce-ip ${self}
replica-announce-port 6379
# Sessions and refresh tokens must never be evicted.
maxmemory-policy noeviction
CONF
if [ "$primary" != "$self" ] && [ "$primary" != "$(hostname)" ]; then
  echo "replicaof ${primary} 6379" >> /etc/redis-run/redis.conf
fi
exec redis-server /etc/redis-run/redis.conf
