/**
 * jwtrevoke for Node: asks the local verifierd (jwtrevoke's verifier as a
 * local authorizer) whether a request's token may pass, over a Unix socket
 * or loopback keep-alive. No Redis, no copy of the verifier's logic.
 */
export {
  createClient,
  decodeClaims,
  CHECK_PATH,
  type Client,
  type ClientOptions,
  type CheckResult,
  type Allowed,
  type Unauthorized,
  type Unavailable,
  type Identity,
  type HeadersInput,
} from "./client";
export { refusal, type RefusalResponse } from "./refusal";
export { express, type Middleware, type MiddlewareOptions, type AuthRequest } from "./express";
export { hapi, hapiCredentials, SCHEME, type HapiCredentials, type HapiStrategyOptions, type HapiServerLike } from "./hapi";
