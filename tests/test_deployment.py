"""The deployment files: no container engine runs here, so they are read and checked against
the Procfile, which the README and the release process already use."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_compose_runs_every_procfile_process_as_the_procfile_says() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    for name, command in _procfile().items():
        assert name in services, f"compose.yaml has no {name!r} service"
        shell, flag, line = services[name]["command"]
        # Compose reads "$$" as a literal "$", which the shell then expands.
        assert (shell, flag, line.replace("$$", "$")) == ("sh", "-c", command)
    redis = services["redis"]["command"]
    assert "--appendonly" in redis and redis[redis.index("--appendonly") + 1] == "yes"
    assert redis[redis.index("--maxmemory-policy") + 1] == "noeviction"
    for name in ("web", "worker", "flower", "release"):
        env = services[name]["environment"]
        assert env["HERALD_DATABASE_URL"].startswith("postgresql://")
        assert "HERALD_SECRET_KEY" in env
    assert "FLOWER_BASIC_AUTH" in services["flower"]["environment"]  # never open


def test_the_image_runs_as_a_user_and_carries_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users and users[-1] != "root"
    for package in ("rules", "notifiers", "worker", "api", "integrations"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
