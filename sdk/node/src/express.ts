/**
 * Express 5 middleware (works with any connect-style framework over
 * node:http): asks verifierd about every request.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createClient, type Client, type ClientOptions, type Identity } from "./client";
import { refusal } from "./refusal";

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The identity jwtrevoke's middleware let through. */
      auth?: Identity;
    }
  }
}

/** Options of {@link express}: a client's options, or a client to share. */
export type MiddlewareOptions = ClientOptions | { client: Client };

/** The request a middleware reads and marks. */
export type AuthRequest = IncomingMessage & { auth?: Identity };

/** A connect-style middleware; Express 5 takes it as a RequestHandler. */
export type Middleware = (req: AuthRequest, res: ServerResponse, next: (err?: unknown) => void) => Promise<void>;

/** The client behind options: the given one, or a new one. */
export function clientOf(options: MiddlewareOptions): Client {
  return "client" in options ? options.client : createClient(options);
}

/** The headers to forward: every repeat kept where Node keeps them (headersDistinct). */
export function requestHeaders(req: IncomingMessage): IncomingMessage["headers"] | IncomingMessage["headersDistinct"] {
  return req.headersDistinct ?? req.headers;
}

/**
 * Returns middleware that lets a request through with `req.auth` set to its
 * identity when verifierd answers 200, and otherwise answers itself: 401
 * with WWW-Authenticate, or 503 with Retry-After, a JSON body
 * {"error","error_description"} and Cache-Control: no-store.
 */
export function express(options: MiddlewareOptions): Middleware {
  const client = clientOf(options);
  return async function jwtrevoke(req, res, next) {
    const r = await client.check(requestHeaders(req));
    if (r.status === 200) {
      req.auth = r.identity;
      next();
      return;
    }
    const a = refusal(r);
    if (res.headersSent) {
      next(new Error(`jwtrevoke: refused (${r.status}) after the response started`));
      return;
    }
    const body = JSON.stringify(a.body) + "\n";
    res.statusCode = a.status;
    for (const [k, v] of Object.entries(a.headers)) res.setHeader(k, v);
    res.setHeader("Content-Type", "application/json");
    res.setHeader("Content-Length", Buffer.byteLength(body));
    res.end(body);
  };
}
