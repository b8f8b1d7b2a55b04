"""The one packaging path for code and file assets: CDK local bundling, no Docker, no temporary folders.

A bundle is described by a `Bundle`: repository files copied to a destination path, generated files
(text), and optionally a `requirements.txt` installed for the Lambda platform. CDK calls
`LocalBundler.try_bundle` with an output directory it creates inside the cloud assembly (`cdk.out/
asset.<hash>-building`, renamed to `asset.<hash>` afterwards), so nothing is written outside the
assembly except the dependency cache below.

The asset hash is ours (`AssetHashType.CUSTOM`): a SHA-256 of every destination path, every copied
file's bytes, every generated text and the requirements file with the pip platform arguments. It
changes exactly when the package would, and CDK skips bundling when `asset.<hash>` already exists.

Third-party requirements are installed once per requirements file content into
`build/lambda-deps/<sha256>/` (gitignored; `build/` is in .gitignore) with
`pip install --target --platform manylinux_2_34_aarch64 --platform manylinux2014_aarch64
--implementation cp --python-version 3.14 --only-binary=:all:` — binary wheels for the Lambda
Python 3.14 arm64 runtime, which runs on Amazon Linux 2023 (glibc 2.34):
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html and
https://docs.aws.amazon.com/lambda/latest/dg/python-package.html ("Creating a .zip deployment
package with dependencies ... --platform manylinux2014_aarch64 --only-binary=:all:"). Later synths
hard-link the cached files into the asset (falling back to a copy across file systems).
"""

from __future__ import annotations

import ast
import hashlib
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, cast

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPENDENCY_CACHE = REPO_ROOT / "build" / "lambda-deps"
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14
LAMBDA_PYTHON_VERSION = "3.14"
# Most specific first; pip does not widen a manylinux_2_34 tag to manylinux2014 by itself.
LAMBDA_PLATFORMS = ("manylinux_2_34_aarch64", "manylinux2014_aarch64")
PIP_TIMEOUT_SECONDS = 600
# Top-level packages of this repository whose modules a Lambda package may import (see import_closure).
FIRST_PARTY_PACKAGES = ("functions", "tools", "llm_gateway", "corpus", "config")
# Bump to change every asset hash (e.g. when the bundling layout itself changes).
_LAYOUT_VERSION = b"aaf-bundle-1"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


class PackagingError(RuntimeError):
    """A bundle cannot be built; the message names the file or requirements file and the cause."""


def _destination(path: str) -> str:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise PackagingError(f"bundle destination {path!r} must be a relative path inside the bundle")
    return pure.as_posix()


@dataclass(frozen=True)
class Bundle:
    """What goes into one asset.

    Attributes:
        copies: (destination inside the asset, repository-relative source) pairs; a source may be a
            file or a directory (copied without `__pycache__`/`*.pyc`).
        generated: (destination inside the asset, text) pairs, written as UTF-8.
        requirements: a repository-relative requirements file installed for the Lambda platform at
            the asset root, or None.
    """

    copies: tuple[tuple[str, str], ...] = ()
    generated: tuple[tuple[str, str], ...] = ()
    requirements: str | None = None

    @classmethod
    def of(
        cls,
        paths: Sequence[str] = (),
        *,
        renamed: Mapping[str, str] | None = None,
        generated: Mapping[str, str] | None = None,
        requirements: str | None = None,
    ) -> Bundle:
        """A bundle of repository paths copied to the same relative path, plus renamed copies
        (`{destination: source}`), generated files (`{destination: text}`) and requirements.

        Raises:
            PackagingError: a source does not exist, a destination leaves the bundle or appears twice.
        """
        copies = [(_destination(p), p) for p in paths]
        copies += [(_destination(d), s) for d, s in (renamed or {}).items()]
        texts = [(_destination(d), t) for d, t in (generated or {}).items()]
        destinations = [d for d, _ in copies] + [d for d, _ in texts]
        duplicates = sorted({d for d in destinations if destinations.count(d) > 1})
        if duplicates:
            raise PackagingError(f"bundle destinations appear twice: {duplicates}")
        for _, source in copies:
            if not (REPO_ROOT / source).exists():
                raise PackagingError(f"bundle source {source} does not exist in {REPO_ROOT}")
        if requirements is not None and not (REPO_ROOT / requirements).is_file():
            raise PackagingError(f"requirements file {requirements} does not exist in {REPO_ROOT}")
        return cls(tuple(copies), tuple(texts), requirements)

    def fingerprint(self) -> str:
        """SHA-256 over the layout version, every destination with its content and the requirements."""
        digest = hashlib.sha256(_LAYOUT_VERSION)
        for destination, data in sorted(self._contents()):
            digest.update(b"\0f" + destination.encode("utf-8") + b"\0" + hashlib.sha256(data).digest())
        if self.requirements is not None:
            digest.update(b"\0r" + requirements_key(REPO_ROOT / self.requirements).encode("ascii"))
        return digest.hexdigest()

    def _contents(self) -> Iterator[tuple[str, bytes]]:
        for destination, source in self.copies:
            for relative, path in _files(REPO_ROOT / source):
                yield (f"{destination}/{relative}" if relative else destination), path.read_bytes()
        for destination, text in self.generated:
            yield destination, text.encode("utf-8")

    def write(self, output_dir: Path) -> None:
        """Write the bundle into `output_dir` (which exists and is empty)."""
        if self.requirements is not None:
            _link_tree(install_requirements(REPO_ROOT / self.requirements), output_dir)
        for destination, source in self.copies:
            source_path = REPO_ROOT / source
            target = output_dir / destination
            target.parent.mkdir(parents=True, exist_ok=True)
            if source_path.is_dir():
                shutil.copytree(source_path, target, ignore=_IGNORED, dirs_exist_ok=True)
            else:
                shutil.copy2(source_path, target)
        for destination, text in self.generated:
            target = output_dir / destination
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")


