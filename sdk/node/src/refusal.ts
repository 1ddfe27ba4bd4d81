/** The HTTP answer to a refused check, as verifierd and the Go middleware send it. */
import type { Unauthorized, Unavailable } from "./client";

/** The status, headers and JSON body to answer a 401 or 503 result with. */
export interface RefusalResponse {
  status: 401 | 503;
  headers: Record<string, string>;
  /** {"error","error_description"} */
  body: { error: string; error_description: string };
}

/**
 * The answer to a refused check: 401 with WWW-Authenticate, or 503 with
 * Retry-After; Cache-Control: no-store and a JSON body
 * {"error","error_description"} either way.
 */
export function refusal(r: Unauthorized | Unavailable): RefusalResponse {
  const headers: Record<string, string> = { "Cache-Control": "no-store" };
  if (r.status === 401) headers["WWW-Authenticate"] = r.wwwAuthenticate;
  else headers["Retry-After"] = r.retryAfter;
  return { status: r.status, headers, body: { error: r.error, error_description: r.description } };
}
