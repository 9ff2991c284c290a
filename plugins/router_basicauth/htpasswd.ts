/**
 * htpasswd verification for basicauth: `{SHA}` (base64 SHA-1), traditional 13-character DES
 * crypt (the only crypt() kind uWSGI 2.0 accepts, see des-crypt.ts) and the MD5-crypt forms
 * (`$1$`, `$apr1$`, which uWSGI 2.0 never matches: it cuts hashes to 13 characters). Other
 * crypt() hashes (`$5$`, `$6$`, bcrypt `$2y$`) are refused with an explicit log line instead
 * of silently never matching.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { desCrypt } from './des-crypt.ts';
import { md5Crypt } from './md5-crypt.ts';

export type HtpasswdResult = { ok: boolean } | { error: string };

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Check `password` against one stored hash. */
export function verifyHash(hash: string, password: string): HtpasswdResult {
  if (hash.startsWith('{SHA}')) return { ok: same(hash.slice(5), createHash('sha1').update(password).digest('base64')) };
  for (const magic of ['$1$', '$apr1$'] as const) {
    if (hash.startsWith(magic)) {
      const salt = hash.slice(magic.length).split('$')[0]!;
      return { ok: same(hash, md5Crypt(password, salt, magic)) };
    }
  }
  if (/^[./0-9A-Za-z]{13}$/.test(hash)) return { ok: same(hash, desCrypt(password, hash.slice(0, 2))) };
  return { error: `unsupported password hash "${hash.slice(0, 4)}…": tsuwsgi's basicauth understands {SHA}, DES crypt, $1$ and $apr1$ (htpasswd -s / -d / -m, openssl passwd -1 / -apr1); re-create the entry with one of those` };
}

/** Look `user` up in an htpasswd file (read on every check, so edits apply at once, as in uWSGI). */
export function checkHtpasswd(file: string, user: string, password: string): HtpasswdResult {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return { error: `cannot read htpasswd file ${file}: ${(err as Error).message}` };
  }
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0 || line.slice(0, colon) !== user) continue;
    return verifyHash(line.slice(colon + 1).trim(), password);
  }
  return { ok: false };
}