def import_closure(
    entries: Sequence[str],
    packages: Sequence[str] = FIRST_PARTY_PACKAGES,
    *,
    provided: Collection[str] = (),
) -> list[str]:
    """The repository files (sorted, repo-relative) that `entries` import from `packages`, transitively.

    `provided` names repo-relative files the bundle supplies itself (e.g. an empty generated
    `llm_gateway/__init__.py` instead of the real one, which imports the whole config package): they
    are neither read nor returned.

    Every `import`/`from ... import` statement of every reached module counts (also ones inside
    functions; not the body of `if TYPE_CHECKING:`), and every package `__init__.py` on the way, so a handler's
    package follows the code it imports instead of a hand-kept list. Third-party and standard-library
    imports are ignored (the Lambda runtime or a requirements file provides them).

    Raises:
        PackagingError: an entry does not exist or is not a Python file or folder.
    """
    pending: list[Path] = []
    for entry in entries:
        path = REPO_ROOT / entry
        if path.is_dir():
            pending += [p for _, p in _files(path) if p.suffix == ".py"]
        elif path.is_file() and path.suffix == ".py":
            pending.append(path)
        else:
            raise PackagingError(f"import closure entry {entry} is not a Python file or folder")
    skipped = {REPO_ROOT / p for p in provided}
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in seen or path in skipped:
            continue
        seen.add(path)
        pending += _package_inits(path)
        pending += _imported_files(path, packages)
    return sorted(p.relative_to(REPO_ROOT).as_posix() for p in seen)


def _package_inits(path: Path) -> list[Path]:
    inits = []
    for parent in path.relative_to(REPO_ROOT).parents:
        if parent.parts and (REPO_ROOT / parent / "__init__.py").is_file():
            inits.append(REPO_ROOT / parent / "__init__.py")
    return inits


def _module_file(dotted: str) -> Path | None:
    base = REPO_ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_files(path: Path, packages: Sequence[str]) -> list[Path]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise PackagingError(f"{path.relative_to(REPO_ROOT)} is not valid Python: {exc}") from None
    package = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(REPO_ROOT).parts[:-1])
    names: list[str] = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    found = []
    for name in names:
        if name.split(".")[0] not in packages:
            continue
        for depth in range(1, name.count(".") + 2):  # every package on the dotted path
            module = _module_file(".".join(name.split(".")[:depth]))
            if module is not None:
                found.append(module)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except the bodies of `if TYPE_CHECKING:` (imported only by type checkers)."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending += node.orelse
            continue
        pending += ast.iter_child_nodes(node)


