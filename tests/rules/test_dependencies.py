"""rules/ stands alone: the standard library, re2 and jinja2 (with its markupsafe), nothing else."""

from __future__ import annotations

import subprocess
import sys

ALLOWED_THIRD_PARTY = {"re2", "_re2", "jinja2", "markupsafe"}


def test_importing_rules_loads_no_other_package() -> None:
    # A fresh interpreter, so that what the test suite already imported cannot hide an import.
    code = (
        "import sys; before = set(sys.modules); import rules, rules.url, rules.literals; "
        "print('\\n'.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    stdlib = set(sys.stdlib_module_names)
    foreign = {name for name in loaded if name not in stdlib and not name.startswith("_")}
    assert foreign - ALLOWED_THIRD_PARTY - {"rules"} == set()
