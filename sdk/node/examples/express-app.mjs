// An Express 5 service protected by jwtrevoke: every /v1 route asks the
// local verifierd; GET /v1/me answers with the caller's identity.
//
//   JWTREVOKE_VERIFIERD=unix:/run/jwtrevoke/verifierd.sock PORT=3000 node examples/express-app.mjs
//   (or JWTREVOKE_VERIFIERD=http://127.0.0.1:8083)
import express from "express";
import jwtrevoke from "jwtrevoke";

const verifierd = process.env.JWTREVOKE_VERIFIERD ?? "http://127.0.0.1:8083";
const port = Number(process.env.PORT ?? 3000);

const app = express();
app.disable("x-powered-by");

// Public.
app.get("/healthz", (_req, res) => {
  res.send("ok\n");
});

// Everything below needs a token verifierd lets through.
app.use("/v1", jwtrevoke.express({ url: verifierd, timeoutMs: 1000 }));

app.get("/v1/me", (req, res) => {
  // req.auth: { subject, sessionId?, tokenId, issuer, claims }
  res.json({ subject: req.auth.subject, sessionId: req.auth.sessionId, claims: req.auth.claims });
});

const server = app.listen(port, "127.0.0.1", () => {
  console.log(`express example listening on http://127.0.0.1:${server.address().port}`);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
