#!/usr/bin/env node
// Builds the native addon from source with cmake-js (CMakeLists.txt) into build/Release/chimera.node.
// CUDA kernels are included when CMake finds a CUDA compiler. Pass --debug for a debug build.
'use strict';
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const jobs = Math.max(1, Math.min(os.availableParallelism ? os.availableParallelism() : os.cpus().length, 8));
const args = [cmakeJs, 'compile', '--parallel', String(jobs)];
if (process.argv.includes('--debug')) args.push('--debug');
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
