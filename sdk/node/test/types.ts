// Compiled with `tsc --noEmit` by `npm test` (npm run typecheck): the
// package's types as an Express 5 and a hapi 21 user sees them.
import express from "express";
import Hapi from "@hapi/hapi";
import jwtrevoke, { createClient, hapiCredentials, type CheckResult, type Identity } from "jwtrevoke";

const app = express();
app.use(jwtrevoke.express({ socketPath: "/run/jwtrevoke/verifierd.sock" }));
app.use("/v1", jwtrevoke.express({ client: createClient({ url: "http://127.0.0.1:8083", timeoutMs: 500 }) }));
app.get("/v1/me", (req, res) => {
  // req.auth is typed by declaration merging.
  const subject: string | undefined = req.auth?.subject;
  const sid: string | undefined = req.auth?.sessionId;
  res.json({ subject, sid });
});

async function hapiServer(): Promise<void> {
  const server = Hapi.server({ port: 0 });
  await server.register(jwtrevoke.hapi);
  server.auth.strategy("jwtrevoke", "jwtrevoke", { socketPath: "/run/jwtrevoke/verifierd.sock" });
  server.auth.default("jwtrevoke");
  server.route({
    method: "GET",
    path: "/v1/me",
    handler: (request) => {
      const id = hapiCredentials(request);
      return { subject: id?.subject, scope: id?.scope };
    },
  });
}
void hapiServer;

async function narrow(): Promise<string> {
  const r: CheckResult = await createClient({ socketPath: "/x" }).check({ authorization: "Bearer x" });
  switch (r.status) {
    case 200: {
      const id: Identity = r.identity;
      return id.subject + id.tokenId + id.issuer + String(id.claims["sub"]);
    }
    case 401:
      return r.wwwAuthenticate + r.error + r.description;
    case 503:
      return r.retryAfter + r.error + r.description;
  }
}
void narrow;
