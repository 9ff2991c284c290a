import { STATUS_CODES } from 'node:http';

/**
 * Reason phrase for the error answers the core writes itself (502, 503, 504, 431…), shared
 * by every front end. 499 is nginx's "client closed request", used only in log lines.
 */
export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? (status === 499 ? 'Client Closed Request' : 'Error');
}
