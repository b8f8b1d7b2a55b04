"""The one packaging path: bundle contents and hash, the import closure, the dependency cache, no temp dirs."""

from __future__ import annotations

import subprocess
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
