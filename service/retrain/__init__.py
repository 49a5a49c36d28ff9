"""The retraining loop's other half: a worker that turns driftgate's signed retrain requests
into trained, checked, registered and rolled-out versions (see README "The retraining loop").

The trainer contract is :mod:`service.retrain.contract` (``TrainerContext``,
``TrainerResult``); the worker :mod:`service.retrain.worker` (``RetrainWorker``)."""
