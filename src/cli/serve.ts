/**
 * `switchyard serve [model]`: the OpenAI-compatible HTTP server (src/server/) over one loaded
 * model (the embedded one when no model is given). Binds 127.0.0.1 unless --host says otherwise;
 * --api-key requires `Authorization: Bearer <key>` on every /v1 request. --parallel requests
 * generate at once (each its own KV cache), their steps batched. Ctrl-C stops it.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { createServer } from '../server/server.js';
import { type ExpertFlags, expertLoadOptions } from './experts.js';
import { contextFlag, kvCacheFlag, modelArgument, numberFlag, openModel } from './generate.js';
import type { GlobalOptions } from './options.js';

/** Requests generating at once by default (llama-server's default too: 4 slots). */
const DEFAULT_PARALLEL = 4;

export interface ServeFlags extends ExpertFlags {
  host?: string;
  port?: string;
  apiKey?: string;
  cors?: boolean;
  maxQueue?: string;
  parallel?: string;
  ctx?: string;
  kvCache?: string;
}

export async function serveCommand(modelArg: string | undefined, flags: ServeFlags, global: GlobalOptions): Promise<void> {
  const file = modelArgument(modelArg, 'serve');
  const port = numberFlag(flags.port ?? '8080', '--port', { integer: true, min: 0, max: 65535 });
  const host = flags.host ?? '127.0.0.1';
  if (flags.apiKey !== undefined && flags.apiKey.trim() === '') throw new InvalidArgumentError('--api-key must not be empty');
  const maxQueue = flags.maxQueue === undefined ? undefined : numberFlag(flags.maxQueue, '--max-queue', { integer: true, min: 0 });
  const sequences = numberFlag(flags.parallel ?? String(DEFAULT_PARALLEL), '--parallel', { integer: true, min: 1, max: 256 });
  const model = await openModel(file, global, {
    sequences,
    contextLength: contextFlag(flags.ctx),
    kvCacheType: kvCacheFlag(flags.kvCache),
    ...expertLoadOptions(flags),
  });
  const server = createServer(model, {
    ...(flags.apiKey !== undefined ? { apiKey: flags.apiKey } : {}),
    ...(flags.cors ? { cors: true } : {}),
    ...(maxQueue !== undefined ? { maxQueue } : {}),
  });
  const at = await server.listen(port, host);
  const url = `http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}`;
  const how = `${sequences} at once${flags.apiKey ? ', API key required' : ''}`;
  process.stderr.write(`serving ${file} at ${url} (OpenAI base URL ${url}/v1, ${how}); Ctrl-C stops\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  await model.close();
}
