#!/usr/bin/env bash
# Copies what scripts/gpu-check.sh needs from ../shared (absent on a GPU machine) into .gpu-assets/
# (git-ignored): stories260K and, when it has been trained (bench/models), its Chimera draft.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${CHIMERA_SHARED_DIR:-../shared}"
mkdir -p .gpu-assets/shared/models
cp -r "$SHARED/models/stories260K" .gpu-assets/shared/models/
if [ -f bench/models/stories260K.chimera.safetensors ]; then
  cp bench/models/stories260K.chimera.safetensors .gpu-assets/
fi
du -sh .gpu-assets
