"""`ironwatch ...` with diagnosis made to raise for one kind of machine; for tests only.

Lives under tests/, so no production install or configuration can reach it: a test runs
`python serve_with_failing_diagnosis.py cloud serve ...` instead of `ironwatch cloud serve`
to get a cloud in which diagnosing a machine whose bearing has FAILING_N_BALLS balls
raises the IndexError a real model bug once raised. Everything else is the real service.
"""

from __future__ import annotations

import sys
from typing import Any

import models.diagnosis

FAILING_N_BALLS = 13
_diagnose = models.diagnosis.diagnose


def _failing_diagnose(*args: Any, bearing: Any = None, **kwargs: Any) -> Any:
    if bearing is not None and bearing.n_balls == FAILING_N_BALLS:
        raise IndexError("index 793 is out of bounds for axis 0 with size 688")
    return _diagnose(*args, bearing=bearing, **kwargs)


# Patched before the cloud imports it, so `from models.diagnosis import diagnose` gets it too.
models.diagnosis.diagnose = _failing_diagnose

if __name__ == "__main__":
    from ironwatch_app.cli import main

    sys.exit(main(sys.argv[1:]))
