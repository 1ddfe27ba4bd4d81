// A hapi 21 service protected by jwtrevoke's auth scheme: every route uses
// the strategy by default; GET /v1/me answers with the caller's identity.
//
//   JWTREVOKE_VERIFIERD=unix:/run/jwtrevoke/verifierd.sock PORT=3001 node examples/hapi-app.mjs
//   (or JWTREVOKE_VERIFIERD=http://127.0.0.1:8083)
import Hapi from "@hapi/hapi";
import jwtrevoke from "jwtrevoke";

const verifierd = process.env.JWTREVOKE_VERIFIERD ?? "http://127.0.0.1:8083";
const port = Number(process.env.PORT ?? 3001);

const server = Hapi.server({ host: "127.0.0.1", port });
await server.register(jwtrevoke.hapi);
server.auth.strategy("jwtrevoke", "jwtrevoke", { url: verifierd, timeoutMs: 1000 });
server.auth.default("jwtrevoke");

server.route({
  method: "GET",
  path: "/healthz",
  options: { auth: false },
  handler: () => "ok\n",
});

server.route({
  method: "GET",
  path: "/v1/me",
  handler: (request) => {
    // credentials: { subject, sessionId?, tokenId, issuer, claims, scope? }
    const id = jwtrevoke.hapiCredentials(request);
    return { subject: id.subject, sessionId: id.sessionId, claims: id.claims };
  },
});

await server.start();
console.log(`hapi example listening on ${server.info.uri}`);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.stop({ timeout: 1000 }).then(() => process.exit(0)));
