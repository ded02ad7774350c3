#!/usr/bin/env bash
# Regenerates config/catalog.toml from LiteLLM's model price map, pinned to one release, and
# config/catalog-overrides.toml. Extra arguments go to `infron catalog import` (for example
# `--openrouter saved-models.json` or `--dry-run`).
#
# The price map is the JSON file shipped inside the `litellm` wheel on PyPI (MIT-licensed). It
# is downloaded with pip (no dependencies installed, nothing imported) into a cache directory,
# checked against the pinned SHA-256, and read by the importer; nothing else is fetched.
set -euo pipefail
cd "$(dirname "$0")/.."

LITELLM_VERSION=1.102.4
# SHA-256 of litellm/model_prices_and_context_window_backup.json in that release.
LITELLM_JSON_SHA256=a33bce9dc5238cd84b2c9b9fa807d7a5fe57ff499d146ebccba8ad2b4b1ae417

cache="${INFRON_CACHE_DIR:-$HOME/.cache/infron}/litellm-$LITELLM_VERSION"
json="$cache/litellm-$LITELLM_VERSION-model_prices_and_context_window_backup.json"
mkdir -p "$cache"
if [ ! -f "$json" ]; then
  # The wheel for one fixed platform, so every machine downloads the same file.
  python3 -m pip download "litellm==$LITELLM_VERSION" --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp \
    --dest "$cache/wheel" --quiet
  python3 - "$cache/wheel" "$json" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("litellm-*.whl"))
with zipfile.ZipFile(wheel) as z:
    data = z.read("litellm/model_prices_and_context_window_backup.json")
pathlib.Path(sys.argv[2]).write_bytes(data)
PY
fi
echo "$LITELLM_JSON_SHA256  $json" | sha256sum --check --quiet -

cargo run --quiet --bin infron -- catalog import --litellm "$json" "$@"
