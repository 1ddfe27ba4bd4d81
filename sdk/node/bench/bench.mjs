// npm run bench: per-request cost of asking verifierd with this package
// (a: Unix socket, b: loopback TCP keep-alive) against the jwt-redis
// baseline (c: jwt-redis verify against a local redis-server), each
// sequential and with 16 in flight; several repetitions, medians reported.
//
// Environment: BENCH_REPS (default 5), BENCH_SECONDS per repetition
// (default 1), BENCH_CONCURRENCY (default "1,16").
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import os from "node:os";
import path from "node:path";
import { createClient as redisClient } from "redis";
import jwtRedis from "jwt-redis";
import { createClient } from "jwtrevoke";
import { buildDev, freePort, login, run, startDev, stopAll, tempDir, waitFor } from "../test/system.mjs";

const REPS = Number(process.env.BENCH_REPS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? "1,16").split(",").map(Number);
const REDIS = process.env.REDIS_SERVER ?? "/usr/bin/redis-server";

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Runs op with `inFlight` loops for `seconds`; returns ops/s and latency quantiles (µs). */
async function measure(op, inFlight, seconds) {
  const lat = [];
  let failures = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        if (!(await op())) failures++;
        lat.push(performance.now() - s);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { ops: lat.length / elapsed, p50: quantile(lat, 0.5) * 1000, p99: quantile(lat, 0.99) * 1000, failures, n: lat.length };
}

async function main() {
  const dir = tempDir("jwtrevoke-bench-");
  console.log(`node ${process.version}; ${execFileSync(REDIS, ["--version"], { encoding: "utf8" }).trim()}`);
  console.log(`${execFileSync("go", ["version"], { encoding: "utf8" }).trim()}; ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"})`);
  const { bin, buildMs } = buildDev(dir);
  console.log(`go build ./cmd/jwtrevoke-dev: ${buildMs.toFixed(0)} ms`);

  // (a) verifierd on a Unix socket, (b) on loopback TCP: two dev systems,
  // each with its own issuer, so each gets its own login.
  const sock = path.join(dir, "verifierd.sock");
  const tcpPort = await freePort();
  const [unixSys, tcpSys] = await Promise.all([startDev(bin, `unix:${sock}`), startDev(bin, `127.0.0.1:${tcpPort}`)]);
  const unixToken = (await login(unixSys.issuerURL)).access_token;
  const tcpToken = (await login(tcpSys.issuerURL)).access_token;
  const unix = createClient({ socketPath: sock });
  const tcp = createClient({ url: `http://127.0.0.1:${tcpPort}` });

  // (c) jwt-redis against a local redis-server of our own.
  const redisPort = await freePort();
  const redisProc = run(REDIS, ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
  await waitFor(redisProc, /Ready to accept connections/, 10_000, "redis-server");
  const redis = redisClient({ url: `redis://127.0.0.1:${redisPort}` });
  redis.on("error", () => {});
  await redis.connect();
  const JWTR = jwtRedis.default ?? jwtRedis; // CommonJS with an ES default
  const jwtr = new JWTR(redis);
  const secret = "bench-secret-0123456789abcdef0123456789abcdef";
  const jwtrToken = await jwtr.sign({ sub: "alice", sid: "bench-session" }, secret, { expiresIn: 600 });
  // The same with an asymmetric signature (RS256; jsonwebtoken 8 has no
  // EdDSA), as an issuer publishing its keys needs: closer to what
  // verifierd checks (EdDSA).
  const rsa = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const rsaPub = rsa.publicKey.export({ type: "spki", format: "pem" });
  const rsaToken = await jwtr.sign({ sub: "alice", sid: "bench-session" }, rsa.privateKey.export({ type: "pkcs8", format: "pem" }), { algorithm: "RS256", expiresIn: 600 });

  const cases = [
    ["(a) jwtrevoke check, Unix socket", async () => (await unix.check({ authorization: `Bearer ${unixToken}` })).status === 200],
    ["(b) jwtrevoke check, TCP keep-alive", async () => (await tcp.check({ authorization: `Bearer ${tcpToken}` })).status === 200],
    ["(c) jwt-redis verify HS256, redis-server", async () => {
      try {
        return (await jwtr.verify(jwtrToken, secret)).sub === "alice";
      } catch {
        return false;
      }
    }],
    ["(d) jwt-redis verify RS256, redis-server", async () => {
      try {
        return (await jwtr.verify(rsaToken, rsaPub, { algorithms: ["RS256"] })).sub === "alice";
      } catch {
        return false;
      }
    }],
  ];
  for (const [name, op] of cases) {
    if (!(await op())) throw new Error(`${name}: the first operation failed`);
  }

  console.log(`\n${REPS} repetitions of ${SECONDS} s per case, interleaved; medians (spread: min–max of ops/s)\n`);
  const results = new Map();
  for (const [name, op] of cases) await measure(op, 16, 0.5); // warm-up
  for (let rep = 0; rep < REPS; rep++) {
    for (const c of CONCURRENCY) {
      for (const [name, op] of cases) {
        const k = `${name}|${c}`;
        if (!results.has(k)) results.set(k, []);
        results.get(k).push(await measure(op, c, SECONDS));
      }
    }
  }

  const rows = [["case", "in flight", "ops/s (median)", "ops/s min–max", "p50 µs", "p99 µs", "failed"]];
  for (const c of CONCURRENCY) {
    for (const [name] of cases) {
      const rs = results.get(`${name}|${c}`);
      const ops = rs.map((r) => r.ops);
      rows.push([
        name, String(c), median(ops).toFixed(0), `${Math.min(...ops).toFixed(0)}–${Math.max(...ops).toFixed(0)}`,
        median(rs.map((r) => r.p50)).toFixed(0), median(rs.map((r) => r.p99)).toFixed(0),
        String(rs.reduce((a, r) => a + r.failures, 0)),
      ]);
    }
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((v, i) => (i === 0 ? v.padEnd(w[i]) : v.padStart(w[i]))).join(" | ")} |`;
  console.log(line(rows[0]));
  console.log(`|${w.map((n, i) => (i === 0 ? "-".repeat(n + 2) : "-".repeat(n + 1) + ":")).join("|")}|`);
  for (const r of rows.slice(1)) console.log(line(r));

  unix.close();
  tcp.close();
  await redis.quit();
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    process.exit(); // the redis client may still hold the loop after a failure
  });
