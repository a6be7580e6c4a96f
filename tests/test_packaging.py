"""A non-editable install from the wheel carries the dashboard's web/ files."""

from __future__ import annotations

import os
import re
import shutil
import site
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What `pip install .` needs; copied so that building never writes into the repo.
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "fednet", "web")

pytestmark = pytest.mark.timeout(600)


def _clean_env() -> dict[str, str]:
    drop = ("FEDNET_", "PYTHON")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _run(*argv: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=500,
        cwd=cwd,
        env=_clean_env(),
    )
    assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build fednet's wheel from a copy of the source tree (no dependencies)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name,
                src / name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        else:
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("wheelhouse")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", out, src)
    (path,) = out.glob("fednet-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the wheel (not editable) into a fresh virtual environment.

    The dependencies are borrowed from the test interpreter's site-packages
    through a .pth file, so nothing is downloaded; fednet itself comes only
    from the wheel, since the new environment's own site-packages comes first.
    """
    root = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", root)
    python = root / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(_run(python, "-c", code).strip())
    (purelib / "_fednet_test_deps.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n"
    )
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--no-deps",
        "--no-index",
        wheel,
    )
    return root


def test_wheel_contains_every_file_of_web(wheel: Path) -> None:
    """The wheel ships each template and static file of web/ under fednet/web/."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    sources = [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "web").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")
    ]
    assert any(s.startswith("web/templates/") and s.endswith(".html") for s in sources)
    missing = [s for s in sources if f"fednet/{s}" not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert not any(n.startswith(("tests/", "web/")) for n in names)


def test_wheel_contains_every_package_of_the_source_tree(wheel: Path) -> None:
    """Each fednet package with an __init__.py is in the wheel (none forgotten)."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    packages = [
        p.parent.relative_to(REPO).as_posix()
        for p in (REPO / "fednet").rglob("__init__.py")
    ]
    missing = [p for p in packages if f"{p}/__init__.py" not in names]
    assert not missing, f"packages missing from setup.cfg [options] packages: {missing}"


def test_wheel_carries_nothing_of_flower(wheel: Path) -> None:
    """Flower's harness stays under benchmarks/ of a checkout, out of the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        sources = {n: archive.read(n).decode() for n in names if n.endswith(".py")}
    assert [n for n in names if re.search("flower|flwr", n, re.I)] == []
    flower = re.compile(r"^\s*(import|from) flwr\b|run_flower\.py|setup\.sh", re.M)
    assert [n for n, text in sources.items() if flower.search(text)] == []


def test_installed_package_has_templates_outside_the_source_tree(
    venv: Path, tmp_path: Path
) -> None:
    """`fednet.web` of the installed copy holds the templates, not the repo's."""
    out = _run(
        venv / "bin" / "python",
        "-c",
        "import fednet, fednet.web, importlib.resources as r;"
        " print(fednet.__file__);"
        " t = r.files('fednet.web').joinpath('templates');"
        " print(t.is_dir() and any(f.name.endswith('.html') for f in t.iterdir()))",
        cwd=tmp_path,
    )
    location, has_index = out.split()
    assert Path(location).is_relative_to(venv), location
    assert not Path(location).is_relative_to(REPO)
    assert has_index == "True"


def test_installed_server_serves_the_dashboard_from_another_directory(
    venv: Path, tmp_path: Path
) -> None:
    """`fednet server` from the installed copy answers GET / with 200 anywhere."""
    port = _free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                venv / "bin" / "fednet",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--state-dir",
                tmp_path / "state",
            ],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_clean_env(),
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        status, body = 0, ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    status, body = r.status, r.read().decode()
                break
            except urllib.error.HTTPError as e:
                with e:
                    status, body = e.code, e.read().decode()
                break
            except OSError:
                time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    assert status == 200, f"GET / -> {status}: {body[:300]}\n{log.read_text()}"
    assert "<html" in body.lower()
