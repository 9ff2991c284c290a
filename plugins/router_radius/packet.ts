/**
 * RADIUS Access-Request / reply packets (RFC 2865) as uWSGI's router_radius writes and checks
 * them:
 *
 *   Code(1)=1 | Identifier(1) | Length(2) | Request Authenticator(16, random)
 *   User-Name(1) | User-Password(2, hidden with the shared secret) | NAS-Port(5) | NAS-IP-Address(4)
 *
 * (the attributes in that order, as uWSGI sends them). A reply counts only when its Identifier
 * is the request's and its Response Authenticator is MD5(Code+Identifier+Length+Request
 * Authenticator+Attributes+Secret).
 *
 * Where tsuwsgi differs from uWSGI 2.0.21, on purpose:
 * - the Request Authenticator comes from crypto.randomBytes, not rand() (RFC 2865 §3 wants it
 *   unpredictable: it is what hides the password);
 * - a password whose length is already a multiple of 16 is not given an extra block of NULs
 *   (uWSGI always pads by 1..16 bytes; servers strip the NULs, so both authenticate the same);
 * - the reply is checked over its Length field, however long it is: uWSGI reads at most as many
 *   bytes as it sent, so an Access-Accept carrying attributes (Reply-Message, Class…) longer
 *   than the request fails its authenticator check and the user is refused.
 */
import { createHash, randomBytes } from 'node:crypto';

export const ACCESS_REQUEST = 1;
export const ACCESS_ACCEPT = 2;
export const ACCESS_REJECT = 3;
export const ACCESS_CHALLENGE = 11;

const ATTR_USER_NAME = 1;
const ATTR_USER_PASSWORD = 2;
const ATTR_NAS_IP_ADDRESS = 4;
const ATTR_NAS_PORT = 5;

/** RFC 2865 §5.2: the hidden password is at most 128 bytes. */
export const MAX_PASSWORD_BYTES = 128;
/** An attribute's value is at most 253 bytes (its length byte counts the 2-byte header). */
export const MAX_USER_NAME_BYTES = 253;

/** Identifiers go 1, 2, … 255, 0, 1 … per process, as uWSGI's static counter. */
let lastIdentifier = 0;

export interface AccessRequest {
  readonly packet: Buffer;
  readonly identifier: number;
  readonly authenticator: Buffer;
}

/**
 * RFC 2865 §5.2 User-Password hiding: the password padded with NULs to a multiple of 16 bytes,
 * each 16-byte block XORed with MD5(secret + previous hidden block), the first with
 * MD5(secret + Request Authenticator).
 */
export function hidePassword(password: Buffer, secret: Buffer, authenticator: Buffer): Buffer {
  const padded = Buffer.alloc(Math.max(16, Math.ceil(password.length / 16) * 16));
  password.copy(padded);
  let previous = authenticator;
  for (let i = 0; i < padded.length; i += 16) {
    const md5 = createHash('md5').update(secret).update(previous).digest();
    for (let j = 0; j < 16; j++) padded[i + j] = padded[i + j]! ^ md5[j]!;
    previous = padded.subarray(i, i + 16);
  }
  return padded;
}

/**
 * The Access-Request for `user`/`password` (1..253 and 0..128 bytes: the caller checks).
 * `nasAddress` is the NAS-IP-Address as a 32-bit number.
 */
export function accessRequest(user: Buffer, password: Buffer, secret: Buffer, nasPort: number, nasAddress: number): AccessRequest {
  lastIdentifier = (lastIdentifier + 1) & 0xff;
  const authenticator = randomBytes(16);
  const hidden = hidePassword(password, secret, authenticator);
  const length = 20 + 2 + user.length + 2 + hidden.length + 6 + 6;
  const p = Buffer.alloc(length);
  p[0] = ACCESS_REQUEST;
  p[1] = lastIdentifier;
  p.writeUInt16BE(length, 2);
  authenticator.copy(p, 4);
  let at = 20;
  p[at++] = ATTR_USER_NAME;
  p[at++] = user.length + 2;
  at += user.copy(p, at);
  p[at++] = ATTR_USER_PASSWORD;
  p[at++] = hidden.length + 2;
  at += hidden.copy(p, at);
  p[at++] = ATTR_NAS_PORT;
  p[at++] = 6;
  at = p.writeUInt32BE(nasPort >>> 0, at);
  p[at++] = ATTR_NAS_IP_ADDRESS;
  p[at++] = 6;
  p.writeUInt32BE(nasAddress >>> 0, at);
  return { packet: p, identifier: lastIdentifier, authenticator };
}

/** True when `reply` is an answer to `request` (same Identifier), whatever else it holds. */
export function answers(reply: Buffer, request: AccessRequest): boolean {
  return reply.length >= 20 && reply[1] === request.identifier;
}

/**
 * The Code of a reply to `request`, or an error text when the reply is malformed or its
 * Response Authenticator does not prove it was made with our shared secret.
 */
export function replyCode(reply: Buffer, request: AccessRequest, secret: Buffer): number | { error: string } {
  const length = reply.readUInt16BE(2);
  // RFC 2865 §3: bytes past Length are padding; a datagram shorter than Length is discarded.
  if (length < 20 || length > reply.length) return { error: `malformed reply (Length ${length}, ${reply.length} bytes received)` };
  const expected = createHash('md5')
    .update(reply.subarray(0, 4))
    .update(request.authenticator)
    .update(reply.subarray(20, length))
    .update(secret)
    .digest();
  if (!expected.equals(reply.subarray(4, 20))) return { error: 'the reply\'s Response Authenticator is wrong: is secret= the shared secret the RADIUS server has for this client?' };
  return reply[0]!;
}
