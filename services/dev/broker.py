"""The project's local Kafka script (deploy/kafka/local_kafka.py), loaded from the checkout.

The script is standard-library only so that it runs before any virtual environment exists; development
commands and tests load it from here rather than keep a second copy.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "local_kafka.py"


def local_kafka() -> ModuleType:
    if "local_kafka" in sys.modules:
        return sys.modules["local_kafka"]
    if not SCRIPT.exists():
        raise RuntimeError(f"{SCRIPT} not found: development commands need a checkout of the repository")
    spec = importlib.util.spec_from_file_location("local_kafka", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["local_kafka"] = module
    spec.loader.exec_module(module)
    return module
