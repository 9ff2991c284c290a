import { decodeHeader, decodeVars, describeVarsError, encodeHeader, encodePacket, isVarsError } from '../../core/protocol/uwsgi-packet.ts';

describe('uwsgi packet codec (spec/core.md §1.1–1.2)', () => {
  it('encodes the documented two-var GET example byte for byte', () => {
    const pkt = encodePacket(0, [
      ['REQUEST_METHOD', 'GET'],
      ['PATH_INFO', '/'],
    ]);
    const golden = Buffer.concat([
      Buffer.from([0x00, 0x23, 0x00, 0x00]),
      Buffer.from([0x0e, 0x00]), Buffer.from('REQUEST_METHOD'), Buffer.from([0x03, 0x00]), Buffer.from('GET'),
      Buffer.from([0x09, 0x00]), Buffer.from('PATH_INFO'), Buffer.from([0x01, 0x00]), Buffer.from('/'),
    ]);
    expect(pkt.equals(golden)).toBe(true);
    expect(pkt.length).toBe(4 + 35);
  });

  it('writes datasize little-endian and modifier2 in the last header byte', () => {
    expect([...encodeHeader({ modifier1: 5, datasize: 0x1234, modifier2: 7 })]).toEqual([5, 0x34, 0x12, 7]);
    expect(decodeHeader(Buffer.from([99, 0x10, 0x00, 1]))).toEqual({ modifier1: 99, datasize: 16, modifier2: 1 });
  });

  it('reads an HTTP request line as the famous block size 21573', () => {
    expect(decodeHeader(Buffer.from('GET / HTTP/1.0'))).toEqual({ modifier1: 71, datasize: 21573, modifier2: 32 });
  });

  it('round-trips latin-1 bytes and zero-length values', () => {
    const vars: Array<[string, string]> = [['HTTP_X', '\u00e9\u00ff'], ['EMPTY', '']];
    const pkt = encodePacket(0, vars);
    expect(decodeVars(pkt.subarray(4))).toEqual(vars);
  });

  it('refuses a zero-length key with uWSGI\'s message', () => {
    const block = Buffer.from([0, 0, 1, 0, 0x41]);
    const r = decodeVars(block);
    expect(isVarsError(r)).toBe(true);
    if (isVarsError(r)) expect(describeVarsError(r)).toBe('uwsgi key cannot be null. skip this var.');
  });

  it('refuses a var running past the block', () => {
    const good = encodePacket(0, [['A', 'B']]).subarray(4);
    const r = decodeVars(good.subarray(0, good.length - 1));
    expect(isVarsError(r) && r.kind).toBe('truncated');
  });

  it('refuses more vars than max-vars allows', () => {
    const many = encodePacket(0, Array.from({ length: 10 }, (_, i) => [`K${i}`, 'v'] as [string, string])).subarray(4);
    const r = decodeVars(many, 4);
    expect(isVarsError(r) && r.kind).toBe('too-many');
  });

  it('refuses to encode more than 65535 bytes of vars', () => {
    expect(() => encodePacket(0, [['HTTP_COOKIE', 'x'.repeat(70000)]])).toThrow(/exceeds the protocol maximum/);
  });
});
