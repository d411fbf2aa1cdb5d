"""The systemd units: sandboxed (systemd-analyze security) and valid (systemd-analyze verify)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
SERVICES = sorted(UNITS.glob("*.service"))
INSTALLED_BUZON = "/opt/buzon/.venv/bin/buzon"  # where the README installs it
MOST_EXPOSURE = 2.5


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing: CI must check the units")
        pytest.skip("systemd-analyze is not installed")
    return found


def exposure(output: str) -> float:
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) ", output)
    assert found, output[-500:]
    return float(found.group(1))


def test_the_exposure_line_is_read_as_systemd_prints_it():
    line = "→ Overall exposure level for buzon.service: 8.5 EXPOSED 🙁\n"
    assert exposure(line) == 8.5


@pytest.mark.parametrize("unit", SERVICES, ids=lambda path: path.name)
def test_each_service_is_sandboxed(systemd_analyze, unit):
    result = subprocess.run([systemd_analyze, "security", "--offline=yes", str(unit)],
                            capture_output=True, text=True, timeout=60)
    score = exposure(result.stdout)
    assert score <= MOST_EXPOSURE, result.stdout


def test_the_units_verify_against_an_installed_buzon(systemd_analyze, tmp_path):
    """`systemd-analyze verify` also checks that ExecStart= can run: copies of the units
    point at this venv's buzon instead of /opt/buzon's, which this machine may lack."""
    buzon = Path(sys.executable).with_name("buzon")
    assert buzon.is_file(), "the venv has no buzon command (pip install -e .)"
    copies = []
    for unit in sorted(UNITS.iterdir()):
        text = unit.read_text()
        if unit.suffix == ".service":
            assert f"ExecStart={INSTALLED_BUZON} " in text
        copy = tmp_path / unit.name
        copy.write_text(text.replace(INSTALLED_BUZON, str(buzon)))
        copies.append(str(copy))
    assert {Path(c).name for c in copies} >= {"buzon.service", "buzon-check.service",
                                              "buzon-check.timer"}
    result = subprocess.run([systemd_analyze, "verify", *copies],
                            capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values, which it only prints: both must be empty.
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_verify_would_catch_a_misspelt_setting(systemd_analyze, tmp_path):
    unit = (UNITS / "buzon.service").read_text().replace("ProtectClock=yes", "ProtectClok=yes")
    copy = tmp_path / "buzon.service"
    copy.write_text(unit.replace(INSTALLED_BUZON, str(Path(sys.executable).with_name("buzon"))))
    result = subprocess.run([systemd_analyze, "verify", str(copy)],
                            capture_output=True, text=True, timeout=60)
    assert "Unknown key 'ProtectClok'" in result.stderr
