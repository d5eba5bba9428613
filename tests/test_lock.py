"""requirements.lock pins every dependency `make install` installs, transitive ones too."""
import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", line):
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def _closure() -> dict[str, str]:
    """Every distribution tokengrid[dev] needs here, with its installed version (markers evaluated)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [(Requirement(r), "") for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]
    found, seen = {}, set()
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if (name, frozenset(requirement.extras)) in seen:
            continue
        seen.add((name, frozenset(requirement.extras)))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            found[name] = "not installed"
            continue
        found[name] = dist.version
        for extra_name in [""] + sorted(requirement.extras):
            todo += [(Requirement(r), extra_name) for r in dist.requires or []]
    return found


def test_every_dependency_is_pinned_in_the_lock_at_the_installed_version():
    pins, needed = _pins(), _closure()
    assert len(needed) > 50  # the closure was really walked (Django, Celery, pandas and theirs)
    assert {name: version for name, version in needed.items() if pins.get(name) != version} == {}
