"""The retraining loop's other half: a worker that turns driftgate's signed retrain requests
into trained, checked, registered and rolled-out versions (see README "The retraining loop")."""

from service.retrain.contract import CurrentVersion, TrainerContext, TrainerResult

__all__ = ["CurrentVersion", "TrainerContext", "TrainerResult"]
