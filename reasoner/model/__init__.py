"""Auditing a lending model: counterfactual twins, group fairness metrics, reweighing.

``reason audit-model MODEL --data TABLE --protected COLUMNS -o OUT`` (see the README). The
stages: ``load`` (model files and callables), ``profiles`` (synthetic base applicants),
``twins``, ``metrics``, ``reweigh``, ``audit`` (all of them), ``outputs`` and ``report``.
"""

from reasoner.model.audit import ModelAudit, audit_model
from reasoner.model.load import Model, ModelError, Predictions, load_model
from reasoner.model.metrics import clopper_pearson, flip_rates, flips, group_metrics
from reasoner.model.profiles import synthetic_profiles
from reasoner.model.reweigh import reweighing_weights
from reasoner.model.twins import Twins, make_twins

__all__ = [
    "Model",
    "ModelAudit",
    "ModelError",
    "Predictions",
    "Twins",
    "audit_model",
    "clopper_pearson",
    "flip_rates",
    "flips",
    "group_metrics",
    "load_model",
    "make_twins",
    "reweighing_weights",
    "synthetic_profiles",
]
