/** plugins/router_redis/protocol.ts: RESP commands and the replies GET and SET give, byte for byte. */
import { encodeCommand, encodeGet, encodeSet, parseReply } from '../../plugins/router_redis/protocol.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('redis commands', () => {
  it('are arrays of bulk strings, binary-safe', () => {
    expect(encodeGet(b('a b\r\nFLUSHALL')).toString('latin1')).toBe('*2\r\n$3\r\nGET\r\n$13\r\na b\r\nFLUSHALL\r\n');
    expect(encodeCommand(['PING']).toString('latin1')).toBe('*1\r\n$4\r\nPING\r\n');
    expect(encodeGet(b('')).toString('latin1')).toBe('*2\r\n$3\r\nGET\r\n$0\r\n\r\n');
  });

  it('SET, with EX unless expires is 0', () => {
    expect(encodeSet(b('k'), b('v\r\n'), '0').toString('latin1')).toBe('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n');
    expect(encodeSet(b('k'), b('v'), '60').toString('latin1')).toBe('*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nEX\r\n$2\r\n60\r\n');
  });
});

describe('parseReply', () => {
  it('bulk strings, nil, status, error, integer', () => {
    expect(parseReply(b('$5\r\nhello\r\n'))).toEqual({ value: { type: 'bulk', value: b('hello') }, used: 11 });
    expect(parseReply(b('$0\r\n\r\n'))).toEqual({ value: { type: 'bulk', value: b('') }, used: 6 });
    expect(parseReply(b('$-1\r\n'))).toEqual({ value: { type: 'bulk', value: null }, used: 5 });
    expect(parseReply(b('+OK\r\n'))).toEqual({ value: { type: 'simple', value: 'OK' }, used: 5 });
    expect(parseReply(b('-WRONGTYPE Operation against a key\r\n'))).toEqual({ value: { type: 'error', value: 'WRONGTYPE Operation against a key' }, used: 36 });
    expect(parseReply(b(':-2\r\n'))).toEqual({ value: { type: 'integer', value: -2 }, used: 5 });
  });

  it('a bulk string may hold CR LF', () => {
    const r = parseReply(b('$7\r\n$-1\r\n\r\n\r\n'));
    expect(typeof r === 'object' && r.value).toEqual({ type: 'bulk', value: b('$-1\r\n\r\n') });
  });

  it('asks for more bytes while the reply is incomplete', () => {
    expect(parseReply(b('$5'))).toBe(0);
    expect(parseReply(b('$5\r\nhe'))).toBe(11);
    expect(parseReply(b('+O'))).toBe(0);
  });

  it('malformed replies and arrays throw', () => {
    expect(() => parseReply(b('*2\r\n$1\r\na\r\n$1\r\nb\r\n'))).toThrow(/unexpected reply "\*2"/);
    expect(() => parseReply(b('$x\r\n'))).toThrow(/unexpected reply/);
    expect(() => parseReply(b('$2\r\nhiXX'))).toThrow(/not followed by CR LF/);
    expect(() => parseReply(Buffer.alloc(2000, 0x24))).toThrow(/longer than 1024 bytes/);
  });
});
