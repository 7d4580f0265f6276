"""OpenVINO and NNCF, imported without their usage telemetry.

`import openvino` and `import nncf` send a usage event to Google Analytics and count runs in `~/intel/stats`
unless the user declined (OpenVINO's `opt_in_out --opt_out`) or a CI is detected. An offline batch job should
not report from its users' servers, and the sending thread holds up the process's exit. So batchinfer imports
them as under CI (telemetry off for this process) unless the user has answered OpenVINO's consent question
(its consent file exists): then that answer stands.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from types import ModuleType

_LOCK = threading.Lock()


def openvino() -> ModuleType:
    """`import openvino`, quietly."""
    return _quietly("openvino")


def nncf() -> ModuleType:
    """`import nncf`, quietly (ImportError if it is not installed)."""
    return _quietly("nncf")


def _quietly(name: str) -> ModuleType:
    with _LOCK:
        if name in sys.modules or _user_answered():
            return importlib.import_module(name)
        saved = os.environ.get("CI")
        os.environ["CI"] = "true"  # what openvino_telemetry reads to stay off
        try:
            return importlib.import_module(name)
        finally:
            if saved is None:
                os.environ.pop("CI", None)
            else:
                os.environ["CI"] = saved


def _user_answered() -> bool:
    try:
        from openvino_telemetry.utils.opt_in_checker import OptInChecker

        return os.path.exists(OptInChecker().consent_file())
    except Exception:  # no telemetry package (nothing to send), or an unknown version of it
        return False
