// Integration test against the REAL system: jwtrevoke-dev (issuer,
// revoker, NATS JetStream, verifierd on a Unix socket) built from this
// repository, and the two example apps (examples/express-app.mjs,
// examples/hapi-app.mjs) using this package, each as its own process.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { buildDev, freePort, login, logout, pkgDir, run, startDev, stopAll, tempDir, waitFor } from "./system.mjs";

const apps = {
  express: path.join(pkgDir, "examples/express-app.mjs"),
  hapi: path.join(pkgDir, "examples/hapi-app.mjs"),
};

let sys;
const ok = {}; // app name -> base URL, asking the real verifierd
const nowhere = {}; // app name -> base URL, its socket pointing nowhere

async function startApp(name, verifierd) {
  const port = await freePort();
  const c = run(process.execPath, [apps[name]], {
    cwd: pkgDir,
    env: { ...process.env, JWTREVOKE_VERIFIERD: verifierd, PORT: String(port) },
  });
  await waitFor(c, /listening on /, 15_000, `${name} example`);
  return `http://127.0.0.1:${port}`;
}

before(async () => {
  const dir = tempDir("jwtrevoke-it-");
  const { bin, buildMs } = buildDev(dir);
  console.log(`# go build ./cmd/jwtrevoke-dev: ${buildMs.toFixed(0)} ms`);
  const sock = path.join(dir, "verifierd.sock");
  const t0 = performance.now();
  sys = await startDev(bin, `unix:${sock}`);
  console.log(`# jwtrevoke-dev ready in ${(performance.now() - t0).toFixed(0)} ms (verifierd on unix:${sock})`);
  const gone = `unix:${path.join(dir, "no-verifierd-here.sock")}`;
  const urls = await Promise.all([
    startApp("express", `unix:${sock}`), startApp("hapi", `unix:${sock}`),
    startApp("express", gone), startApp("hapi", gone),
  ]);
  [ok.express, ok.hapi, nowhere.express, nowhere.hapi] = urls;
});

after(async () => {
  await stopAll();
});

const me = (base, token) => fetch(`${base}/v1/me`, token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } });

async function assertRefusal(r, status) {
  assert.equal(r.status, status);
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
  const body = await r.json();
  assert.deepEqual(Object.keys(body).sort(), ["error", "error_description"]);
  return body;
}

for (const name of ["express", "hapi"]) {
  test(`${name}: login → 200 as alice; logout → 401 revoked_session within 1 s`, async () => {
    const tokens = await login(sys.issuerURL);
    let r = await me(ok[name], tokens.access_token);
    assert.equal(r.status, 200, await r.clone().text());
    const id = await r.json();
    assert.equal(id.subject, "alice");
    assert.equal(id.sessionId, tokens.session_id);
    assert.equal(id.claims.sub, "alice");

    await logout(sys.issuerURL, tokens.access_token);
    const t0 = performance.now();
    const deadline = t0 + 1000;
    for (;;) {
      r = await me(ok[name], tokens.access_token);
      if (r.status !== 200 || performance.now() > deadline) break;
      await r.arrayBuffer();
      await new Promise((res) => setTimeout(res, 2));
    }
    const ms = performance.now() - t0;
    console.log(`# ${name}: logout → 401 after ${ms.toFixed(1)} ms`);
    assert.equal(r.status, 401, `still ${r.status} ${ms.toFixed(0)} ms after logout`);
    assert.match(r.headers.get("www-authenticate"), /^Bearer realm="jwtrevoke", error="invalid_token", error_description="revoked_session"$/);
    const body = await assertRefusal(r, 401);
    assert.deepEqual(body, { error: "invalid_token", error_description: "revoked_session" });
    assert.ok(ms < 1000);
  });

  test(`${name}: no token → 401 with a bare challenge`, async () => {
    const r = await me(ok[name]);
    assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="jwtrevoke"');
    const body = await assertRefusal(r, 401);
    assert.equal(body.error, "unauthorized");
  });

  test(`${name}: a token verifierd refuses (bad signature) → 401 invalid_token`, async () => {
    const { access_token: at } = await login(sys.issuerURL);
    const [h, p, s] = at.split(".");
    const forged = `${h}.${p}.${s.slice(0, -4)}${s.slice(-4) === "AAAA" ? "BBBB" : "AAAA"}`;
    const r = await me(ok[name], forged);
    assert.match(r.headers.get("www-authenticate"), /error="invalid_token"/);
    const body = await assertRefusal(r, 401);
    assert.equal(body.error, "invalid_token");
  });

  test(`${name}: verifierd socket pointing nowhere → 503 with Retry-After`, async () => {
    const { access_token: at } = await login(sys.issuerURL);
    const r = await me(nowhere[name], at);
    assert.equal(r.headers.get("retry-after"), "1");
    assert.equal(r.headers.get("www-authenticate"), null);
    const body = await assertRefusal(r, 503);
    assert.deepEqual(body, { error: "temporarily_unavailable", error_description: "verifier_unreachable" });
  });
}

test("the public route needs no token", async () => {
  for (const base of [ok.express, ok.hapi, nowhere.express, nowhere.hapi]) {
    const r = await fetch(`${base}/healthz`);
    assert.equal(r.status, 200, base);
    await r.arrayBuffer();
  }
});
