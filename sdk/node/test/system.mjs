// Starts the real jwtrevoke system for the integration test and the
// benchmark: builds cmd/jwtrevoke-dev with `go build` from the repository
// root, runs it on free loopback ports, and keeps track of every child
// process so that all of them are killed at the end, also on failure.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const repoRoot = path.resolve(pkgDir, "../..");

const children = new Set();
function killAllSync() {
  for (const c of children) {
    try {
      process.kill(c.pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  children.clear();
}
process.on("exit", killAllSync);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killAllSync();
    process.exit(130);
  });
}

/** Stops every child still running: SIGTERM, then SIGKILL after 3 s. */
export async function stopAll() {
  await Promise.all([...children].map((c) => stop(c)));
}

/** Stops one child: SIGTERM, then SIGKILL after 3 s. */
export function stop(c) {
  return new Promise((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) {
      children.delete(c);
      resolve();
      return;
    }
    const t = setTimeout(() => c.kill("SIGKILL"), 3000);
    c.once("exit", () => {
      clearTimeout(t);
      children.delete(c);
      resolve();
    });
    c.kill("SIGTERM");
  });
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A new temporary directory, removed at exit. */
export function tempDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on("exit", () => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/**
 * Builds jwtrevoke-dev into dir and returns its path; fails with a clear
 * message when Go is missing. Go's build cache makes later runs quick.
 */
export function buildDev(dir) {
  const v = spawnSync("go", ["version"], { encoding: "utf8" });
  if (v.error || v.status !== 0) {
    throw new Error(
      "the integration test needs Go to build cmd/jwtrevoke-dev, and `go version` failed " +
        `(${v.error?.code ?? v.stderr?.trim() ?? "exit " + v.status}): install Go (go.mod says which) and put it on PATH`,
    );
  }
  const out = path.join(dir, "jwtrevoke-dev");
  const t0 = performance.now();
  const b = spawnSync("go", ["build", "-o", out, "./cmd/jwtrevoke-dev"], { cwd: repoRoot, encoding: "utf8" });
  if (b.error || b.status !== 0) {
    throw new Error(`go build ./cmd/jwtrevoke-dev failed in ${repoRoot}:\n${b.error ?? ""}${b.stderr}`);
  }
  return { bin: out, buildMs: performance.now() - t0 };
}

/** Spawns a child that is killed at the end; its output is kept in .log. */
export function run(cmd, args, opts = {}) {
  const c = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
  children.add(c);
  c.log = "";
  const keep = (d) => {
    c.log += d;
    if (c.log.length > 64 << 10) c.log = c.log.slice(-(32 << 10));
  };
  c.stdout.setEncoding("utf8").on("data", keep);
  c.stderr.setEncoding("utf8").on("data", keep);
  c.once("exit", () => children.delete(c));
  return c;
}

/** Resolves when the child's output matches re; rejects on exit or timeout. */
export function waitFor(c, re, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const done = (err, v) => {
      clearTimeout(t);
      c.stdout.off("data", check);
      c.stderr.off("data", check);
      c.off("exit", onExit);
      if (err) reject(err);
      else resolve(v);
    };
    const check = () => {
      const m = re.exec(c.log);
      if (m) done(null, m);
    };
    const onExit = (code, sig) => done(new Error(`${what} exited (${code ?? sig}) before it was ready:\n${c.log}`));
    const t = setTimeout(() => done(new Error(`${what} not ready after ${timeoutMs} ms:\n${c.log}`)), timeoutMs);
    c.stdout.on("data", check);
    c.stderr.on("data", check);
    c.on("exit", onExit);
    check();
  });
}

/**
 * Starts the whole system in dev mode; verifierdListen is "unix:/path" or
 * "127.0.0.1:PORT". Resolves once its banner says it is running.
 */
export async function startDev(bin, verifierdListen) {
  const [issuer, revoker, example] = [await freePort(), await freePort(), await freePort()];
  const c = run(bin, [
    "-issuer-listen", `127.0.0.1:${issuer}`,
    "-revoker-listen", `127.0.0.1:${revoker}`,
    "-example-listen", `127.0.0.1:${example}`,
    "-verifierd-listen", verifierdListen,
    "-log-level", "warn",
  ]);
  await waitFor(c, /jwtrevoke dev mode is running/, 60_000, "jwtrevoke-dev");
  return { proc: c, issuerURL: `http://127.0.0.1:${issuer}` };
}

/** Logs in as user; returns the login answer (access_token, session_id, ...). */
export async function login(issuerURL, username = "alice", password = "demo") {
  const r = await fetch(`${issuerURL}/v1/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${await r.text()}`);
  return r.json();
}

/** Logs the access token's session out; expects 204. */
export async function logout(issuerURL, accessToken) {
  const r = await fetch(`${issuerURL}/v1/logout`, { method: "POST", headers: { Authorization: `Bearer ${accessToken}` } });
  if (r.status !== 204) throw new Error(`logout: ${r.status} ${await r.text()}`);
}
