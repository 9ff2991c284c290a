/**
 * Custom options (spec/core.md §4.14): `declare-option = NAME=OPT1=VAL1;OPT2=VAL2` makes
 * NAME an option of this configuration. `NAME = a b` splits its value on spaces into
 * $1..$N and applies `OPT1 = VAL1`, `OPT2 = VAL2` with each `$k` replaced, as if they were
 * written at that point. uWSGI's substitution is copied exactly, as checked on the live
 * reference: `$1`…`$N` are replaced in that order, so with one word `$10` reads `<word>0`;
 * a `$k` beyond the words stays as written; an empty value is one empty word.
 */
import { ConfigError } from '../errors.ts';
import type { OptionSpec, RegisteredOption } from '../options/spec.ts';
import type { LogicLine } from './logic.ts';

/** `owner` of the options made by declare-option (for messages and for the loader). */
export const DECLARED_OWNER = 'declare-option';

export interface Declaration {
  name: string;
  /** The template's `OPT=VAL` pairs, in order. */
  template: { key: string; value: string }[];
  source: string;
}

export function parseDeclaration(option: string, value: string, origin: string): Declaration {
  const eq = value.indexOf('=');
  const name = eq < 0 ? '' : value.slice(0, eq).trim();
  if (eq < 0 || name === '') {
    throw new ConfigError(
      `invalid ${option} syntax, must be newoption=template (${origin}): write ${option} = NAME=OPTION=VALUE[;OPTION=VALUE…], e.g. ${option} = myport=http-socket=:$1`,
    );
  }
  const template: { key: string; value: string }[] = [];
  for (const part of value.slice(eq + 1).split(';')) {
    if (part.trim() === '') continue;
    const partEq = part.indexOf('=');
    if (partEq < 0) template.push({ key: part.trim(), value: '' });
    else template.push({ key: part.slice(0, partEq).trim(), value: part.slice(partEq + 1) });
  }
  if (template.length === 0) {
    throw new ConfigError(`${option} = ${value} (${origin}) declares "${name}" with no option to set: add OPTION=VALUE after "${name}="`);
  }
  return { name, template, source: value };
}

export function customOptionSpec(declaration: Declaration): OptionSpec {
  return {
    name: declaration.name,
    argument: 'required',
    kind: 'string',
    multiple: true,
    help: `custom option: ${declaration.source}`,
  };
}

export class CustomOption {
  readonly registered: RegisteredOption;
  constructor(
    readonly declaration: Declaration,
    spec: OptionSpec,
  ) {
    this.registered = { spec, owner: DECLARED_OWNER };
  }

  /** The option lines a use of the custom option stands for. */
  expand(value: string): LogicLine[] {
    const words = value.split(' ').filter((w) => w !== '');
    if (words.length === 0) words.push('');
    const substitute = (text: string): string => {
      let out = text;
      words.forEach((word, i) => {
        out = out.split(`$${i + 1}`).join(word);
      });
      return out;
    };
    return this.declaration.template.map((t) => ({ key: substitute(t.key), value: substitute(t.value) }));
  }
}
