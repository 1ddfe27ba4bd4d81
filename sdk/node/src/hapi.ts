/**
 * A hapi 21 auth scheme: `await server.register(jwtrevoke.hapi)`, then
 * `server.auth.strategy('jwtrevoke', 'jwtrevoke', { socketPath })`.
 *
 * A request verifierd lets through is authenticated with the identity as
 * credentials (plus `scope`, from the token's scope/scp claim, for hapi's
 * route access rules). A refused one gets 401 with verifierd's
 * WWW-Authenticate, or 503 with Retry-After, and the JSON body
 * {"error","error_description"}. A request without a token is "missing"
 * in hapi's terms, so a route's other strategies, and modes 'optional' and
 * 'try', behave as hapi documents.
 */
import { createRequire } from "node:module";
import type { IncomingMessage } from "node:http";
import type { Identity } from "./client";
import { clientOf, requestHeaders, type MiddlewareOptions } from "./express";
import { refusal } from "./refusal";

/** The scheme's name, as registered by the plugin. */
export const SCHEME = "jwtrevoke";

/** What hapi's credentials hold: the identity, and scope when the token has one. */
export type HapiCredentials = Identity & { scope?: string[] };

// Minimal structural views of hapi's objects: this package's types do not
// need @hapi/hapi to be installed.
interface BoomError extends Error {
  isMissing?: boolean;
  output: { statusCode: number; payload: Record<string, unknown>; headers: Record<string, string | string[] | number> };
}
interface BoomModule {
  Boom: new (message?: string, options?: { statusCode?: number }) => BoomError;
  isBoom(err: unknown): err is BoomError;
}
interface HapiRequest {
  raw: { req: IncomingMessage };
  plugins: Record<string, unknown>;
  auth: { isAuthenticated: boolean };
  response: unknown;
}
interface HapiToolkit {
  authenticated(data: { credentials: object; artifacts?: object }): unknown;
  unauthenticated(error: Error, data?: unknown): unknown;
  readonly continue: symbol;
}
/** The part of a hapi Server the plugin uses. */
export interface HapiServerLike {
  auth: { scheme(name: string, scheme: (server: any, options?: any) => any): void };
  ext(event: any, method?: any, options?: any): void;
  events: { on(event: any, listener: (...args: any[]) => void): void };
}

/** Options of server.auth.strategy('name', 'jwtrevoke', options). */
export type HapiStrategyOptions = MiddlewareOptions;

let boom: BoomModule | undefined;

/** @hapi/boom: this package's, or else the one @hapi/hapi depends on. */
function loadBoom(): BoomModule {
  if (boom !== undefined) return boom;
  const req = createRequire(__filename);
  try {
    boom = req("@hapi/boom") as BoomModule;
  } catch {
    const hapiMain = req.resolve("@hapi/hapi");
    boom = createRequire(hapiMain)("@hapi/boom") as BoomModule;
  }
  return boom;
}

const PLUGIN = "jwtrevoke";
const VERSION = (createRequire(__filename)("../package.json") as { version: string }).version;

function scopeOf(claims: Record<string, unknown>): string[] | undefined {
  const s = claims.scope ?? claims.scp;
  if (typeof s === "string") return s.split(" ").filter((x) => x !== "");
  if (Array.isArray(s) && s.every((x) => typeof x === "string")) return s as string[];
  return undefined;
}

function scheme(B: BoomModule, closers: { close(): void }[]) {
  return (_server: unknown, options?: HapiStrategyOptions) => {
    if (options === undefined) throw new Error("jwtrevoke: hapi strategy needs options: { socketPath } or { url }");
    const owned = !("client" in options);
    const client = clientOf(options);
    if (owned) closers.push(client);
    return {
      async authenticate(request: HapiRequest, h: HapiToolkit) {
        const r = await client.check(requestHeaders(request.raw.req));
        if (r.status === 200) {
          const credentials: HapiCredentials = { ...r.identity };
          const scope = scopeOf(r.identity.claims);
          if (scope !== undefined) credentials.scope = scope;
          return h.authenticated({ credentials });
        }
        const a = refusal(r);
        const err = new B.Boom(r.description || r.error, { statusCode: a.status });
        err.output.payload = { ...a.body };
        for (const [k, v] of Object.entries(a.headers)) {
          // hapi looks for its cache header in lower case (and would add
          // no-cache); WWW-Authenticate in Boom's spelling, which hapi reads.
          err.output.headers[k === "Cache-Control" ? "cache-control" : k] = v;
        }
        if (r.status === 401 && r.error === "unauthorized") {
          // No token: hapi tries the route's other strategies, and then
          // answers with every strategy's challenge; onPreResponse gives
          // that answer our body.
          err.isMissing = true;
          request.plugins[PLUGIN] = { missing: a.body };
        }
        return h.unauthenticated(err);
      },
    };
  };
}

/** The hapi plugin: registers the scheme 'jwtrevoke'. */
export const hapi = {
  name: PLUGIN,
  version: VERSION,
  register(server: HapiServerLike): void {
    const B = loadBoom();
    const closers: { close(): void }[] = [];
    server.auth.scheme(SCHEME, scheme(B, closers));
    server.ext("onPreResponse", (request: HapiRequest, h: HapiToolkit) => {
      const mine = request.plugins[PLUGIN] as { missing?: object } | undefined;
      const res = request.response;
      if (
        mine?.missing !== undefined &&
        !request.auth.isAuthenticated &&
        B.isBoom(res) &&
        res.output.statusCode === 401 &&
        res.message === "Missing authentication"
      ) {
        // hapi's own answer when no strategy found a token: keep its
        // WWW-Authenticate (every strategy's challenge), send our body.
        res.output.payload = { ...mine.missing };
        res.output.headers["cache-control"] = "no-store";
      }
      return h.continue;
    });
    server.events.on("stop", () => {
      for (const c of closers.splice(0)) c.close();
    });
  },
};

/**
 * The credentials of a request this scheme authenticated, typed (hapi
 * types credentials loosely); undefined when another strategy, or none,
 * authenticated it.
 */
export function hapiCredentials(request: {
  auth: { isAuthenticated: boolean; strategy?: string | null; credentials?: unknown };
}): HapiCredentials | undefined {
  const c = request.auth.credentials as Partial<HapiCredentials> | null | undefined;
  if (!request.auth.isAuthenticated || c == null || typeof c.subject !== "string" || typeof c.claims !== "object") {
    return undefined;
  }
  return c as HapiCredentials;
}
