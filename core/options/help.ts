/**
 * `--help`: every option grouped by the plugin that provides it, generated from the specs
 * (the same source as docs/options.md).
 */
import type { RegisteredOption } from './spec.ts';

export function formatOptionName(r: RegisteredOption): string {
  const s = r.spec;
  const names = [`--${s.name}`, ...(s.aliases ?? []).map((a) => `--${a}`)];
  if (s.short) names.unshift(`-${s.short}`);
  const arg = s.argument === 'none' ? '' : s.argument === 'optional' ? ` [${s.metavar ?? 'VALUE'}]` : ` ${s.metavar ?? 'VALUE'}`;
  return names.join(', ') + arg;
}

export function formatHelp(options: RegisteredOption[], loaded: (owner: string) => boolean): string {
  const groups = new Map<string, RegisteredOption[]>();
  for (const r of options) {
    if (r.spec.name === '__positional__') continue;
    const list = groups.get(r.owner) ?? [];
    list.push(r);
    groups.set(r.owner, list);
  }
  const owners = [...groups.keys()].sort((a, b) => (a === 'core' ? -1 : b === 'core' ? 1 : a.localeCompare(b)));
  let out = 'Usage: tsuwsgi [options...] [config file or app]\n';
  for (const owner of owners) {
    const title = owner === 'core' ? 'core options' : `plugin "${owner}"${loaded(owner) ? '' : ' (not loaded: add --plugins ' + owner + ')'}`;
    out += `\n${title}:\n`;
    for (const r of groups.get(owner)!.sort((a, b) => a.spec.name.localeCompare(b.spec.name))) {
      const name = formatOptionName(r);
      const pad = name.length < 40 ? ' '.repeat(40 - name.length) : '\n' + ' '.repeat(42);
      out += `  ${name}${pad}${r.spec.help}${r.spec.accepted ? ` (accepted: ${r.spec.accepted})` : ''}\n`;
    }
  }
  return out;
}
