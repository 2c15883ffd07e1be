"""What a fitted Keras forecaster records about its fit: held-out metrics and metadata.

:class:`~geo_crime.forecast.model.KerasForecaster` keeps both in ``metadata_`` (written by its
``save``): :func:`heldout_metrics` scores the final networks on the held-out block (rows no
final network was trained on, see :mod:`geo_crime.forecast.model`), and :func:`fit_metadata`
names the training window, the blocks, the settings, the library versions and the calibration.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.core.version import __version__
from geo_crime.cube.panel import Cube
from geo_crime.forecast.blocks import TrainingBlocks
from geo_crime.forecast.calibration import (
    apply_calibration,
    interval_coverage,
    split_half_coverage,
)
from geo_crime.forecast.features import FeatureMatrix
from geo_crime.forecast.network import ForecastConfig, import_keras, monitored_loss

__all__ = ["MODEL_FORMAT", "fit_metadata", "heldout_metrics"]

#: Version of the saved-model folder layout.
MODEL_FORMAT = 1


def _versions() -> dict[str, str]:
    import sklearn  # heavy (about 0.5 s): only its version is read, when a model is fitted

    keras = import_keras()
    import tensorflow as tf  # heavy: loaded with Keras, only when a model is fitted

    return {
        "geo_crime": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
    }


def heldout_metrics(
    cfg: ForecastConfig,
    blocks: TrainingBlocks,
    members: list[tuple[list[np.ndarray], dict[str, list[float]], int]],
    heldout: FeatureMatrix,
    outputs: tuple[np.ndarray, np.ndarray, np.ndarray],
    calibration: dict,
    *,
    base_model: str | None,
    base_losses: dict[str, float],
    warm_started: bool,
) -> dict[str, Any]:
    """The fit's ``metadata_["metrics"]``: block row counts, best epochs, the held-out MAE and
    interval coverages (see the module docstring of :mod:`geo_crime.forecast.model`).

    ``members`` are the trained networks' (weights, loss history, best epoch); ``outputs`` the
    mean and uncalibrated bounds of the held-out rows ``heldout``, ``calibration`` the factors
    fitted on them.
    """
    mean, raw_lower, raw_upper = outputs
    history = members[0][1]
    best_epochs = [m[2] for m in members]
    metrics: dict[str, Any] = {
        "best_epoch": best_epochs[0] if len(best_epochs) == 1 else best_epochs,
        "epochs_run": len(next(iter(history.values()), [])) or best_epochs[0],
        "fit_rows": int(blocks.fit.sum()),
        "validation_rows": int(blocks.validation.sum()),
        "calibration_rows": int(blocks.calibration.sum()),
        "final_training_rows": int(blocks.final_training.sum()),
        "heldout_rows": int(blocks.heldout.sum()),
        "heldout_mae": float(np.mean(np.abs(mean - heldout.y))) if len(heldout) else None,
        "heldout_interval_coverage": None,
        "calibration_interval_coverage": None,
        "early_stopping_loss": float(np.mean([min(m[1][monitored_loss(cfg)]) for m in members]))
        if blocks.validation.any() and all(m[1] for m in members)
        else None,
        "base_model": base_model,
        "base_validation_loss": {k: round(v, 6) for k, v in base_losses.items()},
        "warm_started": warm_started,
    }
    if cfg.intervals and len(heldout):
        lower, upper = apply_calibration(calibration, mean, raw_lower, raw_upper)
        metrics["calibration_interval_coverage"] = interval_coverage(heldout.y, lower, upper)
        metrics["heldout_interval_coverage"] = split_half_coverage(
            heldout.y, mean, raw_lower, raw_upper, heldout.origin, cfg.interval_level
        )
    return metrics


def fit_metadata(
    cube: Cube,
    rows: FeatureMatrix,
    blocks: TrainingBlocks,
    cfg: ForecastConfig,
    *,
    seed: int,
    base_model: str | None,
    metrics: dict[str, Any],
    calibration: dict,
    fit_seconds: float,
) -> dict[str, Any]:
    """The fitted model's ``metadata_`` (see
    :class:`~geo_crime.forecast.model.KerasForecaster`): ``rows`` are the training rows (their
    origins index ``cube``'s periods) and ``blocks`` their chronological blocks."""
    heldout_mask = blocks.heldout

    def target_period(mask: np.ndarray, last: bool = False) -> str | None:
        """First (or last) target period of the rows in ``mask``."""
        if not mask.any():
            return None
        origin = rows.origin[mask].max() if last else rows.origin[mask].min()
        return str(cube.periods[int(origin) + 1].date())

    return {
        "format": MODEL_FORMAT,
        "model": "geo_crime.forecast.KerasForecaster",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "training_window": {
            "first_period": str(cube.periods[0].date()),
            "last_period": str(cube.periods[-1].date()),
            "n_periods": int(cube.shape[1]),
            "n_units": int(cube.shape[0]),
            "rows": int(len(rows)),
            "first_target_period": target_period(np.ones(len(rows), dtype=bool)),
            "validation_from": target_period(blocks.validation),
            "calibration_from": target_period(blocks.calibration),
            "final_training_to": target_period(blocks.final_training, last=True),
        },
        "unit_type": str(cube.meta.get("unit_type", "unknown")),
        "freq": cube.freq,
        "target": cfg.target,
        "features": list(rows.names),
        "config": cfg.to_dict(),
        "hyperparameters": cfg.hyperparameters(),
        "seed": seed,
        "base_model": base_model,
        "versions": _versions(),
        "metrics": metrics,
        "calibration": {
            "calibrated": bool(cfg.intervals and heldout_mask.any()),
            "block": blocks.heldout_block,
            "rows": int(heldout_mask.sum()),
            "first_target_period": target_period(heldout_mask),
            "last_target_period": target_period(heldout_mask, last=True),
            "trained_on": False,
            "chose_epoch": blocks.heldout_block == "validation",
            "refit": blocks.refit,
            "note": blocks.note,
        },
        "interval_calibration": calibration,
        "fit_seconds": round(fit_seconds, 3),
    }
