/** plugins/router_memcached/protocol.ts: memcached's text protocol `get` / `set`, byte for byte. */
import { encodeGet, encodeSet, keyProblem, parseGetReply, parseStoreReply } from '../../plugins/router_memcached/protocol.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('memcached requests', () => {
  it('get and set as uWSGI writes them (flags 0, the expiry as given)', () => {
    expect(encodeGet(b('page:/x')).toString('latin1')).toBe('get page:/x\r\n');
    expect(encodeSet(b('k'), b('hi\r\nthere'), '0').toString('latin1')).toBe('set k 0 0 9\r\nhi\r\nthere\r\n');
    expect(encodeSet(b('k'), b(''), '60').toString('latin1')).toBe('set k 0 60 0\r\n\r\n');
  });

  it('refuses keys the text protocol cannot carry', () => {
    expect(keyProblem(b('page:/a/b?c=d'))).toBeNull();
    expect(keyProblem(b('x'.repeat(250)))).toBeNull();
    expect(keyProblem(b(''))).toMatch(/empty/);
    expect(keyProblem(b('x'.repeat(251)))).toMatch(/251 bytes long/);
    expect(keyProblem(b('a b'))).toMatch(/space or a control character/);
    expect(keyProblem(b('a\r\nflush_all'))).toMatch(/control character/);
    expect(keyProblem(b('a\x7f'))).toMatch(/control character/);
    expect(keyProblem(b('café'))).toBeNull();
  });
});

describe('parseGetReply', () => {
  it('END alone is a miss', () => {
    expect(parseGetReply(b('END\r\n'))).toEqual({ value: null, used: 5 });
  });

  it('a VALUE block is the value, with or without a cas field', () => {
    const reply = b('VALUE k 0 5\r\nhello\r\nEND\r\n');
    const r = parseGetReply(reply);
    expect(typeof r === 'object' && r.value?.toString()).toBe('hello');
    expect(typeof r === 'object' && r.used).toBe(reply.length);
    const cas = parseGetReply(b('VALUE k 42 2 1234\r\nhi\r\nEND\r\n'));
    expect(typeof cas === 'object' && cas.value?.toString()).toBe('hi');
  });

  it('a value may hold CR LF and END; an empty value is a value', () => {
    const r = parseGetReply(b('VALUE k 0 7\r\nEND\r\n\r\n\r\nEND\r\n'));
    expect(typeof r === 'object' && r.value?.toString('latin1')).toBe('END\r\n\r\n');
    const empty = parseGetReply(b('VALUE k 0 0\r\n\r\nEND\r\n'));
    expect(typeof empty === 'object' && empty.value?.length).toBe(0);
  });

  it('asks for more bytes while the reply is incomplete: 0 before the first line, the total after it', () => {
    expect(parseGetReply(b('VALU'))).toBe(0);
    expect(parseGetReply(b('VALUE k 0 5\r\nhel'))).toBe(13 + 5 + 2 + 5);
    expect(parseGetReply(b('VALUE k 0 5\r\nhello\r\nEN'))).toBe(25);
  });

  it('error replies and garbage throw', () => {
    expect(() => parseGetReply(b('ERROR\r\n'))).toThrow('memcached answered "ERROR"');
    expect(() => parseGetReply(b('SERVER_ERROR out of memory\r\n'))).toThrow('memcached answered "SERVER_ERROR out of memory"');
    expect(() => parseGetReply(b('HTTP/1.1 400 Bad Request\r\n'))).toThrow(/unexpected reply/);
    expect(() => parseGetReply(b('VALUE k 0 2\r\nhiXXEND\r\n'))).toThrow(/not followed by CR LF and END/);
    expect(() => parseGetReply(Buffer.alloc(2000, 0x41))).toThrow(/longer than 1024 bytes/);
  });
});

describe('parseStoreReply', () => {
  it('the reply line; error lines throw', () => {
    expect(parseStoreReply(b('STORED\r\n'))).toEqual({ value: 'STORED', used: 8 });
    expect(parseStoreReply(b('NOT_STORED\r\n'))).toEqual({ value: 'NOT_STORED', used: 12 });
    expect(parseStoreReply(b('STO'))).toBe(0);
    expect(() => parseStoreReply(b('SERVER_ERROR object too large for cache\r\n'))).toThrow(/object too large/);
  });
});
