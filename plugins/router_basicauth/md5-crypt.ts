/**
 * MD5-crypt (`$1$`, FreeBSD/glibc) and Apache's `$apr1$` variant (same algorithm, other magic):
 * the crypt() hashes `htpasswd` and `openssl passwd -1 / -apr1` write. Node has no crypt(3),
 * so this is implemented here; DES, SHA-crypt ($5$/$6$) and bcrypt hashes are refused.
 */
import { createHash } from 'node:crypto';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function to64(v: number, n: number): string {
  let s = '';
  while (n-- > 0) {
    s += ITOA64[v & 0x3f];
    v >>= 6;
  }
  return s;
}

const md5 = (...parts: Buffer[]): Buffer => {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** The full hash string (`$1$salt$…`) for `password` with `salt` (up to 8 chars) and `magic`. */
export function md5Crypt(password: string, salt: string, magic: '$1$' | '$apr1$'): string {
  const pw = Buffer.from(password);
  const s = Buffer.from(salt.split('$')[0]!.slice(0, 8));
  const m = Buffer.from(magic);
  let alt: Buffer = md5(pw, s, pw);
  const h = createHash('md5');
  h.update(pw);
  h.update(m);
  h.update(s);
  for (let pl = pw.length; pl > 0; pl -= 16) h.update(alt.subarray(0, Math.min(pl, 16)));
  for (let i = pw.length; i > 0; i >>= 1) h.update(i & 1 ? Buffer.from([0]) : pw.subarray(0, 1));
  let fin: Buffer = h.digest();
  // 1000 rounds: the algorithm's deliberate slowness.
  for (let i = 0; i < 1000; i++) {
    const parts: Buffer[] = [];
    parts.push(i & 1 ? pw : fin);
    if (i % 3) parts.push(s);
    if (i % 7) parts.push(pw);
    parts.push(i & 1 ? fin : pw);
    fin = md5(...parts);
  }
  alt = fin;
  const f = (a: number, b: number, c: number): number => (alt[a]! << 16) | (alt[b]! << 8) | alt[c]!;
  const enc = to64(f(0, 6, 12), 4) + to64(f(1, 7, 13), 4) + to64(f(2, 8, 14), 4) + to64(f(3, 9, 15), 4) + to64(f(4, 10, 5), 4) + to64(alt[11]!, 2);
  return `${magic}${s.toString()}$${enc}`;
}
