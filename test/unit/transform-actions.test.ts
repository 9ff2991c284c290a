/** core/transform/actions.ts: uWSGI's key=value argument lists and start-up errors naming the rule. */
import { parseKeyValues, transformationActions } from '../../core/transform/actions.ts';

describe('parseKeyValues', () => {
  it('splits key=value pairs; the value keeps later = signs', () => {
    expect([...parseKeyValues('filename=/tmp/x,mode=0600,q=a=b')]).toEqual([
      ['filename', '/tmp/x'],
      ['mode', '0600'],
      ['q', 'a=b'],
    ]);
  });
  it('a backslash makes the next character literal, as uwsgi_kvlist_parse', () => {
    expect(parseKeyValues('filename=/tmp/a\\,b,mode=0600').get('filename')).toBe('/tmp/a,b');
    expect(parseKeyValues('k\\=1=v').get('k=1')).toBe('v');
  });
  it('skips empty items and refuses an item without a key', () => {
    expect([...parseKeyValues(',a=1,')]).toEqual([['a', '1']]);
    expect(() => parseKeyValues('/tmp/x')).toThrow(/"\/tmp\/x" is not key=value/);
    expect(() => parseKeyValues('=x')).toThrow(/is not key=value/);
  });
});

describe('transformationActions', () => {
  it('names the rule in every argument error', () => {
    const [action] = transformationActions([
      {
        name: 'demo',
        prepare: (arg) => {
          parseKeyValues(arg);
          return () => ({ name: 'demo', streaming: true, transform: (b: Buffer) => b });
        },
      },
    ]);
    expect(() => action!.prepare('oops', { option: 'route-run', value: 'demo:oops' })).toThrow(
      /^invalid "demo:" transformation in --route-run "demo:oops": "oops" is not key=value$/,
    );
  });
});
