// The package loads with require() and with import(), by its own name.
const { test } = require("node:test");
const assert = require("node:assert/strict");

test("require('jwtrevoke')", () => {
  const j = require("jwtrevoke");
  for (const k of ["createClient", "express", "decodeClaims", "refusal"]) assert.equal(typeof j[k], "function", k);
  assert.equal(j.hapi.name, "jwtrevoke");
  assert.equal(typeof j.hapi.register, "function");
  assert.equal(j.hapi.version, require("../package.json").version);
  assert.equal(j.CHECK_PATH, "/v1/check");
});

test("import('jwtrevoke'): default and named exports", async () => {
  const m = await import("jwtrevoke");
  assert.equal(typeof m.createClient, "function");
  assert.equal(typeof m.express, "function");
  assert.equal(m.default.hapi, m.hapi);
});

test("loading the package needs neither express nor hapi", () => {
  const { execFileSync } = require("node:child_process");
  // Resolution of express and @hapi/* is made to fail; the package still loads.
  const code = `
    const Module = require("node:module");
    const orig = Module._resolveFilename;
    Module._resolveFilename = function (req, ...a) {
      if (req === "express" || req.startsWith("@hapi/")) throw new Error("not installed: " + req);
      return orig.call(this, req, ...a);
    };
    const j = require("jwtrevoke");
    j.createClient({ socketPath: "/nowhere" }).close();
    j.express({ socketPath: "/nowhere" });
    console.log("ok");`;
  assert.equal(execFileSync(process.execPath, ["-e", code], { cwd: __dirname, encoding: "utf8" }).trim(), "ok");
});

test("the declarations need neither express's nor hapi's types", () => {
  const fs = require("node:fs");
  const path = require("node:path");
  const dist = path.join(__dirname, "..", "dist");
  for (const f of fs.readdirSync(dist).filter((f) => f.endsWith(".d.ts"))) {
    const src = fs.readFileSync(path.join(dist, f), "utf8");
    assert.doesNotMatch(src, /from ["'](express|@hapi\/[^"']+|@types\/[^"']+)["']|import\(["'](express|@hapi)/, f);
  }
});
