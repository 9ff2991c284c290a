import fs from 'node:fs';
import { renderOptionsDoc } from '../../scripts/generate-options-doc.ts';

describe('docs/options.md', () => {
  it('is the reference generated from the current option specs (run `npm run docs:options` after changing options)', () => {
    const committed = fs.readFileSync(new URL('../../docs/options.md', import.meta.url), 'utf8');
    expect(committed).toBe(renderOptionsDoc());
  });
});
