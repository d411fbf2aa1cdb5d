"""The lock file (requirements.lock) pins every dependency pyproject.toml names, the dev
extra and the build backend included, at a version the declared range allows, each with
its hashes: `make setup` installs from it alone (pip --require-hashes)."""

from __future__ import annotations

import re
import tomllib

from conftest import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pins() -> dict[str, tuple[Version, str]]:
    """Each pinned package of the lock: its version and the text of its entry."""
    found: dict[str, tuple[Version, str]] = {}
    name = None
    for line in (REPO / "requirements.lock").read_text().splitlines():
        match = PIN.match(line)
        if match:
            name = canonicalize_name(match.group(1))
            assert name not in found, f"{name} pinned twice"
            found[name] = (Version(match.group(2)), line)
        elif name and line.startswith("    --hash="):
            version, text = found[name]
            found[name] = (version, text + "\n" + line)
    return found


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    names = [*project["project"]["dependencies"],
             *project["project"]["optional-dependencies"]["dev"],
             *project["build-system"]["requires"]]
    return [Requirement(text) for text in names]


def test_every_declared_dependency_is_pinned_within_its_range():
    locked = pins()
    missing, outside = [], []
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        if name not in locked:
            missing.append(str(requirement))
        elif not requirement.specifier.contains(locked[name][0], prereleases=True):
            outside.append(f"{requirement} but {locked[name][0]} is pinned")
    assert not missing, f"not in requirements.lock (run `make lock`): {missing}"
    assert not outside, f"pinned outside pyproject.toml's range (run `make lock`): {outside}"


def test_every_pin_carries_its_hashes():
    unhashed = [name for name, (_version, text) in pins().items()
                if "--hash=sha256:" not in text]
    assert not unhashed, f"pinned without hashes: {unhashed}"


def test_the_model_libraries_are_pinned():
    # A model is refused when built by another scikit-learn or numpy: both fixed here.
    assert {"scikit-learn", "numpy", "scipy"} <= set(pins())
