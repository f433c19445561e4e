#!/usr/bin/env node
// `npm install` hook: use a prebuilt binary when one loads; otherwise build from source with
// cmake-js (no Python needed), or, when cmake-js is not installed, with node-gyp and binding.gyp
// (CPU only).
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function prebuiltLoads() {
  if (process.env.CHIMERA_BUILD_FROM_SOURCE) return false;
  // Test-load in a child so a broken binary cannot take this process down.
  const probe = `require('node-gyp-build')(${JSON.stringify(root)})`;
  return spawnSync(process.execPath, ['-e', probe], { cwd: root, stdio: 'ignore' }).status === 0;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  return r.status === 0;
}

function hasCmakeJs() {
  try {
    require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
    return spawnSync('cmake', ['--version'], { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  }
}

if (prebuiltLoads()) process.exit(0);
if (hasCmakeJs()) {
  process.exit(run(process.execPath, [path.join(__dirname, 'build-native.js')]) ? 0 : 1);
}
// node-gyp ships with npm; npm puts its folder on PATH for lifecycle scripts.
process.exit(run(process.platform === 'win32' ? 'node-gyp.cmd' : 'node-gyp', ['rebuild']) ? 0 : 1);
