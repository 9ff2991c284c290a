import { parseAddress } from '../../core/server/sockets.ts';

describe('socket addresses (spec/core.md §2.1)', () => {
  it('reads HOST:PORT, :PORT (all interfaces) and [IPv6]:PORT, the last colon separating the port', () => {
    expect(parseAddress('127.0.0.1:3031')).toEqual({ family: 'tcp', host: '127.0.0.1', port: 3031, ipv6: false });
    expect(parseAddress(':9090')).toEqual({ family: 'tcp', host: '0.0.0.0', port: 9090, ipv6: false });
    expect(parseAddress('[::1]:8000')).toEqual({ family: 'tcp', host: '::1', port: 8000, ipv6: true });
    expect(parseAddress('localhost:0')).toEqual({ family: 'tcp', host: '127.0.0.1', port: 0, ipv6: false });
  });

  it('reads a name without a colon as a unix socket path, and fd://N as an inherited descriptor', () => {
    expect(parseAddress('/tmp/app.sock')).toEqual({ family: 'unix', path: '/tmp/app.sock', abstract: false });
    expect(parseAddress('fd://3')).toEqual({ family: 'fd', fd: 3 });
  });

  it('refuses bad ports, over-long unix paths and abstract names with a message that says what to do', () => {
    expect(() => parseAddress('127.0.0.1:http')).toThrow(/port must be a number from 0 to 65535/);
    expect(() => parseAddress('127.0.0.1:70000')).toThrow(/port must be a number/);
    expect(() => parseAddress('/' + 'x'.repeat(200))).toThrow(/longer than 107 bytes/);
    expect(() => parseAddress('@name')).toThrow(/use a socket file path instead/);
    expect(() => parseAddress('')).toThrow(/empty socket address/);
  });
});
