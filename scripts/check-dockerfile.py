#!/usr/bin/env python3
"""Checks the Dockerfile's dependency-caching layer without a Docker engine.

The build stage first copies only the manifests and the lock file, makes empty stand-ins for the
workspace's crates and builds the dependencies; a workspace member whose manifest is not copied
there (or gets no stand-in) breaks `docker build` at that step. This script replays that part of
the build stage in a scratch directory: every `COPY <src> <dest>` before the sources are copied,
then the stage's `RUN` with its `cargo build` replaced by `cargo metadata --locked`,
which loads the whole workspace and checks the lock file as the build would. It also checks that
the layer covers every member of the workspace. Exits non-zero with the reason on a mismatch.
"""

import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib

root = pathlib.Path(__file__).resolve().parent.parent
lines = (root / "Dockerfile").read_text().splitlines()

# The build stage's instructions, continuation lines joined, up to the sources' COPY.
stage, current, inside = [], "", False
for line in lines:
    if line.startswith("FROM "):
        inside = " AS build" in line
        continue
    if not inside or line.lstrip().startswith("#"):
        continue
    current += line.rstrip("\\").rstrip() + " "
    if not line.rstrip().endswith("\\"):
        stage.append(current.strip())
        current = ""
layer = []
for instr in stage:
    if instr.startswith("COPY crates crates"):
        break
    layer.append(instr)

members = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]["members"]
copied = {m.group(1) for i in layer for m in [re.match(r"COPY (crates/[^/]+)/Cargo.toml ", i)] if m}
missing = [m for m in members if m not in copied]
if missing:
    sys.exit(f"Dockerfile: the dependency layer does not copy the manifest of {', '.join(missing)}")

with tempfile.TemporaryDirectory() as tmp:
    work = pathlib.Path(tmp)
    run = None
    for instr in layer:
        if instr.startswith("WORKDIR"):
            continue
        if instr.startswith("COPY "):
            *sources, dest = instr.split()[1:]
            for src in sources:
                target = work / dest if len(sources) == 1 and not dest.endswith("/") else work / dest / pathlib.Path(src).name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(root / src, target)
        elif instr.startswith("RUN "):
            run = instr[4:]
    if run is None or "cargo build" not in run:
        sys.exit("Dockerfile: no RUN building the dependencies in the build stage")
    command = re.sub(r"cargo build[^&;]*", "cargo metadata --locked --format-version 1 >/dev/null", run)
    done = subprocess.run(["bash", "-ec", command], cwd=work, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"Dockerfile: the dependency layer fails:\n{done.stderr.strip()}")
print(f"Dockerfile: the dependency layer loads the workspace ({len(members)} crates) with the lock file")
