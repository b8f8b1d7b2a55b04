"""The one packaging path: bundle contents and hash, the import closure, the dependency cache, no temp dirs."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_

from stacks.constructs import packaging
from stacks.constructs.packaging import Bundle, PackagingError, import_closure, lambda_code


def test_the_closure_follows_imports_and_every_package_init() -> None:
    files = import_closure(["functions/tickets"])
    assert {"functions/__init__.py", "functions/common.py", "tools/__init__.py", "tools/specs.py"} <= set(
        files
    )
    assert "tools/tickets/storage_dynamodb.py" in files and "tools/tickets/__init__.py" in files
    assert "tools/local_index.py" not in files  # never imported by the tickets handler


def test_type_checking_imports_and_provided_files_are_not_followed() -> None:
    files = import_closure(["functions/gateway_bootstrap"], provided=["llm_gateway/__init__.py"])
    assert "llm_gateway/bootstrap.py" in files
    assert not [f for f in files if f.startswith("config/") or f == "llm_gateway/__init__.py"]


def test_bundle_sources_and_destinations_are_checked(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match="does not exist"):
        Bundle.of(["functions/no_such_thing.py"])
    with pytest.raises(PackagingError, match="relative path inside the bundle"):
        Bundle.of(generated={"../escape.txt": "x"})
    with pytest.raises(PackagingError, match="appear twice"):
        Bundle.of(["functions/common.py"], generated={"functions/common.py": ""})
    with pytest.raises(PackagingError, match="requirements file"):
        Bundle.of(requirements="functions/none/requirements.txt")


def test_the_hash_follows_content_paths_and_generated_text(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text("A = 1\n")
    first = Bundle.of(renamed={"pkg/module.py": str(source)}).fingerprint()
    assert Bundle.of(renamed={"pkg/module.py": str(source)}).fingerprint() == first
    assert Bundle.of(renamed={"pkg/other.py": str(source)}).fingerprint() != first
    source.write_text("A = 2\n")
    assert Bundle.of(renamed={"pkg/module.py": str(source)}).fingerprint() != first
    assert Bundle.of(generated={"a": "1"}).fingerprint() != Bundle.of(generated={"a": "2"}).fingerprint()


def test_write_copies_files_and_folders_without_caches_and_writes_generated_text(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    Bundle.of(["functions/interceptor", "functions/__init__.py"], generated={"conf/x.yaml": "a: 1\n"}).write(
        out
    )
    assert (out / "functions/interceptor/handler.py").is_file()
    assert (out / "conf/x.yaml").read_text() == "a: 1\n"
    assert not list(out.rglob("__pycache__")) and not list(out.rglob("*.pyc"))


def fake_pip(calls: list[list[str]], fail: bool = False) -> Any:
    def run(args: list[str], **_kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        if fail:
            raise subprocess.CalledProcessError(
                1, args, stderr="ERROR: No matching distribution found for nope"
            )
        target = Path(args[args.index("--target") + 1])
        (target / "dep").mkdir()
        (target / "dep" / "__init__.py").write_text("")
        return subprocess.CompletedProcess(args, 0)

    return run


def test_requirements_are_installed_once_per_content_for_the_lambda_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("PyJWT==2.15.1\n")
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", fake_pip(calls))
    cache = tmp_path / "cache"
    first = packaging.install_requirements(requirements, cache)
    again = packaging.install_requirements(requirements, cache)
    assert first == again == cache / packaging.requirements_key(requirements)
    assert len(calls) == 1 and (first / "dep" / "__init__.py").is_file()
    args = calls[0]
    assert args[args.index("--python-version") + 1] == "3.14" and "--only-binary=:all:" in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--platform"] == list(packaging.LAMBDA_PLATFORMS)
    assert sorted(p.name for p in cache.iterdir()) == [first.name]  # no partial entry left
    requirements.write_text("PyJWT==2.15.0\n")
    assert packaging.install_requirements(requirements, cache) != first and len(calls) == 2


def test_a_failed_install_names_the_file_and_leaves_no_partial_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("nope==0\n")
    monkeypatch.setattr(subprocess, "run", fake_pip([], fail=True))
    with pytest.raises(PackagingError, match=r"requirements\.txt.*No matching distribution"):
        packaging.install_requirements(requirements, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_packaging_never_uses_temporary_folders() -> None:
    source = Path(packaging.__file__).read_text(encoding="utf-8")
    assert "tempfile" not in source and "mkdtemp" not in source


def test_a_synth_creates_nothing_in_the_temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine's /tmp is shared (a before/after listing sees other processes): instead every way
    # Python makes a temporary file or folder fails during this synth, so the bundling cannot use one.
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("packaging asked for a temporary file or folder")

    for name in ("mkdtemp", "mkstemp", "TemporaryDirectory", "NamedTemporaryFile", "TemporaryFile"):
        monkeypatch.setattr(tempfile, name, refuse)
    outdir = tmp_path / "out"
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "S")
    lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="functions.interceptor.handler.handler",
        code=lambda_code(
            Bundle.of(
                import_closure(["functions/interceptor"]),
                requirements="functions/interceptor/requirements.txt",
            )
        ),
    )
    packaging.generated_file_asset(stack, "Config", name="config.yaml", text="model_list: []\n")
    app.synth()
    # CDK keeps a single-file bundle's folder beside the file asset, inside the assembly.
    (config,) = outdir.glob("asset.*.yaml")
    assert config.read_text() == "model_list: []\n"


# --- the exact pip call, its failures, the cache links and the bundle layout -----------------------------

# Lambda's guide for a .zip package with binary dependencies for arm64: `pip install --platform
# manylinux2014_aarch64 --target <dir> --implementation cp --python-version <x.y> --only-binary=:all:`
# (https://docs.aws.amazon.com/lambda/latest/dg/python-package.html); Python 3.14 on Lambda runs on Amazon
# Linux 2023, glibc 2.34 (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html).
PIP_CALL = [
    sys.executable,
    "-m",
    "pip",
    "install",
    "--quiet",
    "--disable-pip-version-check",
    "--no-compile",
    "--target",
    "/cache/key.partial-1",
    "--platform",
    "manylinux_2_34_aarch64",
    "--platform",
    "manylinux2014_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    "3.14",
    "--only-binary=:all:",
    "--requirement",
    "/repo/requirements.txt",
]


def test_pip_is_asked_for_binary_wheels_of_the_lambda_platform_exactly() -> None:
    assert packaging._pip_arguments(Path("/cache/key.partial-1"), Path("/repo/requirements.txt")) == PIP_CALL


def test_pip_runs_bounded_with_its_output_captured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("PyJWT==2.15.1\n")
    seen: list[dict[str, Any]] = []
    install = fake_pip([])

    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.append(kwargs)
        return install(args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(subprocess, "run", run)
    cache = tmp_path / "cache"
    stale = cache / f"{packaging.requirements_key(requirements)}.partial-{os.getpid()}"
    (stale / "junk").mkdir(parents=True)  # a crashed earlier install of this process id
    with caplog.at_level(logging.INFO, logger=packaging.__name__):
        final = packaging.install_requirements(requirements, cache)
    assert seen == [{"check": True, "capture_output": True, "text": True, "timeout": 600}]
    assert sorted(p.name for p in final.iterdir()) == ["dep"] and not stale.exists()
    assert caplog.messages == [f"installing {requirements} for the Lambda platform into {final}"]


@pytest.mark.parametrize(
    ("stdout", "stderr", "detail"),
    [
        (
            "",
            "\n".join(f"line {n}" for n in range(1, 8)) + "\n",
            "line 3 | line 4 | line 5 | line 6 | line 7",
        ),
        ("only stdout\n", "", "only stdout"),
        (None, None, ""),
    ],
)
def test_a_failed_install_reports_the_last_five_lines_of_pips_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stdout: str | None, stderr: str | None, detail: str
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("nope==0\n")

    def run(args: list[str], **_kwargs: Any) -> Any:
        raise subprocess.CalledProcessError(1, args, output=stdout, stderr=stderr)

    monkeypatch.setattr(subprocess, "run", run)
    message = f"pip could not install {requirements} for Lambda (3.14, arm64): {detail}"
    with pytest.raises(PackagingError) as raised:
        packaging.install_requirements(requirements, tmp_path / "cache")
    assert str(raised.value) == message
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_pip_that_hangs_is_stopped_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("slow==1\n")

    def run(args: list[str], **kwargs: Any) -> Any:
        raise subprocess.TimeoutExpired(args, kwargs["timeout"])

    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(PackagingError) as raised:
        packaging.install_requirements(requirements, tmp_path / "cache")
    assert str(raised.value) == f"pip did not install {requirements} within 600 s (is PyPI reachable?)"
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_cache_key_covers_the_file_and_the_platform(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("PyJWT==2.15.1\n")
    expected = hashlib.sha256(b"PyJWT==2.15.1\n")
    expected.update(b"\x003.14\x00manylinux_2_34_aarch64,manylinux2014_aarch64")
    assert packaging.requirements_key(requirements) == expected.hexdigest()


def test_the_asset_hash_is_the_documented_digest(tmp_path: Path) -> None:
    # The asset hash decides whether CloudFormation updates a function: it is pinned, not only compared.
    bundle = Bundle.of(generated={"a/b.txt": "1"}, requirements="functions/interceptor/requirements.txt")
    expected = hashlib.sha256(b"aaf-bundle-1")
    expected.update(b"\0f" + b"a/b.txt" + b"\0" + hashlib.sha256(b"1").digest())
    key = packaging.requirements_key(packaging.REPO_ROOT / "functions/interceptor/requirements.txt")
    expected.update(b"\0r" + key.encode("ascii"))
    assert bundle.fingerprint() == expected.hexdigest()


def test_cached_dependencies_are_hard_linked_or_copied_without_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    (cache / "dep" / "__pycache__").mkdir(parents=True)
    (cache / "dep" / "__init__.py").write_text("X = 1\n")
    (cache / "dep" / "__pycache__" / "x.pyc").write_bytes(b"")
    linked = tmp_path / "linked"
    packaging._link_tree(cache, linked)
    assert (linked / "dep" / "__init__.py").stat().st_ino == (cache / "dep" / "__init__.py").stat().st_ino
    assert not (linked / "dep" / "__pycache__").exists()

    def cross_device(_source: str, _destination: str) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    copied = tmp_path / "copied"
    packaging._link_tree(cache, copied)
    target = copied / "dep" / "__init__.py"
    assert target.read_text() == "X = 1\n"
    assert target.stat().st_ino != (cache / "dep" / "__init__.py").stat().st_ino


def test_write_creates_nested_destinations_and_leaves_caches_out(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "__pycache__").mkdir(parents=True)
    (source / "mod.py").write_text("A = 1\n")
    (source / "stale.pyc").write_bytes(b"")
    (source / "__pycache__" / "mod.cpython-314.pyc").write_bytes(b"")
    single = tmp_path / "single.py"
    single.write_text("B = 2\n")
    out = tmp_path / "out"
    out.mkdir()
    Bundle.of(
        renamed={"deep/pkg": str(source), "other/deep/single.py": str(single)},
        generated={"conf/nested/x.yaml": "é: 1\n"},
    ).write(out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "conf/nested/x.yaml",
        "deep/pkg/mod.py",
        "other/deep/single.py",
    ]
    assert (out / "conf/nested/x.yaml").read_bytes() == "é: 1\n".encode()


def test_a_copy_into_a_folder_another_copy_made_merges_with_it(tmp_path: Path) -> None:
    outer, inner = tmp_path / "outer", tmp_path / "inner"
    (outer / "sub").mkdir(parents=True)
    (outer / "sub" / "a.py").write_text("")
    inner.mkdir()
    (inner / "b.py").write_text("")
    out = tmp_path / "out"
    out.mkdir()
    Bundle.of(renamed={"pkg": str(outer), "pkg/sub": str(inner)}).write(out)
    assert sorted(p.name for p in (out / "pkg" / "sub").iterdir()) == ["a.py", "b.py"]


def test_the_assets_source_directory_is_the_first_copy(tmp_path: Path) -> None:
    root = packaging.REPO_ROOT
    assert packaging._source_directory(Bundle.of(["functions/interceptor"])) == root / "functions/interceptor"
    assert packaging._source_directory(Bundle.of(["functions/common.py"])) == root / "functions"
    assert (
        packaging._source_directory(Bundle.of(generated={"a": "1"}))
        == Path(packaging.__file__).resolve().parent
    )
