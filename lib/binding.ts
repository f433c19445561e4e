// Loads the native addon lazily, in one place: a prebuilt binary from prebuilds/ or the local build
// (build/Release), through node-gyp-build.
import * as path from 'node:path';
import type { Binding } from './addonTypes';
import { NoBinaryError } from './errors';

let cached: Binding | undefined;

export function binding(): Binding {
  if (cached) return cached;
  const root = path.resolve(__dirname, '..');
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const load = require('node-gyp-build') as (dir: string) => unknown;
    cached = load(root) as Binding;
  } catch (err) {
    throw new NoBinaryError(
      `the chimera-llm native addon could not be loaded (${(err as Error).message}); ` +
        'run `npm run build:native` in the package folder to build it from source',
      err,
    );
  }
  return cached;
}
