/**
 * The client of verifierd's forward-auth endpoint (`/v1/check`).
 *
 * It forwards a request's `Authorization` and `Cookie` headers to the local
 * verifierd and maps its answer (200, 401 or 503) to a {@link CheckResult}.
 * It never decides anything itself: correctness stays in verifierd. When
 * verifierd cannot be asked, or answers outside its contract, the result is
 * a 503 (fail closed); {@link Client.check} never throws for a decision.
 */
import * as http from "node:http";

/** The path of verifierd's check endpoint. */
export const CHECK_PATH = "/v1/check";

/** Options of {@link createClient}. Give exactly one of socketPath and url. */
export interface ClientOptions {
  /**
   * The Unix socket verifierd listens on (`verifierd -listen unix:/path`).
   * A value starting with `unix:` is accepted too.
   */
  socketPath?: string;
  /**
   * verifierd's base URL over loopback TCP, e.g. `http://127.0.0.1:8083`
   * (its check path `/v1/check` is appended unless the URL already ends
   * with it). `unix:/path` is taken as a socketPath. Only `http:`.
   */
  url?: string;
  /**
   * How long one check may take, connection included, before it is a 503
   * `verifier_unreachable`; default 1000 ms.
   */
  timeoutMs?: number;
  /** The most connections kept to verifierd at once; default 64. */
  maxSockets?: number;
}

/** Who a verified token belongs to: verifierd's identity headers. */
export interface Identity {
  /** The token's `sub` (X-Auth-Subject). */
  subject: string;
  /** The session id (`sid`; X-Auth-Session); absent when the token has none. */
  sessionId?: string;
  /** The token id (`jti`; X-Auth-Token-Id). */
  tokenId: string;
  /** The token's `iss` (X-Auth-Issuer). */
  issuer: string;
  /** The token's whole claims set (X-Auth-Claims, decoded). */
  claims: Record<string, unknown>;
}

/** The token may pass. */
export interface Allowed {
  status: 200;
  identity: Identity;
}

/** The token is missing or refused: answer 401. */
export interface Unauthorized {
  status: 401;
  /** verifierd's WWW-Authenticate value, to send as it is. */
  wwwAuthenticate: string;
  /** The JSON body's `error`: "invalid_token", "invalid_request", "unauthorized". */
  error: string;
  /** The JSON body's `error_description`: "revoked_session", "expired", ... */
  description: string;
}

/** No decision now (verifierd not ready, stale, or not reachable): answer 503. */
export interface Unavailable {
  status: 503;
  /** The Retry-After value, in seconds, to send as it is. */
  retryAfter: string;
  /** Always "temporarily_unavailable". */
  error: string;
  /**
   * "not_ready", "stale", ... from verifierd; `verifier_unreachable` when it
   * could not be asked in time; `verifier_bad_answer` when its answer was
   * outside its contract.
   */
  description: string;
}

/** The answer to one check. */
export type CheckResult = Allowed | Unauthorized | Unavailable;

/**
 * The request headers a check reads: Node's `req.headers` or
 * `req.headersDistinct`, a plain object, or a fetch `Headers`.
 * Only `authorization` and `cookie` are forwarded.
 */
export type HeadersInput =
  | Readonly<Record<string, string | readonly string[] | undefined>>
  | { get(name: string): string | null };

/** A verifierd client. Safe for concurrent use. */
export interface Client {
  /** Asks verifierd about a request with these headers. Never rejects. */
  check(headers: HeadersInput): Promise<CheckResult>;
  /** Closes the kept-alive connections. */
  close(): void;
}

const UNREACHABLE = "verifier_unreachable";
const BAD_ANSWER = "verifier_bad_answer";
const MAX_BODY = 16 << 10;
const MAX_RESPONSE_HEADER = 64 << 10;
// RFC 9110 field-value: visible ASCII, obs-text, space and tab.
const BAD_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

