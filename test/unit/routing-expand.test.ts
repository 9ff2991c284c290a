/** §6.4 variable expansion: captures, request vars, route vars, literal `$`. */
import { expand, type ExpandSources } from '../../core/routing/expand.ts';

const src: ExpandSources = {
  captures: ['/old/p', 'p'],
  getVar: (n) => ({ REQUEST_URI: '/a?b=1', EMPTY: '' })[n],
  routeVar: (name, key) => (name === 'qs' ? `qs:${key}` : undefined),
};

describe('routing expansion', () => {
  it('returns constant text unchanged', () => {
    expect(expand('plain text', src)).toBe('plain text');
  });
  it('expands $N captures; a group beyond the match is empty', () => {
    expect(expand('/new/$1 ($0) [$7]', src)).toBe('/new/p (/old/p) []');
  });
  it('expands ${VAR}; a missing var is empty', () => {
    expect(expand('http://x${REQUEST_URI}|${NOPE}|${EMPTY}', src)).toBe('http://x/a?b=1||');
  });
  it('expands ${name[key]} route vars; an unknown route var is empty', () => {
    expect(expand('${qs[a]}-${nosuch[x]}', src)).toBe('qs:a-');
  });
  it('keeps $ before a non-digit and an unterminated ${ literally; drops a trailing $ (uWSGI 2.0.21)', () => {
    // uWSGI's captures pass drops a `$` that ends an action's argument (routing-vs-uwsgi differential).
    expect(expand('a$b $', src)).toBe('a$b ');
    expect(expand('x ${REQUEST_URI', src)).toBe('x ${REQUEST_URI');
  });
});
