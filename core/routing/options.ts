/**
 * Option specs of the error, response and final routing chains and of the response header
 * options (spec/subsystems.md §6.2, §6.7), owned by the core. The request chain's own
 * `route*` options are declared with the other core options (core/options/core-options.ts);
 * each other chain repeats that set under its prefix, plus `*-route-status`.
 */
import type { OptionSpec } from '../options/spec.ts';

const SUBJECTS: ReadonlyArray<[string, string]> = [
  ['route', 'PATH_INFO'],
  ['route-host', 'HTTP_HOST'],
  ['route-uri', 'REQUEST_URI'],
  ['route-qs', 'QUERY_STRING'],
  ['route-remote-addr', 'REMOTE_ADDR'],
  ['route-user-agent', 'HTTP_USER_AGENT'],
  ['route-remote-user', 'REMOTE_USER'],
  ['route-referer', 'HTTP_REFERER'],
];

const WHEN: Readonly<Record<'error' | 'response' | 'final', string>> = {
  error: 'an error routing rule (run when a response status is prepared)',
  response: 'a response routing rule (run when the response headers are about to go out)',
  final: 'a final routing rule (run after the response is sent)',
};

function chainSpecs(chain: 'error' | 'response' | 'final'): OptionSpec[] {
  const what = WHEN[chain];
  const rule = (name: string, metavar: string, help: string): OptionSpec => ({ name: `${chain}-${name}`, argument: 'required', kind: 'string', multiple: true, metavar, help });
  return [
    ...SUBJECTS.map(([name, subject]) => rule(name, 'REGEXP ACTION:ARGS', `add ${what} matching ${subject}`)),
    rule('route-status', 'CODE ACTION:ARGS', `add ${what} matching the response status exactly`),
    rule('route-label', 'LABEL', `define ${chain === 'error' ? 'an' : 'a'} ${chain} routing label (a goto target)`),
    rule('route-if', 'COND:ARGS ACTION:ARGS', `add ${what} run when the condition is true`),
    rule('route-if-not', 'COND:ARGS ACTION:ARGS', `add ${what} run when the condition is false`),
    rule('route-run', 'ACTION:ARGS', `add ${what} that always runs`),
  ];
}

export const ROUTING_CHAIN_OPTION_SPECS: readonly OptionSpec[] = [
  ...chainSpecs('error'),
  ...chainSpecs('response'),
  ...chainSpecs('final'),
  { name: 'add-header', argument: 'required', kind: 'string', multiple: true, metavar: 'NAME: VALUE', help: 'add this header to every response' },
  { name: 'del-header', aliases: ['rem-header'], argument: 'required', kind: 'string', multiple: true, metavar: 'NAME', help: 'remove this header from every response' },
  { name: 'collect-header', aliases: ['response-header-collect'], argument: 'required', kind: 'string', multiple: true, metavar: 'HEADER VAR', help: 'store the value of response header HEADER in request var VAR (for the response and final chains: ${VAR})' },
  { name: 'pull-header', argument: 'required', kind: 'string', multiple: true, metavar: 'HEADER VAR', help: 'like --collect-header, and remove the header from the response' },
  { name: 'error-page-403', argument: 'required', kind: 'path', multiple: true, metavar: 'FILE', help: "serve this HTML file as the body of tsuwsgi's own 403 answers (the first readable of several)" },
  { name: 'error-page-404', argument: 'required', kind: 'path', multiple: true, metavar: 'FILE', help: "serve this HTML file as the body of tsuwsgi's own 404 answers (e.g. no app for the URL)" },
  { name: 'error-page-500', argument: 'required', kind: 'path', multiple: true, metavar: 'FILE', help: "serve this HTML file as the body of tsuwsgi's own 500 answers" },
];
