"""Installed size of the agent image's dependencies (agent/requirements.txt) for linux/arm64.

pip installs the pinned requirements for the image's platform (manylinux aarch64, CPython 3.11, wheels
only) into a temporary target directory; the figure is the size on disk of what the image's
`pip install` adds. Also lists the largest packages and checks that litellm is not among them.

    .venv/bin/python -m benchmarks.agent_image_size [--platform native]
Target: <= 300 MB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_MB = 300.0
ARM64 = [
    "--platform",
    "manylinux2014_aarch64",
    "--platform",
    "manylinux_2_28_aarch64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--only-binary=:all:",
]


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", choices=("arm64", "native"), default="arm64")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "site-packages"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
            str(target),
            "-r",
            str(REPO / "agent" / "requirements.txt"),
        ]
        if args.platform == "arm64":
            command[4:4] = ARM64
        subprocess.run(command, check=True)
        source_only = size_of(target)
        # The image precompiles bytecode (agent/Dockerfile): count it, as the image does.
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(target)], check=False)
        total = size_of(target)
        groups: dict[str, int] = {}
        for entry in target.iterdir():
            name = entry.name.split("-")[0].removesuffix(".py").lower()
            groups[name] = groups.get(name, 0) + (size_of(entry) if entry.is_dir() else entry.stat().st_size)
        litellm = any(name.startswith("litellm") for name in groups)
    mb = total / 1e6
    print(
        f"agent dependencies ({args.platform}, {len(groups)} top-level entries): {mb:.1f} MB with bytecode,"
        f" {source_only / 1e6:.1f} MB without (target <= {TARGET_MB:.0f} MB)"
    )
    for name, size in sorted(groups.items(), key=lambda item: -item[1])[:12]:
        print(f"  {size / 1e6:7.1f} MB  {name}")
    print(f"  litellm installed: {litellm}")
    return 0 if mb <= TARGET_MB and not litellm else 1


if __name__ == "__main__":
    raise SystemExit(main())