function unavailable(description: string, retryAfter = "1"): Unavailable {
  return { status: 503, retryAfter, error: "temporarily_unavailable", description };
}

interface Target {
  socketPath?: string;
  host?: string;
  port?: number;
  path: string;
}

function target(o: ClientOptions): Target {
  let socketPath = o.socketPath;
  let url = o.url;
  if (url?.startsWith("unix:")) {
    if (socketPath !== undefined) throw new Error("jwtrevoke: give socketPath or url, not both");
    socketPath = url;
    url = undefined;
  }
  if ((socketPath === undefined) === (url === undefined)) {
    throw new Error("jwtrevoke: createClient needs exactly one of socketPath and url");
  }
  if (socketPath !== undefined) {
    const p = socketPath.startsWith("unix:") ? socketPath.slice("unix:".length) : socketPath;
    if (p === "") throw new Error("jwtrevoke: empty socketPath");
    return { socketPath: p, path: CHECK_PATH };
  }
  const u = new URL(url as string);
  if (u.protocol !== "http:") {
    throw new Error(`jwtrevoke: url ${url}: only http: (verifierd is local: loopback or a Unix socket)`);
  }
  let path = u.pathname.replace(/\/+$/, "");
  if (!path.endsWith(CHECK_PATH)) path += CHECK_PATH;
  return { host: u.hostname.replace(/^\[(.*)\]$/, "$1"), port: u.port === "" ? 80 : Number(u.port), path };
}

/** The values of header name (lower case) in h, each repeat kept. */
function values(h: HeadersInput, name: string): string[] {
  if (typeof (h as { get?: unknown }).get === "function") {
    const v = (h as { get(name: string): string | null }).get(name);
    return v === null ? [] : [v];
  }
  const rec = h as Readonly<Record<string, string | readonly string[] | undefined>>;
  let v = rec[name];
  if (v === undefined) {
    // A plain object may not be lower-cased.
    for (const k of Object.keys(rec)) {
      if (k.toLowerCase() === name) {
        v = rec[k];
        break;
      }
    }
  }
  if (v === undefined) return [];
  return typeof v === "string" ? [v] : [...v];
}

function header(res: http.IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Decodes X-Auth-Claims: the token's payload, base64url JSON. */
export function decodeClaims(b64url: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(b64url)) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(b64url, "base64url").toString("utf8"));
    if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
    return v as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Reads the params of a Bearer challenge: error="..", error_description="..". */
function challengeParam(challenge: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|[\\s,])${name}="((?:[^"\\\\]|\\\\.)*)"`).exec(challenge);
  return m?.[1]?.replace(/\\(.)/g, "$1");
}

function parseBody(body: string): { error?: string | undefined; description?: string | undefined } {
  try {
    const v: unknown = JSON.parse(body);
    if (v !== null && typeof v === "object") {
      const o = v as Record<string, unknown>;
      return {
        error: typeof o.error === "string" ? o.error : undefined,
        description: typeof o.error_description === "string" ? o.error_description : undefined,
      };
    }
  } catch {
    // fall through
  }
  return {};
}

/** Maps one verifierd answer to a result. Exported for tests. */
export function toResult(status: number, res: http.IncomingMessage, body: string): CheckResult {
  switch (status) {
    case 200: {
      const subject = header(res, "x-auth-subject");
      const raw = header(res, "x-auth-claims");
      const claims = raw === undefined ? {} : decodeClaims(raw);
      if (subject === undefined || subject === "" || claims === undefined) return unavailable(BAD_ANSWER);
      const str = (k: string): string | undefined => (typeof claims[k] === "string" ? (claims[k] as string) : undefined);
      const identity: Identity = {
        subject,
        tokenId: header(res, "x-auth-token-id") ?? str("jti") ?? "",
        issuer: header(res, "x-auth-issuer") ?? str("iss") ?? "",
        claims,
      };
      const sid = header(res, "x-auth-session");
      if (sid !== undefined && sid !== "") identity.sessionId = sid;
      return { status: 200, identity };
    }
    case 401: {
      const challenge = header(res, "www-authenticate");
      if (challenge === undefined || challenge === "") return unavailable(BAD_ANSWER);
      const b = parseBody(body);
      return {
        status: 401,
        wwwAuthenticate: challenge,
        error: b.error ?? challengeParam(challenge, "error") ?? "unauthorized",
        description: b.description ?? challengeParam(challenge, "error_description") ?? "",
      };
    }
    case 503: {
      const b = parseBody(body);
      const ra = header(res, "retry-after");
      return unavailable(b.description ?? BAD_ANSWER, ra !== undefined && /^\d+$/.test(ra) ? ra : "1");
    }
    default:
      return unavailable(BAD_ANSWER);
  }
}

