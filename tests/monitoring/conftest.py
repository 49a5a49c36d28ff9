from __future__ import annotations

import numpy as np
import pytest

from monitoring import ModelMonitor, MonitorConfig
from monitoring.benchmark import synthetic_model


@pytest.fixture(scope="session")
def model5() -> tuple[dict, object, bytes]:
    """5 numeric features + categorical ``c``, 2,000-row reference; a calibrated snapshot."""
    card, ref = synthetic_model(5, 2000, np.random.default_rng(123), categorical=True)
    mon = ModelMonitor(card, ref, MonitorConfig(seed=1))
    return card, ref, mon.snapshot()
