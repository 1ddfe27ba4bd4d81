#!/bin/sh
# Starts the Sentinel of pod redis-N, watching the current primary (or
# redis-0 on a fresh install). Sentinel rewrites its file: it lives in an
# emptyDir and is rebuilt on restart; the other Sentinels hold the state.
set -eu
self="$(hostname).redis-headless"
primary=""
for i in 0 1 2; do
  primary="$(timeout 3 redis-cli -h "redis-$i.redis-headless" -p 26379 --raw \
    sentinel get-master-addr-by-name jwtrevoke 2>/dev/null | head -n 1 || true)"
  [ -n "$primary" ] && break
done
[ -n "$primary" ] || primary="redis-0.redis-headless"

mkdir -p /etc/sentinel-run
cat > /etc/sentinel-run/sentinel.conf <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip ${self}
sentinel announce-port 26379
sentinel monitor jwtrevoke ${primary} 6379 2
sentinel auth-pass jwtrevoke ${REDIS_PASSWORD}
sentinel down-after-milliseconds jwtrevoke 5000
sentinel failover-timeout jwtrevoke 60000
sentinel parallel-syncs jwtrevoke 1
CONF
exec redis-sentinel /etc/sentinel-run/sentinel.conf
