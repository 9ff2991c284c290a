/**
 * A static file server in a child process, for http:// config sources: the config loader
 * fetches synchronously, so a server inside the jest process could never answer.
 */
import { spawn } from 'node:child_process';

export interface FileServer {
  url: string;
  stop(): void;
}

const SERVER = `
const http = require('node:http'), fs = require('node:fs'), path = require('node:path');
const root = process.argv[1];
http.createServer((req, res) => {
  const file = path.join(root, decodeURIComponent(req.url.split('?')[0]));
  if (!file.startsWith(root) || !fs.existsSync(file)) { res.writeHead(404); res.end('not found'); return; }
  res.end(fs.readFileSync(file));
}).listen(0, '127.0.0.1', function () { process.stdout.write(String(this.address().port) + '\\n'); });
process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
`;

export function startFileServer(root: string): Promise<FileServer> {
  const child = spawn(process.execPath, ['-e', SERVER, root], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout.once('data', (chunk: Buffer) => {
      resolve({
        url: `http://127.0.0.1:${chunk.toString().trim()}`,
        stop: () => child.kill('SIGKILL'),
      });
    });
  });
}
