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
# models with pii: hash features (tests register some into the shared model store) load only
# with a key; every gateway of the session serves every registered model
os.environ.setdefault("DRIFTGATE_PII_KEY", "driftgate-test-session-pii-key")
sys.path.insert(0, str(Path(__file__).parent))
