"""Test-session isolation: a private BentoML model store and data directory.

Set before anything imports bentoml, so no test touches the user's ~/bentoml.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

_SESSION = Path(tempfile.mkdtemp(prefix="driftgate-tests-"))
os.environ["BENTOML_HOME"] = str(_SESSION / "bentoml")
os.environ["DRIFTGATE_DATA_DIR"] = str(_SESSION / "data")
os.environ["DRIFTGATE_CONFIG_FILE"] = str(_SESSION / "driftgate.yaml")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
sys.path.insert(0, str(Path(__file__).parent))
