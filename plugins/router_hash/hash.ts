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
 * murmur2: uWSGI's MurmurHash2 32-bit (Austin Appleby; nginx's ngx_murmur_hash2 layout):
 * m = 0x5bd1e995, r = 24, seed h = 0 ^ len, little-endian 4-byte blocks, tail bytes unsigned,
 * final mix h ^= h >> 13; h *= m; h ^= h >> 15 — with uWSGI's pointer bug kept (below), so
 * keys longer than 4 bytes do NOT hash like the reference MurmurHash2, but like uWSGI.
 */
export function murmur2(key: Buffer): number {
  const m = 0x5bd1e995;
  let len = key.length;
  let h = (0 ^ len) >>> 0;
  // [quirk] uWSGI's loop advances `key`, not the `key_u8` it reads through, so every block and
  // the tail read from the start of the key: i stays 0 (checked against uWSGI 2.0.21).
  const i = 0;
  while (len >= 4) {
    let k = key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
    len -= 4;
  }
  // The C switch falls through 3 → 2 → 1.
  if (len >= 3) h ^= key[i + 2]! << 16;
  if (len >= 2) h ^= key[i + 1]! << 8;
  if (len >= 1) {
    h ^= key[i]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h >>> 0;
}

export const HASH_ALGOS: Readonly<Record<string, (key: Buffer) => number>> = { djb33x, murmur2 };
