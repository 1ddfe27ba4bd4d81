// Package events is the wire contract of jwtrevoke: the revocation events the
// revoker publishes on NATS JetStream and every verifier consumes. It is
// written so that a team without Go can produce or consume the same events.
//
// # Events
//
// An event is one JSON object (UTF-8, at most [MaxEventSize] bytes, no other
// data before or after it) with these fields:
//
//	v          number  required  wire-format version; 1
//	id         string  required  1-128 bytes of [A-Za-z0-9._:-]; also sent as Nats-Msg-Id
//	kind       string  required  "token" | "session" | "subject" | "key" | "scope"
//	issued_at  string  required  when the revocation was decided, RFC 3339, UTC ("Z"), up to ns
//	jti        string  token     the revoked token's jti
//	exp        string  token     the revoked token's exp, RFC 3339 UTC
//	sid        string  session   the revoked session id
//	sub        string  subject   the subject logged out everywhere
//	epoch      string  subject,  tokens of sub (or of the scope) with iat <= epoch are revoked;
//	                   scope     RFC 3339 UTC, ns precision
//	kid        string  key       the revoked signing key id
//	claim      string  scope     the claim that is the epoch scope ("client_id", "tenant", "email"; "iss": a whole issuer)
//	value      string  scope     the claim's value whose tokens are revoked
//	iss        string  optional  the issuer the revocation is scoped to (any kind)
//	reason     string  optional  short cause, e.g. "logout", "refresh_reuse", "compromised"
//	initiator  string  optional  who asked
//
// Keys are case-sensitive and must not repeat; no value may be null; v is a
// JSON integer. A kind carries exactly its own fields: a "session" event
// with a jti is invalid. Identifiers (jti, sid, sub, kid, value) are 1-256 bytes of UTF-8 without
// control characters; so is iss; a claim 1-128 bytes of the same, and not sub, jti, sid (they
// have kinds of their own), exp, iat, nbf or aud; a scope of the claim "iss" has no iss field
// (it is one issuer's already); reason and initiator at most 256 bytes. Times must lie
// in [2000-01-01, 2200-01-01); a subject's or scope's epoch may be at most
// [MaxFutureSkew] after its issued_at. Unknown fields, an unknown kind or a
// version other than 1 (reported as an unsupported version whenever v is an
// integer) make the whole event invalid: consumers refuse it
// (and count it) instead of applying part of it.
//
// Worked examples, one per kind:
//
//	{"v":1,"id":"tok.5f0c","kind":"token","issued_at":"2026-11-22T10:00:00.5Z","jti":"a1b2c3","exp":"2026-11-22T10:05:00Z"}
//	{"v":1,"id":"ses.9e1d","kind":"session","issued_at":"2026-11-22T10:00:00.5Z","sid":"s-42","reason":"logout"}
//	{"v":1,"id":"sub.77aa","kind":"subject","issued_at":"2026-11-22T10:00:00.5Z","sub":"alice","epoch":"2026-11-22T10:00:00.123456789Z","reason":"logout_all"}
//	{"v":1,"id":"key.0001","kind":"key","issued_at":"2026-11-22T10:00:00.5Z","kid":"2026-11-a","reason":"compromised","initiator":"ops"}
//
// Epoch scopes beyond the subject: every token whose client_id is app-7
// issued up to the epoch; and every token of an issuer (incident response:
// one event, not one per subject):
//
//	{"v":1,"id":"scp.0001","kind":"scope","issued_at":"2026-11-22T10:00:00.5Z","epoch":"2026-11-22T10:00:00Z","claim":"client_id","value":"app-7","reason":"client_compromised"}
//	{"v":1,"id":"iss.0001","kind":"scope","issued_at":"2026-11-22T10:00:00.5Z","epoch":"2026-11-22T10:00:00Z","claim":"iss","value":"https://idp.example.com/"}
//
// And one scoped to an issuer, as the revoker publishes a provider's
// back-channel logout: session 8c1f-44d0 of https://idp.example.com/ only.
//
//	{"v":1,"id":"ses.b7e0","kind":"session","issued_at":"2026-11-22T10:00:00.5Z","sid":"8c1f-44d0","iss":"https://idp.example.com/","reason":"backchannel_logout"}
//
// # Issuers
//
// An event without iss, as every event before the field existed, applies to
// the tokens of every issuer a consumer trusts. An event with iss applies
// only to tokens whose iss claim is exactly that string: identifiers
// collide across identity providers (two providers may both have a subject
// "1234"), so a logout taken from one provider must not touch another's
// tokens. The field is a compatible addition: a producer that never sets it
// writes what it wrote before. A consumer that does not know the field
// refuses a scoped event as an unknown field, so it never applies a scoped
// revocation more narrowly than meant; it applies it not at all and counts
// it, which is why every consumer must be updated before any publisher
// scopes events.
//
// # Meaning
//
// Events only ever add restriction. A consumer keeps the union of revoked
// jtis, sids and kids and, per subject, the largest epoch it has seen;
// applying events in any order, any number of times, gives the same state, so
// at-least-once delivery and replay are safe and no event can un-revoke a
// token.
//
// # Rules
//
// These are the only rules; every consumer applies them alike ([Event.Restricts],
// [EpochRevokes], [Merge], [Event.HoldUntil]).
//
// Which event restricts which token (the token's signature and claims
// already checked), and the reason it is rejected with:
//
//	token    the token's jti equals jti                        revoked_token    [ErrTokenRevoked]
//	session  the token's sid equals sid                        revoked_session  [ErrSessionRevoked]
//	subject  the token's sub equals sub and iat <= epoch       revoked_subject  [ErrSubjectRevoked]
//	key      the token's header kid equals kid                 revoked_key      [ErrKeyRevoked]
//	scope    the token's claim named claim is the string value
//	         (for claim "iss", its iss) and iat <= epoch       revoked_scope    [ErrScopeRevoked]
//
// and, for an event with iss, the token's iss equals it as well. A
// consumer reads only the claims it is configured to treat as epoch scopes
// (and iss, always); a token is compared once, with the largest epoch among
// its subject's and its scopes' — the same answer as asking each event.
// The epoch comparison is to the nanosecond: iat <= epoch is rejected,
// iat > epoch, even by a nanosecond, accepted; a token without an iat is
// rejected under any epoch, since it cannot prove it is newer. A token that
// several events restrict is reported in the order key, token, session,
// subject or scope (whichever epoch is the largest). The reason codes are the verifier's (metrics, the
// WWW-Authenticate error_description).
//
// How two events revoking the same thing (the same kind, identifier and
// iss, or both without iss) merge: the one with the later bound wins, the bound being the token's
// exp, the session event's issued_at, the subject's or scope's epoch (a key event has
// none: revoked for ever either way); on equal bounds the one with a
// non-empty reason, then the lexically smaller reason. So a token is held
// until the latest exp asked for, a subject's epoch is the largest seen, a
// session's hold runs from its latest revocation. A publisher need not
// publish an event that an earlier one with a bound at least as late
// already covers ([Event.Covers]).
//
// How long a restriction must be held, for tokens living at most L
// (exp - iat) checked with leeway W ([Event.HoldUntil]):
//
//	token    exp + W
//	session  issued_at + L + W + 1 minute ([MaxFutureSkew])
//	subject  epoch + L + W
//	scope    epoch + L + W
//	key      forever (whoever holds a leaked key can forge any iat)
//
// # Subjects and stream
//
// Each event is published on SubjectPrefix.<jti|sid|sub|kid>.<value>, the value
// base64url-encoded without padding (RFC 4648 §5), for example
// revocations.sub.YWxpY2U for subject "alice" (see [Subject]); an event with
// iss on the same followed by .<iss, base64url>, for example
// revocations.sub.YWxpY2U.aHR0cHM6Ly9pZHAuZXhhbXBsZQ for "alice" of
// https://idp.example (see [IssuerSubject]). A scope event is published on
// SubjectPrefix.scope.<claim>.<value>[.<iss>], each base64url (see
// [ScopeSubject]). The stream
// [DefaultStreamName] captures "revocations.>" and keeps only the latest
// message per subject, for at least the longest token lifetime plus leeway
// plus a margin (see [StreamConfig]). Publishers must therefore never publish
// a smaller epoch for a subject after a larger one (the revoker takes the
// maximum of the recorded epoch and its clock).
//
// Headers: Nats-Msg-Id is the event id (JetStream stores a retried publish
// once); key events carry "Nats-TTL: never" so they outlive the stream's
// MaxAge; traceparent/tracestate (W3C Trace Context) carry the publisher's
// trace so consumers continue it.
//
// # Batch messages
//
// A producer with many events at once may carry up to [MaxBatchEvents] of
// them in one message of at most [MaxBatchSize] bytes: the events' JSON
// objects in order, one per line, separated by a single newline ("\n"; no
// empty line, none after the last). It is published on
// revocations.batch.<d> where d is the first 16 bytes of the SHA-256 of the
// body, base64url without padding ([BatchSubject]), with Nats-Msg-Id
// "batch.<d>". Key events never travel in a batch: each needs its own
// "Nats-TTL: never". One message instead of hundreds is what lets a stream
// replicated three times and followed by many replicas take thousands of
// revocations a second (docs/propagation.md).
//
// A consumer decodes a message by its subject ([DecodeMsg]): a batch's
// subject must name its body's digest and every line must be a valid,
// batchable event, or the whole message is refused, nothing of it applied.
// Every event of a batch carries the message's stream sequence. Because
// the subject names the body, two batches share a subject only if they
// are the same bytes (a retried publish), so the stream's one message per
// subject never lets a batch replace another one, nor a single event's
// message replace a batch: a batch stays for the stream's MaxAge, which
// covers every event it can carry. It is not compacted, so a replay reads
// it whole even after later revocations of the same things.
//
// A consumer that predates batch messages refuses them (several objects
// are not one event: malformed) and counts them: update every consumer
// before a producer sends batches. In this repository the revoker sends them for
// POST /v1/revocations/batch only.
package events
