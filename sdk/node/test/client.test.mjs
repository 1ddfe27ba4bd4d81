// Unit tests of the client's mapping of verifierd's answers, against a tiny
// node:http stand-in (over a Unix socket and TCP) that answers as told.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import jwtrevoke, { createClient, decodeClaims } from "jwtrevoke";

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const claims = { iss: "https://issuer.test", sub: "alice", sid: "s-1", jti: "t-1", aud: "api", exp: 2e9, scope: "read write" };

// Each test sets `answer` to (req, res) => void; the stand-in records requests.
let answer = (_req, res) => res.end();
const seen = [];
function standIn() {
  return http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers, raw: req.rawHeaders });
    answer(req, res);
  });
}

let dir, sock, unixServer, tcpServer, tcpURL, unix, tcp;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "jwtrevoke-unit-"));
  sock = path.join(dir, "v.sock");
  unixServer = standIn();
  await new Promise((r) => unixServer.listen(sock, r));
  tcpServer = standIn();
  await new Promise((r) => tcpServer.listen(0, "127.0.0.1", r));
  tcpURL = `http://127.0.0.1:${tcpServer.address().port}`;
  unix = createClient({ socketPath: sock, timeoutMs: 300 });
  tcp = createClient({ url: tcpURL, timeoutMs: 300 });
});
after(() => {
  unix?.close();
  tcp?.close();
  unixServer?.closeAllConnections();
  tcpServer?.closeAllConnections();
  unixServer?.close();
  tcpServer?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function allowed(res, c = claims, extra = {}) {
  res.setHeader("X-Auth-Subject", c.sub);
  if (c.sid) res.setHeader("X-Auth-Session", c.sid);
  res.setHeader("X-Auth-Token-Id", c.jti);
  res.setHeader("X-Auth-Issuer", c.iss);
  res.setHeader("X-Auth-Claims", b64(c));
  for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  res.end();
}
function refused(res, status, headers, body) {
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader("Content-Type", "application/json");
  res.end(typeof body === "string" ? body : JSON.stringify(body) + "\n");
}
const bearer = { authorization: "Bearer a.b.c" };

for (const via of ["unix", "tcp"]) {
  describe(`over ${via}`, () => {
    const c = () => (via === "unix" ? unix : tcp);

    test("200: the identity from the headers, the claims decoded", async () => {
      answer = (_q, s) => allowed(s);
      const r = await c().check(bearer);
      assert.deepEqual(r, {
        status: 200,
        identity: { subject: "alice", sessionId: "s-1", tokenId: "t-1", issuer: "https://issuer.test", claims },
      });
      assert.equal(seen.at(-1).url, "/v1/check");
      assert.equal(seen.at(-1).method, "GET");
    });

    test("401 with verifierd's challenge and body", async () => {
      const ch = 'Bearer realm="jwtrevoke", error="invalid_token", error_description="revoked_session"';
      answer = (_q, s) => refused(s, 401, { "WWW-Authenticate": ch }, { error: "invalid_token", error_description: "revoked_session" });
      assert.deepEqual(await c().check(bearer), {
        status: 401, wwwAuthenticate: ch, error: "invalid_token", description: "revoked_session",
      });
    });

    test("503 with Retry-After and the reason", async () => {
      answer = (_q, s) => refused(s, 503, { "Retry-After": "3" }, { error: "temporarily_unavailable", error_description: "stale" });
      assert.deepEqual(await c().check(bearer), {
        status: 503, retryAfter: "3", error: "temporarily_unavailable", description: "stale",
      });
    });

    test("connections are kept alive", async () => {
      answer = (_q, s) => allowed(s);
      const ports = new Set();
      const srv = via === "unix" ? unixServer : tcpServer;
      const onConn = (sock) => ports.add(sock);
      srv.on("connection", onConn);
      for (let i = 0; i < 20; i++) assert.equal((await c().check(bearer)).status, 200);
      srv.off("connection", onConn);
      assert.ok(ports.size <= 1, `20 sequential checks opened ${ports.size} connections`);
    });
  });
}

test("no session: sessionId absent, not empty", async () => {
  const { sid: _sid, ...noSid } = claims;
  answer = (_q, s) => allowed(s, noSid);
  const r = await unix.check(bearer);
  assert.equal(r.status, 200);
  assert.equal("sessionId" in r.identity, false);
  assert.equal(r.identity.subject, "alice");
});

test("forwards only Authorization and Cookie", async () => {
  answer = (_q, s) => allowed(s);
  await unix.check({ authorization: "Bearer a.b.c", cookie: "jwtrevoke_at=x; other=y", "x-auth-subject": "mallory", host: "evil", "content-length": "5", "x-forwarded-for": "1.2.3.4" });
  const h = seen.at(-1).headers;
  assert.equal(h.authorization, "Bearer a.b.c");
  assert.equal(h.cookie, "jwtrevoke_at=x; other=y");
  for (const k of ["x-auth-subject", "x-forwarded-for", "content-length"]) assert.equal(h[k], undefined, k);
  assert.notEqual(h.host, "evil");
});

test("header names in any case; repeated Authorization is forwarded repeated", async () => {
  answer = (_q, s) => allowed(s);
  await unix.check({ Authorization: "Bearer a.b.c" });
  assert.equal(seen.at(-1).headers.authorization, "Bearer a.b.c");
  await unix.check({ authorization: ["Bearer a", "Bearer b"] });
  const raw = seen.at(-1).raw;
  const auths = raw.filter((_v, i) => i % 2 === 0 && raw[i].toLowerCase() === "authorization");
  assert.equal(auths.length, 2, "both values reach verifierd, which refuses the pair");
});

test("a fetch Headers object", async () => {
  answer = (_q, s) => allowed(s);
  const r = await unix.check(new Headers({ Authorization: "Bearer a.b.c", Cookie: "jwtrevoke_at=x" }));
  assert.equal(r.status, 200);
  assert.equal(seen.at(-1).headers.cookie, "jwtrevoke_at=x");
});

test("no token: nothing forwarded, verifierd's 401 without error attribute", async () => {
  answer = (_q, s) => refused(s, 401, { "WWW-Authenticate": 'Bearer realm="jwtrevoke"' }, { error: "unauthorized", error_description: "no bearer token" });
  const r = await unix.check({});
  assert.deepEqual(r, { status: 401, wwwAuthenticate: 'Bearer realm="jwtrevoke"', error: "unauthorized", description: "no bearer token" });
  assert.equal(seen.at(-1).headers.authorization, undefined);
  assert.equal(seen.at(-1).headers.cookie, undefined);
});

test("401 without a JSON body: error and description from the challenge", async () => {
  answer = (_q, s) => refused(s, 401, { "WWW-Authenticate": 'Bearer realm="r", error="invalid_token", error_description="expired"' }, "");
  const r = await unix.check(bearer);
  assert.equal(r.status, 401);
  assert.equal(r.error, "invalid_token");
  assert.equal(r.description, "expired");
});

test("a control character in the credential: 401 invalid_request, nothing sent", async () => {
  const n = seen.length;
  const r = await unix.check({ authorization: "Bearer a\r\nX-Auth-Subject: root" });
  assert.equal(r.status, 401);
  assert.equal(r.error, "invalid_request");
  assert.match(r.wwwAuthenticate, /error="invalid_request"/);
  assert.equal(seen.length, n);
});

describe("answers outside verifierd's contract fail closed (503 verifier_bad_answer)", () => {
  const cases = {
    "200 without X-Auth-Subject": (_q, s) => s.end(),
    "200 with claims that are not base64url JSON": (_q, s) => allowed(s, claims, { "X-Auth-Claims": "!!!" }),
    "200 with claims that are a JSON array": (_q, s) => allowed(s, claims, { "X-Auth-Claims": b64([1]) }),
    "401 without WWW-Authenticate": (_q, s) => refused(s, 401, {}, { error: "invalid_token", error_description: "x" }),
    "404": (_q, s) => refused(s, 404, {}, "not found"),
    "500": (_q, s) => refused(s, 500, {}, { error: "server_error" }),
    "302": (_q, s) => refused(s, 302, { Location: "/elsewhere" }, ""),
    "a body over 16 KiB": (_q, s) => refused(s, 401, { "WWW-Authenticate": "Bearer" }, "x".repeat(20000)),
  };
  for (const [name, fn] of Object.entries(cases)) {
    test(name, async () => {
      answer = fn;
      assert.deepEqual(await unix.check(bearer), {
        status: 503, retryAfter: "1", error: "temporarily_unavailable", description: "verifier_bad_answer",
      });
    });
  }
  test("503 with an unusable Retry-After and no body: Retry-After 1", async () => {
    answer = (_q, s) => refused(s, 503, { "Retry-After": "soon" }, "");
    assert.deepEqual(await unix.check(bearer), {
      status: 503, retryAfter: "1", error: "temporarily_unavailable", description: "verifier_bad_answer",
    });
  });
});

describe("verifierd unreachable: 503 verifier_unreachable, never a throw", () => {
  const want = { status: 503, retryAfter: "1", error: "temporarily_unavailable", description: "verifier_unreachable" };
  test("no socket file", async () => {
    const c = createClient({ socketPath: path.join(dir, "nowhere.sock") });
    assert.deepEqual(await c.check(bearer), want);
    c.close();
  });
  test("a closed TCP port", async () => {
    const s = http.createServer();
    await new Promise((r) => s.listen(0, "127.0.0.1", r));
    const port = s.address().port;
    await new Promise((r) => s.close(r));
    const c = createClient({ url: `http://127.0.0.1:${port}` });
    assert.deepEqual(await c.check(bearer), want);
    c.close();
  });
  test("no answer within timeoutMs", async () => {
    answer = () => {}; // never answers
    const t0 = performance.now();
    const r = await unix.check(bearer);
    const ms = performance.now() - t0;
    assert.deepEqual(r, want);
    assert.ok(ms >= 250 && ms < 1500, `took ${ms} ms with timeoutMs 300`);
    unixServer.closeAllConnections();
  });
  test("the connection dropped mid-answer", async () => {
    answer = (req) => req.socket.destroy();
    assert.deepEqual(await unix.check(bearer), want);
  });
});

test("options: exactly one of socketPath and url; http only", () => {
  assert.throws(() => createClient({}), /exactly one/);
  assert.throws(() => createClient({ socketPath: "/a", url: "http://127.0.0.1:1" }), /exactly one/);
  assert.throws(() => createClient({ url: "https://127.0.0.1:1" }), /only http/);
  assert.throws(() => createClient({ url: "http://x", timeoutMs: 0 }), /timeoutMs/);
});

test("url forms: base URL, full check URL, unix: URL", async () => {
  answer = (_q, s) => allowed(s);
  for (const u of [tcpURL, tcpURL + "/", tcpURL + "/v1/check"]) {
    const c = createClient({ url: u });
    assert.equal((await c.check(bearer)).status, 200, u);
    assert.equal(seen.at(-1).url, "/v1/check", u);
    c.close();
  }
  const c = createClient({ url: "unix:" + sock });
  assert.equal((await c.check(bearer)).status, 200);
  c.close();
});

test("decodeClaims", () => {
  assert.deepEqual(decodeClaims(b64({ a: 1 })), { a: 1 });
  assert.equal(decodeClaims("e30="), undefined, "padding is not base64url");
  assert.equal(decodeClaims(b64("str")), undefined);
  assert.equal(decodeClaims(Buffer.from("{").toString("base64url")), undefined);
});

describe("express middleware against the stand-in", () => {
  async function serve(mw) {
    const srv = http.createServer((req, res) => mw(req, res, (err) => {
      if (err) { res.statusCode = 500; res.end(String(err)); return; }
      res.setHeader("Content-Type", "application/json");
      res.end(JSON.stringify(req.auth));
    }));
    await new Promise((r) => srv.listen(0, "127.0.0.1", r));
    return { srv, url: `http://127.0.0.1:${srv.address().port}/` };
  }
  test("200 sets req.auth; 401 and 503 answered like the Go middleware", async () => {
    const { srv, url } = await serve(jwtrevoke.express({ client: unix }));
    try {
      answer = (_q, s) => allowed(s);
      let r = await fetch(url, { headers: bearer });
      assert.equal(r.status, 200);
      assert.equal((await r.json()).subject, "alice");

      const ch = 'Bearer realm="jwtrevoke", error="invalid_token", error_description="revoked_subject"';
      answer = (_q, s) => refused(s, 401, { "WWW-Authenticate": ch }, { error: "invalid_token", error_description: "revoked_subject" });
      r = await fetch(url, { headers: bearer });
      assert.equal(r.status, 401);
      assert.equal(r.headers.get("www-authenticate"), ch);
      assert.equal(r.headers.get("cache-control"), "no-store");
      assert.equal(r.headers.get("content-type"), "application/json");
      assert.deepEqual(await r.json(), { error: "invalid_token", error_description: "revoked_subject" });

      answer = (_q, s) => refused(s, 503, { "Retry-After": "1" }, { error: "temporarily_unavailable", error_description: "not_ready" });
      r = await fetch(url, { headers: bearer });
      assert.equal(r.status, 503);
      assert.equal(r.headers.get("retry-after"), "1");
      assert.equal(r.headers.get("www-authenticate"), null);
      assert.deepEqual(await r.json(), { error: "temporarily_unavailable", error_description: "not_ready" });
    } finally {
      srv.closeAllConnections();
      srv.close();
    }
  });
});
