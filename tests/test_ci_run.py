""".ci/run on a machine without the tools: it installs them when it can (root, or
passwordless sudo, with apt-get) and otherwise says which tests will skip — never nothing.
Run on a PATH holding only a shell and apt-get, so every tool looks missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CI_RUN = REPO / ".ci" / "run"
NOBODY = 65534
APT_LOG = "apt-get.log"


@pytest.fixture
def bare_path() -> Iterator[str]:
    """A PATH with a shell, the few commands .ci/run uses, and a stand-in apt-get that
    only notes how it was called (APT_LOG): nothing is installed for real. In a directory
    any user can read (pytest's tmp_path is its owner's alone)."""
    bin_dir = Path(tempfile.mkdtemp(prefix="ci-run-bin-"))
    try:
        bin_dir.chmod(0o755)
        for tool in ("bash", "env", "dirname", "id"):
            found = shutil.which(tool)
            if found is None:
                pytest.skip(f"needs {tool}")
            (bin_dir / tool).symlink_to(found)
        apt = bin_dir / "apt-get"
        apt.write_text(f'#!{shutil.which("bash")}\necho "$*" >> "{bin_dir}/{APT_LOG}"\n')
        apt.chmod(0o755)
        yield str(bin_dir)
    finally:
        shutil.rmtree(bin_dir)


def _ci_run(path: str, *args: str, as_nobody: bool) -> subprocess.CompletedProcess[str]:
    cmd = [str(CI_RUN), *args]
    if as_nobody:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("needs setpriv to run as an unprivileged user")
        cmd = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]
    return subprocess.run(
        cmd,
        env={"PATH": path, "HOME": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_a_way_to_install_it_says_what_will_skip(bare_path: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("runs .ci/run as an unprivileged user: needs root to switch to one")
    proc = _ci_run(bare_path, as_nobody=True)
    out = proc.stdout + proc.stderr
    lines = out.splitlines()
    assert proc.returncode == 1, out  # no make: make test cannot run, and it says so
    for missing, skips in (
        ("make cc", "C firmware tests"),
        ("arm-none-eabi-gcc qemu-system-arm", "Cortex-M3 tests"),
        ("chromium chromedriver", "browser test"),
    ):
        said = [ln for ln in lines if f"missing {missing} and cannot install" in ln]
        assert len(said) == 1 and skips in said[0] and "not root" in said[0], out
    assert "cannot run make test" in out
    assert not (Path(bare_path) / APT_LOG).exists(), "apt-get run without the rights to"
    _says_once_that_the_rp2040_tests_skip_without_node(out)


def _says_once_that_the_rp2040_tests_skip_without_node(out: str) -> None:
    """One line for the RP2040 lane, whether or not an earlier run left the npm package in
    the harness (before, with it there, a machine without node was told nothing)."""
    said = [ln for ln in out.splitlines() if "node" in ln]
    assert len(said) == 1, out
    assert said[0].startswith("ci: missing node: the RP2040 tests") and "will skip" in said[0]


def test_as_root_it_plans_to_install_the_compiler_and_make_too(bare_path: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("the root half: what .ci/run would install")
    proc = _ci_run(bare_path, "--plan", as_nobody=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "would install make gcc libc6-dev" in out
    assert "would install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm" in out
    assert "would install chromium chromium-driver" in out
    assert not (Path(bare_path) / APT_LOG).exists(), "--plan ran apt-get"
    _says_once_that_the_rp2040_tests_skip_without_node(out)


def test_as_root_it_installs_the_compiler_and_make_too(bare_path: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("the root half: what .ci/run installs")
    proc = _ci_run(bare_path, as_nobody=False)
    out = proc.stdout + proc.stderr
    calls = (Path(bare_path) / APT_LOG).read_text().splitlines()
    installs = [c.split()[-3:] for c in calls if " install " in f" {c} "]
    assert ["make", "gcc", "libc6-dev"] in installs, calls
    assert any(c.endswith("qemu-system-arm") for c in calls) and any("chromium" in c for c in calls)
    # the stand-in installed nothing: make is still missing, and it says so
    assert proc.returncode == 1 and "cannot run make test" in out, out
