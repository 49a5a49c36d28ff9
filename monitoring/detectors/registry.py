"""The detector registry: stream kind -> detector name -> ``"module:Class"``.

Adding a detector is one module with a :class:`~monitoring.detectors.base.StreamDetector`
subclass and one line here; configuration (``MonitorConfig.numeric_detector``,
``detector_overrides``, ``concept_detector``) names it, and the contract test
(``tests/monitoring/test_mon_detector_contract.py``) runs it.
"""

from __future__ import annotations

import importlib

from monitoring.detectors.base import StreamDetector

__all__ = ["DETECTORS", "detector_class", "names"]

DETECTORS: dict[str, dict[str, str]] = {
    "numeric": {
        "cusum": "monitoring.detectors.cusum:Cusum",
        "page_hinkley": "monitoring.detectors.page_hinkley:PageHinkley",
        "adwin": "monitoring.detectors.adwin:ADWIN",
        "kswin": "monitoring.detectors.kswin:KSWIN",
    },
    "categorical": {
        "gtest": "monitoring.detectors.gtest:GTest",
    },
    "multivariate": {
        "mahalanobis_cusum": "monitoring.detectors.mahalanobis:MahalanobisChart",
    },
    "errors": {
        "adwin": "monitoring.detectors.adwin:ErrorADWIN",
        "ddm": "monitoring.detectors.ddm:DDM",
        "hddm_a": "monitoring.detectors.hddm_a:HDDMA",
    },
}


def names(kind: str) -> tuple[str, ...]:
    """Registered detector names for streams of ``kind``.

    Examples
    --------
    >>> names("errors")
    ('adwin', 'ddm', 'hddm_a')
    """
    return tuple(DETECTORS[kind])


def detector_class(kind: str, name: str) -> type[StreamDetector]:
    """The detector class registered as ``name`` for ``kind`` streams.

    Examples
    --------
    >>> detector_class("numeric", "cusum").__name__
    'Cusum'
    >>> detector_class("numeric", "magic")
    Traceback (most recent call last):
    ...
    ValueError: unknown numeric detector 'magic'; choose one of cusum, page_hinkley, adwin, kswin
    """
    where = DETECTORS[kind]
    if name not in where:
        raise ValueError(f"unknown {kind} detector {name!r}; choose one of {', '.join(where)}")
    module, _, attr = where[name].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, StreamDetector)):
        raise TypeError(f"{where[name]} is not a StreamDetector")
    return cls
