/**
 * The hash functions of uWSGI's core/hash.c, bit for bit, so `hash:` picks the same item
 * for the same key as a uWSGI front would (shards stay put when migrating).
 */

/**
 * djb33x: h = 5381; for each byte, h = (h * 33) ^ c (32-bit). uWSGI reads the key as `char`,
 * which is signed on x86-64 (unsigned on ARM Linux): a byte >= 0x80 is sign-extended before
 * the xor, i.e. xored as 0xFFFFFFxx. We follow x86-64 (checked against uWSGI 2.0.21 there);
 * ASCII keys hash the same everywhere.
 */
export function djb33x(key: Buffer): number {
  let h = 5381;
  for (const b of key) {
    const c = b >= 0x80 ? b - 0x100 : b;
    h = (Math.imul(h, 33) ^ c) >>> 0;
  }
  return h >>> 0;
}

/**
 * murmur2: uWSGI's MurmurHash2 32-bit (Austin Appleby, adapted from nginx's ngx_murmur_hash2):
 * m = 0x5bd1e995, seed h = 0 ^ len, little-endian 4-byte blocks, final mix
 * h ^= h >> 13; h *= m; h ^= h >> 15 — with uWSGI's tail quirk kept (below), so keys whose
 * length is not a multiple of 4 and longer than 4 bytes do NOT hash like the reference
 * MurmurHash2, but like uWSGI (checked against uWSGI 2.0.21's router_hash).
 */
export function murmur2(key: Buffer): number {
  const m = 0x5bd1e995;
  let len = key.length;
  let h = (0 ^ len) >>> 0;
  let i = 0;
  while (len >= 4) {
    let k = key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
    i += 4;
    len -= 4;
  }
  // [quirk] uWSGI's tail reads `key`, the signed-char pointer that the loop never advanced (it
  // advances `ukey`): the tail bytes are the FIRST bytes of the key, sign-extended when >= 0x80
  // (x86-64 char). The C switch falls through 3 → 2 → 1.
  const sc = (b: number): number => (b >= 0x80 ? b - 0x100 : b);
  if (len >= 3) h ^= sc(key[2]!) << 16;
  if (len >= 2) h ^= sc(key[1]!) << 8;
  if (len >= 1) {
    h ^= sc(key[0]!);
    h = Math.imul(h, m);
  }
  h >>>= 0;
  h ^= h >>> 13;
  h = Math.imul(h, m) >>> 0;
  h ^= h >>> 15;
  return h >>> 0;
}

export const HASH_ALGOS: Readonly<Record<string, (key: Buffer) => number>> = { djb33x, murmur2 };