def _files(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of `root` itself (a file) or of every file below it, sorted."""
    if root.is_file():
        yield "", root
        return
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".pyc":
            yield relative.as_posix(), path


def _pip_arguments(target: Path, requirements: Path) -> list[str]:
    platforms = [arg for platform in LAMBDA_PLATFORMS for arg in ("--platform", platform)]
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        *platforms,
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--only-binary=:all:",
        "--requirement",
        str(requirements),
    ]


def requirements_key(requirements: Path) -> str:
    """The cache key of an installed requirements file: its bytes and the target platform."""
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"\0{LAMBDA_PYTHON_VERSION}\0{','.join(LAMBDA_PLATFORMS)}".encode())
    return digest.hexdigest()


def install_requirements(requirements: Path, cache: Path = DEPENDENCY_CACHE) -> Path:
    """The directory holding `requirements` installed for the Lambda platform, installing on first use.

    The install goes to `<cache>/<key>.partial-<pid>` and is renamed to `<cache>/<key>` when complete,
    so an interrupted or concurrent install never leaves a half-filled cache entry behind.

    Raises:
        PackagingError: pip failed or timed out; the message names the requirements file.
    """
    final = cache / requirements_key(requirements)
    if final.is_dir():
        return final
    partial = cache / f"{final.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    logger.info("installing %s for the Lambda platform into %s", requirements, final)
    try:
        subprocess.run(  # noqa: S603 (fixed argument list, our interpreter)
            _pip_arguments(partial, requirements),
            check=True,
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT_SECONDS,
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-5:]
        raise PackagingError(
            f"pip could not install {requirements} for Lambda ({LAMBDA_PYTHON_VERSION}, arm64): "
            + " | ".join(detail)
        ) from None
    except subprocess.TimeoutExpired:
        shutil.rmtree(partial, ignore_errors=True)
        raise PackagingError(
            f"pip did not install {requirements} within {PIP_TIMEOUT_SECONDS} s (is PyPI reachable?)"
        ) from None
    try:
        partial.rename(final)
    except OSError:  # another process finished first: its entry is equivalent
        shutil.rmtree(partial, ignore_errors=True)
    return final


def _link_or_copy(source: str, destination: str) -> object:
    try:
        os.link(source, destination)
    except OSError:  # another file system
        shutil.copy2(source, destination)
    return destination


def _link_tree(source: Path, destination: Path) -> None:
    shutil.copytree(source, destination, copy_function=_link_or_copy, ignore=_IGNORED, dirs_exist_ok=True)


@jsii.implements(cdk.ILocalBundling)
class LocalBundler:
    """CDK local bundling (no Docker) that writes a `Bundle` into CDK's output directory."""

    def __init__(self, bundle: Bundle) -> None:
        self._bundle = bundle

    def try_bundle(self, output_dir: str, _options: Any = None) -> bool:
        self._bundle.write(Path(output_dir))
        return True


def bundling_options(bundle: Bundle, output_type: cdk.BundlingOutput | None = None) -> cdk.BundlingOptions:
    """Bundling options that write `bundle` locally (pass with `asset_hash=bundle.fingerprint()`, CUSTOM)."""
    return cdk.BundlingOptions(
        # Only used if local bundling declined, which LocalBundler never does (it raises instead).
        image=LAMBDA_RUNTIME.bundling_image,
        local=cast(cdk.ILocalBundling, LocalBundler(bundle)),
        output_type=output_type,
    )


def lambda_code(bundle: Bundle) -> lambda_.Code:
    """Lambda code (a zip asset) holding exactly `bundle`.

    CDK needs an existing source directory for a bundled asset; it is only used when bundling is
    skipped for a stack that is not being deployed (`cdk deploy <other stack>`).
    """
    return lambda_.Code.from_asset(
        str(_source_directory(bundle)),
        asset_hash=bundle.fingerprint(),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=bundling_options(bundle),
    )


def generated_file_asset(scope: Construct, construct_id: str, *, name: str, text: str) -> s3_assets.Asset:
    """An S3 file asset (not a zip) whose content is `text`, e.g. a rendered config.yaml.

    The object key is `<hash><suffix of name>`; the content address changes with the text.
    """
    bundle = Bundle.of(generated={name: text})
    return s3_assets.Asset(
        scope,
        construct_id,
        path=str(Path(__file__).resolve().parent),
        asset_hash=bundle.fingerprint(),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=bundling_options(bundle, cdk.BundlingOutput.SINGLE_FILE),
    )


def _source_directory(bundle: Bundle) -> Path:
    for _, source in bundle.copies:
        path = REPO_ROOT / source
        return path if path.is_dir() else path.parent
    return Path(__file__).resolve().parent