/**
 * A 401 for a credential that cannot even be sent (a control character in
 * it): what verifierd answers for a malformed Authorization header.
 */
function malformed(): Unauthorized {
  const d = "malformed authorization header";
  return {
    status: 401,
    wwwAuthenticate: `Bearer realm="jwtrevoke", error="invalid_request", error_description="${d}"`,
    error: "invalid_request",
    description: d,
  };
}

/** Creates a client of the local verifierd. Throws only on bad options. */
export function createClient(options: ClientOptions): Client {
  const t = target(options);
  const timeoutMs = options.timeoutMs ?? 1000;
  if (!(timeoutMs > 0)) throw new Error("jwtrevoke: timeoutMs must be positive");
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 64 });

  function check(headers: HeadersInput): Promise<CheckResult> {
    const out: Record<string, string | string[]> = {};
    const auth = values(headers, "authorization");
    const cookie = values(headers, "cookie");
    for (const v of [...auth, ...cookie]) {
      if (BAD_HEADER_VALUE.test(v)) return Promise.resolve(malformed());
    }
    if (auth.length > 0) out.authorization = auth.length === 1 ? (auth[0] as string) : auth;
    if (cookie.length > 0) out.cookie = cookie.join("; ");

    return new Promise<CheckResult>((resolve) => {
      let done = false;
      const timer = setTimeout(() => finish(unavailable(UNREACHABLE)), timeoutMs);
      let req: http.ClientRequest | undefined;
      function finish(r: CheckResult): void {
        if (done) return;
        done = true;
        clearTimeout(timer);
        req?.destroy();
        resolve(r);
      }
      function attempt(mayRetry: boolean): void {
        let r: http.ClientRequest;
        try {
          r = http.request({
            agent,
            method: "GET",
            path: t.path,
            headers: out,
            maxHeaderSize: MAX_RESPONSE_HEADER,
            ...(t.socketPath !== undefined ? { socketPath: t.socketPath } : { host: t.host, port: t.port }),
          });
        } catch {
          finish(unavailable(UNREACHABLE));
          return;
        }
        req = r;
        r.on("error", (err: NodeJS.ErrnoException) => {
          // A kept-alive connection verifierd closed just as it was reused:
          // the check is idempotent, ask once more on a new one.
          if (mayRetry && r.reusedSocket && !done && (err.code === "ECONNRESET" || err.code === "EPIPE")) {
            attempt(false);
            return;
          }
          finish(unavailable(UNREACHABLE));
        });
        r.on("response", (res) => {
          const status = res.statusCode ?? 0;
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY) {
              finish(unavailable(BAD_ANSWER));
              return;
            }
            chunks.push(c);
          });
          res.on("end", () => {
            req = undefined; // the socket goes back to the pool: keep it
            finish(toResult(status, res, Buffer.concat(chunks).toString("utf8")));
          });
          res.on("error", () => finish(unavailable(UNREACHABLE)));
          res.on("close", () => {
            if (!res.complete) finish(unavailable(UNREACHABLE));
          });
        });
        r.end();
      }
      attempt(true);
    });
  }

  return { check, close: () => agent.destroy() };
}
