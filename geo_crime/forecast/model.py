"""The pooled Keras forecaster: one network for every unit, next-period severity.

Model
-----
One feed-forward network (TensorFlow backend) is trained on the feature rows of **all** units
(:class:`~geo_crime.forecast.features.FeatureBuilder`: the unit's last ``L`` periods and those of
its spatial lag, its long-run mean and its neighbours', calendar features of the target period,
log population and the division one-hot when known). It predicts a non-negative mean

    mu = s * exp(w * log(m / s + eps) + g(x))

where ``m`` is the unit's historical mean, ``s`` the training mean of the target, ``w`` a weight
initialised at one and ``g`` a ReLU network whose last layer starts at zero: an untrained model
forecasts the historical mean, and training learns a multiplicative correction from recent history,
the neighbourhood, the season and the division. The loss is the Poisson deviance (appropriate for
counts, and a quasi-likelihood for severity and harm sums); ``exp`` keeps forecasts positive.

Prediction intervals. Two extra heads give the 10% and 90% quantiles (an 80% interval) as
``lower = mu * sigmoid(a(x))`` and ``upper = mu * (1 + softplus(b(x)))``, trained with the pinball
loss on a copy of the hidden layer whose gradient is stopped, so the intervals never distort the
mean. The heads learn slowly relative to early stopping, so the bounds are then rescaled by
split-conformal factors, per bin of the predicted mean (Mondrian conformal: each bin's interval
holds about 80% of its calibration actuals). The factors are computed with the final network(s)
on a **held-out block that no final network was trained on** (see Training), so the calibration
is out of sample. In zero-heavy panels (most weeks of most small hexagons are empty) the honest
80% interval of a quiet cell is ``[0, 0]``; busy cells keep informative bounds.

Held-out metrics. ``metadata_["metrics"]`` holds ``heldout_mae`` (final forecasts on the held-out
block), ``calibration_interval_coverage`` (coverage on the rows that set the factors: at least
the nominal level by construction, so not an estimate) and ``heldout_interval_coverage``, an
honest estimate: factors fitted on the earlier half of the held-out periods, coverage counted on
the later half. ``metadata_["calibration"]`` records which block calibrated the intervals, its
periods and rows, and whether those rows chose the number of epochs. The backtest reports the
coverage on its test periods.

Training. The training cube's eligible rows (complete history and target) are split by time into
blocks of whole periods (never shuffled rows), from the latest origins backwards:

* ``refit_full=True`` (the default): the latest ``calibration_share`` of origins is the
  calibration block, the ``validation_share`` before it the validation block, the rest the fit
  block. Early stopping trains on the fit block and monitors the validation block (best epoch's
  weights restored); the network is then retrained from the same seed on fit + validation for
  the chosen number of epochs. The calibration block is never trained on: it only sets the
  interval factors and the held-out metrics. This keeps the validation block (recent data) in
  the final network and the calibration honest; the price is that the latest
  ``calibration_share`` of periods only calibrates.
* ``refit_full=False``: the latest ``validation_share`` of origins is the validation block; the
  final network is the early-stopped one, trained on the fit block only, and the validation
  block calibrates the intervals. Those rows only chose the epoch whose weights are kept (one
  number); no gradient step used them, so the calibration is out of sample up to that choice.
* Fallbacks. ``refit_full=True`` with fewer than three training periods behaves as
  ``refit_full=False`` (no refit, calibration on the validation block); ``calibration_share=0``
  refits on fit + validation and leaves the intervals uncalibrated (raw quantile heads); a single
  training period trains for ``max_epochs`` on it with uncalibrated intervals. The metadata says
  which case applied.

Rows are shuffled within the block being trained on only. With ``ensemble=k``, ``k`` networks
(seeds ``seed`` .. ``seed + k - 1``) are trained the same way on the same blocks and their
outputs averaged; the intervals are calibrated on the averaged outputs. The feature scaling
(feature means and standard deviations, the target scale ``s``) is fitted on the whole training
cube, held-out periods included; no held-out row enters a gradient step.

Reproducibility. ``seed`` seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``) and
TensorFlow op determinism is switched on (``tf.config.experimental.enable_op_determinism``; this is
a process-wide TensorFlow setting). Repeated fits in one process, and across processes on the same
machine, then give identical weights in our tests. Across machines, CPU instruction sets
(oneDNN kernels, AVX-512 vs AVX2) and thread counts can change floating-point summation order:
expect forecasts to agree to about 1e-4 relative, and backtest metrics to about 1%, not bit for
bit.

Persistence. :meth:`KerasForecaster.save` writes a folder (``metadata.json``, ``features.json``,
``weights.npz``) into a temporary sibling and renames it into place; :meth:`KerasForecaster.load`
rebuilds the network from the stored hyperparameters and loads the weights.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.cube import Cube
from geo_crime.errors import ModelError
from geo_crime.forecast.baselines import Forecaster
from geo_crime.forecast.features import (
    TARGETS,
    FeatureBuilder,
    FeatureMatrix,
    chronological_split,
    history_ok,
    next_period,
)

__all__ = [
    "DEFAULT_CONFIG",
    "FAST_CONFIG",
    "ForecastConfig",
    "ForecastModel",
    "KerasForecaster",
    "TrainingBlocks",
    "apply_calibration",
    "build_network",
    "fit_calibration",
    "load_model",
    "predict_next",
    "seed_everything",
    "split_half_coverage",
    "train",
    "training_blocks",
]

MODEL_FORMAT = 1


@dataclass(frozen=True)
class ForecastConfig:
    """Settings of the Keras forecaster (features, network, training).

    Attributes
    ----------
    target : {"severity", "count", "harm"}
        The measure forecast.
    lags : int
        Periods of history per row (``L``).
    spatial, calendar, static : bool
        Feature groups (see :mod:`geo_crime.forecast.features`).
    weights_method : str
        Spatial weights method; point units use ``knn`` neighbours.
    knn : int
        Neighbours for point units.
    units, layers : int
        Width and depth of the ReLU network.
    dropout, l2 : float
        Dropout rate after each hidden layer and L2 penalty of the hidden kernels.
    learning_rate : float
        Adam learning rate.
    batch_size, max_epochs, patience : int
        Mini-batch size, epoch cap and early-stopping patience (epochs).
    validation_share : float
        Share of the training origins in the early-stopping (validation) block: the latest ones,
        or, with ``refit_full``, the ones just before the calibration block.
    calibration_share : float
        With ``refit_full``: the latest share of the training origins (at least one period) held
        out of all training to calibrate the intervals and score the held-out metrics; ``0``
        refits on every row and leaves the intervals uncalibrated. Ignored without
        ``refit_full`` (the validation block calibrates).
    refit_full : bool
        Retrain on the fit and validation blocks for the chosen number of epochs after early
        stopping (on by default: the validation block is recent data, and leaving it out hurt on
        three of the five real panels; off in :data:`FAST_CONFIG`). The calibration block is
        never part of the refit.
    ensemble : int
        Number of networks (seeds ``seed .. seed + ensemble - 1``) whose forecasts are averaged.
    intervals : bool
        Train the quantile heads (80% interval).
    interval_level : float
        Nominal coverage of the interval (quantiles ``(1 - level) / 2`` and ``(1 + level) / 2``).
    deterministic : bool
        Switch TensorFlow op determinism on.
    """

    target: str = "severity"
    lags: int = 8
    spatial: bool = True
    calendar: bool = True
    static: bool = True
    weights_method: str = "auto"
    knn: int = 6
    units: int = 64
    layers: int = 2
    dropout: float = 0.1
    l2: float = 1e-5
    learning_rate: float = 1e-3
    batch_size: int = 512
    max_epochs: int = 100
    patience: int = 8
    validation_share: float = 0.2
    calibration_share: float = 0.15
    refit_full: bool = True
    ensemble: int = 1
    intervals: bool = True
    interval_level: float = 0.8
    deterministic: bool = True

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ModelError(f"unknown forecast target {self.target!r}; use one of {TARGETS}")
        if self.lags < 1 or self.units < 1 or self.layers < 0 or self.ensemble < 1:
            raise ModelError("lags, units and ensemble must be >= 1 and layers >= 0")
        if not 0 < self.interval_level < 1:
            raise ModelError("interval_level must be between 0 and 1")
        if not 0 <= self.dropout < 1:
            raise ModelError("dropout must be in [0, 1)")
        if not 0 <= self.calibration_share < 1 or not 0 <= self.validation_share < 1:
            raise ModelError("validation_share and calibration_share must be in [0, 1)")
        if self.validation_share + self.calibration_share >= 1:
            raise ModelError("validation_share + calibration_share must be below 1")

    def replace(self, **changes: Any) -> ForecastConfig:
        """A copy with some settings changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ForecastConfig:
        """Build from a dict, ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def hyperparameters(self) -> dict[str, Any]:
        """The network and training settings (what tuning searches)."""
        keys = ("lags", "units", "layers", "dropout", "l2", "learning_rate", "batch_size")
        return {k: getattr(self, k) for k in keys}


#: Default settings for analyses and the report.
DEFAULT_CONFIG = ForecastConfig()

#: Small, fast settings for the one-command pipeline (well under a minute on ~2,000 cells).
FAST_CONFIG = ForecastConfig(
    lags=6,
    units=32,
    layers=1,
    dropout=0.0,
    batch_size=1024,
    max_epochs=30,
    patience=4,
    refit_full=False,
)


def _keras():
    """Import Keras (TensorFlow backend) quietly, on first use only."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow; optionally switch TF op determinism on.

    Parameters
    ----------
    seed : int
        The seed.
    deterministic : bool, default True
        Call ``tf.config.experimental.enable_op_determinism()`` (process-wide).
    """
    keras = _keras()
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def pinball_loss(quantile: float):
    """Pinball (quantile) loss for the given quantile, as a Keras loss function."""
    keras = _keras()
    ops = keras.ops

    def loss(y_true, y_pred):
        err = y_true - y_pred
        return ops.mean(ops.maximum(quantile * err, (quantile - 1.0) * err), axis=-1)

    loss.__name__ = f"pinball_{quantile:g}"
    return loss


def build_network(n_features: int, config: ForecastConfig):
    """The (compiled) Keras network for ``n_features`` inputs.

    Parameters
    ----------
    n_features : int
        Width of the feature matrix.
    config : ForecastConfig
        Network and training settings.

    Returns
    -------
    keras.Model
        Inputs ``{"features": (n, p), "base": (n, 1)}``; outputs ``{"mean"}`` and, with
        intervals, ``{"lower", "upper"}`` (in units of the scaled target).
    """
    keras = _keras()
    layers, ops = keras.layers, keras.ops
    x_in = keras.Input((n_features,), name="features")
    b_in = keras.Input((1,), name="base")
    reg = keras.regularizers.L2(config.l2) if config.l2 > 0 else None
    h = x_in
    for i in range(config.layers):
        h = layers.Dense(config.units, activation="relu", kernel_regularizer=reg, name=f"h{i}")(h)
        if config.dropout > 0:
            h = layers.Dropout(config.dropout, name=f"dropout{i}")(h)
    correction = layers.Dense(1, kernel_initializer="zeros", name="correction")(h)
    weighted_base = layers.Dense(1, kernel_initializer="ones", name="base_weight")(b_in)
    log_mu = layers.Add(name="log_mean")([weighted_base, correction])
    mu = layers.Lambda(lambda t: ops.exp(ops.clip(t, -15.0, 12.0)), name="mean")(log_mu)
    outputs = {"mean": mu}
    losses: dict[str, Any] = {"mean": "poisson"}
    if config.intervals:
        q_lo = (1.0 - config.interval_level) / 2.0
        q_hi = 1.0 - q_lo
        frozen = layers.Lambda(ops.stop_gradient, name="frozen")(
            layers.Concatenate(name="q_in")([h, log_mu])
        )
        frozen_mu = layers.Lambda(ops.stop_gradient, name="frozen_mean")(mu)
        q = layers.Dense(16, activation="relu", name="q_hidden")(frozen)
        a = layers.Dense(1, name="q_lower")(q)
        b = layers.Dense(1, name="q_upper")(q)
        outputs["lower"] = layers.Lambda(lambda z: z[0] * ops.sigmoid(z[1]), name="lower")(
            [frozen_mu, a]
        )
        outputs["upper"] = layers.Lambda(lambda z: z[0] * (1.0 + ops.softplus(z[1])), name="upper")(
            [frozen_mu, b]
        )
        losses["lower"] = pinball_loss(q_lo)
        losses["upper"] = pinball_loss(q_hi)
    model = keras.Model({"features": x_in, "base": b_in}, outputs, name="pooled_forecaster")
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate), loss=losses, jit_compile=False
    )
    return model


#: Interval calibration that leaves the quantile heads as they are (one bin, factors one).
_NO_CALIBRATION: dict[str, list[float]] = {"edges": [], "lower": [1.0], "upper": [1.0]}


def _monitor(config: ForecastConfig) -> str:
    return "val_mean_loss" if config.intervals else "val_loss"


def _conformal_factors(
    y: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float
) -> tuple[float, float]:
    """Lower and upper multipliers giving ``level`` coverage on ``y`` (see ``fit_calibration``)."""
    n = len(y)
    if n < 10:
        return 1.0, 1.0
    lo_f = 1.0
    ok = lower > 0
    if ok.sum() >= 10:
        lo_f = float(np.quantile(y[ok] / lower[ok], (1.0 - level) / 2.0, method="lower"))
    above = y >= lower * lo_f
    hi_f = 1.0
    if (upper > 0).all():
        ratios = np.sort(y[above] / upper[above])
        need = int(np.ceil(level * (n + 1)))
        if need <= len(ratios):
            hi_f = float(ratios[need - 1])
        elif len(ratios):
            hi_f = float(ratios[-1])
    return lo_f, hi_f


def fit_calibration(
    actual: np.ndarray,
    mean: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    level: float,
) -> dict[str, list[float]]:
    """Split-conformal factors of the interval bounds, per bin of the predicted mean.

    The rows are split into up to five bins of the predicted mean (quantile edges, at least 200
    rows per bin); in each bin the lower bound is multiplied by the ``(1 - level) / 2`` quantile
    of ``actual / lower``, then the upper bound by the smallest factor for which the interval
    holds ``level`` of the bin's actuals (finite-sample corrected). Binning (Mondrian conformal)
    keeps the intervals of busy cells meaningful when most cells are quiet: in a bin where more
    than ``level`` of the actuals are zero the interval is ``[0, 0]``, which is the honest 80%
    interval there. The heads give the shape within a bin, the factors the level. The rows must
    be ones the networks were not trained on, or the factors are too small.

    Parameters
    ----------
    actual : numpy.ndarray
        Observed targets of the calibration rows.
    mean, lower, upper : numpy.ndarray
        The networks' mean and uncalibrated bounds on the same rows (target units).
    level : float
        Nominal coverage.

    Returns
    -------
    dict
        ``edges`` (bin edges of the predicted mean) and the per-bin ``lower`` and ``upper``
        factors, as read by :func:`apply_calibration`.
    """
    if len(actual) == 0:
        return _NO_CALIBRATION
    n_bins = int(np.clip(len(actual) // 200, 1, 5))
    edges = np.quantile(mean, np.linspace(0, 1, n_bins + 1)[1:-1]).tolist()
    which = np.searchsorted(edges, mean, side="right")
    lower_factors, upper_factors = [], []
    for b in range(n_bins):
        in_bin = which == b
        lo_f, hi_f = _conformal_factors(actual[in_bin], lower[in_bin], upper[in_bin], level)
        lower_factors.append(lo_f)
        upper_factors.append(hi_f)
    return {"edges": edges, "lower": lower_factors, "upper": upper_factors}


def apply_calibration(
    calibration: dict[str, list[float]], mean: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rescale uncalibrated bounds by the factors of their bin of the predicted mean.

    Parameters
    ----------
    calibration : dict
        Output of :func:`fit_calibration`.
    mean, lower, upper : numpy.ndarray
        Predicted mean and uncalibrated bounds (target units).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The calibrated ``(lower, upper)``.
    """
    which = np.searchsorted(np.asarray(calibration["edges"], dtype=float), mean, side="right")
    return (
        lower * np.asarray(calibration["lower"])[which],
        upper * np.asarray(calibration["upper"])[which],
    )


def _coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float | None:
    """Share of ``actual`` inside ``[lower, upper]`` (None without rows)."""
    if len(actual) == 0:
        return None
    return float(((actual >= lower) & (actual <= upper)).mean())


def split_half_coverage(
    actual: np.ndarray,
    mean: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    origin: np.ndarray,
    level: float,
) -> float | None:
    """Out-of-sample coverage of conformal calibration on a held-out block.

    Factors are fitted (:func:`fit_calibration`) on the rows of the earlier half of the block's
    origins and the coverage of the rescaled interval is counted on the later half, so no row
    scores factors it helped to set. The coverage of the final factors on the whole block is
    at least ``level`` by construction and says nothing about new periods; this estimate does.

    Parameters
    ----------
    actual, mean, lower, upper : numpy.ndarray
        Observed targets, predicted mean and uncalibrated bounds of the held-out rows.
    origin : numpy.ndarray
        Origin period of each row.
    level : float
        Nominal coverage.

    Returns
    -------
    float or None
        The coverage on the later half; None with fewer than two distinct origins.
    """
    distinct = np.unique(origin)
    if len(distinct) < 2:
        return None
    later = origin >= distinct[(len(distinct) + 1) // 2]
    earlier = ~later
    factors = fit_calibration(actual[earlier], mean[earlier], lower[earlier], upper[earlier], level)
    lo, hi = apply_calibration(factors, mean[later], lower[later], upper[later])
    return _coverage(actual[later], lo, hi)


@dataclass(frozen=True)
class TrainingBlocks:
    """Chronological blocks of the training rows, as boolean masks over the rows.

    Attributes
    ----------
    fit, validation, calibration : numpy.ndarray
        The fit block (early stopping's gradient steps), the validation block (monitored by early
        stopping) and the calibration block (held out of all training; empty when there is
        none). Disjoint, covering every row, each made of whole periods and in this time order.
    refit : bool
        The final networks are retrained on fit + validation for the best number of epochs.
    heldout_block : {"calibration", "validation"} or None
        The block that calibrates the intervals and scores the held-out metrics: rows no final
        network was trained on. None when there are none (intervals stay uncalibrated).
    note : str
        The case that applied, in words (stored in the metadata).
    """

    fit: np.ndarray
    validation: np.ndarray
    calibration: np.ndarray
    refit: bool
    heldout_block: str | None
    note: str

    @property
    def final_training(self) -> np.ndarray:
        """Rows the final networks are trained on (gradient steps)."""
        return self.fit | self.validation if self.refit else self.fit.copy()

    @property
    def heldout(self) -> np.ndarray:
        """Rows that calibrate the intervals and score the held-out metrics."""
        if self.heldout_block == "calibration":
            return self.calibration.copy()
        if self.heldout_block == "validation":
            return self.validation.copy()
        return np.zeros_like(self.fit)


def training_blocks(origins: np.ndarray, config: ForecastConfig) -> TrainingBlocks:
    """Split training rows by origin into fit, validation and calibration blocks.

    Parameters
    ----------
    origins : numpy.ndarray
        Origin period index of each training row.
    config : ForecastConfig
        Uses ``refit_full``, ``validation_share`` and ``calibration_share``.

    Returns
    -------
    TrainingBlocks
        With ``refit_full`` and at least three distinct origins: the latest
        ``calibration_share`` of origins (at least one) calibrate, the ``validation_share``
        before them (at least one) validate, the rest (at least one) fit. Otherwise the fit and
        validation blocks of :func:`~geo_crime.forecast.features.chronological_split` (see the
        module docstring for the fallbacks).
    """
    origins = np.asarray(origins)
    distinct = np.unique(origins)
    n_origins = len(distinct)
    no_rows = np.zeros(len(origins), dtype=bool)
    if n_origins < 2:
        return TrainingBlocks(
            fit=np.ones(len(origins), dtype=bool),
            validation=no_rows,
            calibration=no_rows.copy(),
            refit=False,
            heldout_block=None,
            note="a single training period: trained for max_epochs on it, intervals uncalibrated",
        )
    if config.refit_full and config.calibration_share > 0 and n_origins >= 3:
        n_calibration = int(np.clip(round(config.calibration_share * n_origins), 1, n_origins - 2))
        n_validation = int(
            np.clip(round(config.validation_share * n_origins), 1, n_origins - 1 - n_calibration)
        )
        calibration_start = distinct[n_origins - n_calibration]
        validation_start = distinct[n_origins - n_calibration - n_validation]
        calibration = origins >= calibration_start
        validation = (origins >= validation_start) & ~calibration
        return TrainingBlocks(
            fit=origins < validation_start,
            validation=validation,
            calibration=calibration,
            refit=True,
            heldout_block="calibration",
            note=(
                "early stopping on the validation block, final networks refit on fit + "
                "validation; intervals calibrated on the later calibration block, which no "
                "network trained on or used for early stopping"
            ),
        )
    fit, validation = chronological_split(origins, share=config.validation_share)
    if config.refit_full and config.calibration_share == 0:
        return TrainingBlocks(
            fit=fit,
            validation=validation,
            calibration=no_rows,
            refit=True,
            heldout_block=None,
            note=(
                "calibration_share=0: final networks refit on every row, no held-out rows, "
                "intervals uncalibrated (raw quantile heads)"
            ),
        )
    if config.refit_full:
        note = (
            "too few training periods for a calibration block: no refit, the early-stopped "
            "networks are kept and calibrated on the validation block, which chose their epoch"
        )
    else:
        note = (
            "refit_full=False: the early-stopped networks never trained on the validation "
            "block, which chose their epoch and calibrates the intervals"
        )
    return TrainingBlocks(
        fit=fit,
        validation=validation,
        calibration=no_rows,
        refit=False,
        heldout_block="validation",
        note=note,
    )


def _inputs(rows: FeatureMatrix, keep: np.ndarray | None = None) -> dict[str, np.ndarray]:
    X, base = (rows.X, rows.base) if keep is None else (rows.X[keep], rows.base[keep])
    return {"features": X, "base": base[:, None].astype(np.float32)}


def _targets(y: np.ndarray, intervals: bool) -> dict[str, np.ndarray]:
    col = y.astype(np.float32)[:, None]
    return {"mean": col, "lower": col, "upper": col} if intervals else {"mean": col}


def _versions() -> dict[str, str]:
    import sklearn

    import geo_crime

    keras = _keras()
    import tensorflow as tf

    return {
        "geo_crime": getattr(geo_crime, "__version__", "unknown"),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
    }


class KerasForecaster(Forecaster):
    """The pooled Keras forecaster (see the module docstring).

    Parameters
    ----------
    config : ForecastConfig, default DEFAULT_CONFIG
        Features, network and training settings.
    seed : int, default 0
        Seed of every random step (weights, dropout, shuffling).
    target : str, optional
        Overrides ``config.target``.

    Attributes
    ----------
    builder_ : FeatureBuilder
        Fitted feature definition and scaling.
    networks_ : list of keras.Model
        The trained network(s) (one per ensemble member).
    blocks_ : TrainingBlocks
        The chronological blocks of the training rows (``builder_.training_rows(cube)`` order)
        used by the last :meth:`fit`; not saved.
    calibration_ : dict
        Conformal factors of the interval bounds (see :func:`fit_calibration`).
    metadata_ : dict
        Training window (with ``validation_from``, ``calibration_from`` and
        ``final_training_to``), unit type, features, target, versions, hyperparameters,
        ``metrics`` (block row counts, ``heldout_mae``, ``heldout_interval_coverage``,
        ``calibration_interval_coverage``, ``early_stopping_loss``), ``calibration`` (which rows
        calibrated the intervals and how they relate to training) and ``interval_calibration``
        (the factors).
    """

    name = "keras"

    def __init__(
        self,
        config: ForecastConfig = DEFAULT_CONFIG,
        *,
        seed: int = 0,
        target: str | None = None,
    ) -> None:
        if target is not None and target != config.target:
            config = config.replace(target=target)
        super().__init__(target=config.target)
        self.config = config
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {"config": self.config, "seed": self.seed}

    @property
    def supports_intervals(self) -> bool:  # type: ignore[override]
        return self.config.intervals

    @property
    def required_history(self) -> int:
        return self.config.lags

    # --- training ---------------------------------------------------------------------------

    def _builder(self) -> FeatureBuilder:
        cfg = self.config
        return FeatureBuilder(
            target=cfg.target,
            lags=cfg.lags,
            spatial=cfg.spatial,
            calendar=cfg.calendar,
            static=cfg.static,
            weights_method=cfg.weights_method,
            knn=cfg.knn,
        )

    def fit(self, cube: Cube) -> KerasForecaster:
        """Train on the eligible rows of the training cube; calibrate on held-out rows.

        The rows are split by time (:func:`training_blocks`); the final networks are trained on
        ``blocks_.final_training`` only, and the interval factors and held-out metrics come from
        ``blocks_.heldout``, rows no final network was trained on (see the module docstring).

        Parameters
        ----------
        cube : Cube
            The training window; its coverage mask restricts the rows.

        Returns
        -------
        KerasForecaster
            ``self``.
        """
        cfg = self.config
        start = time.perf_counter()
        seed_everything(self.seed, deterministic=cfg.deterministic)
        self.builder_ = self._builder().fit(cube)
        rows = self.builder_.training_rows(cube)
        y = rows.y / self.builder_.target_scale_
        blocks = training_blocks(rows.origin, cfg)
        self.blocks_ = blocks
        members = [self._train_member(rows, y, blocks, self.seed + k) for k in range(cfg.ensemble)]
        # inference runs on fresh copies of the trained networks (no optimizer, no traced training
        # graph): exactly the networks load() rebuilds, so saved and loaded models agree bit for bit
        self.networks_ = []
        for weights, _, _ in members:
            net = build_network(rows.X.shape[1], cfg)
            net.set_weights(weights)
            self.networks_.append(net)
        history = members[0][1]
        best_epochs = [m[2] for m in members]
        self.best_epoch_ = best_epochs[0]
        self.history_ = history
        heldout_mask = blocks.heldout
        final_mask = blocks.final_training
        heldout = rows.subset(heldout_mask)
        mean, raw_lower, raw_upper = self._network_outputs(heldout)
        self.calibration_ = _NO_CALIBRATION
        if cfg.intervals and heldout_mask.any():
            self.calibration_ = fit_calibration(
                heldout.y, mean, raw_lower, raw_upper, cfg.interval_level
            )
        metrics: dict[str, Any] = {
            "best_epoch": best_epochs[0] if len(best_epochs) == 1 else best_epochs,
            "epochs_run": len(next(iter(history.values()), [])) or best_epochs[0],
            "fit_rows": int(blocks.fit.sum()),
            "validation_rows": int(blocks.validation.sum()),
            "calibration_rows": int(blocks.calibration.sum()),
            "final_training_rows": int(final_mask.sum()),
            "heldout_rows": int(heldout_mask.sum()),
            "heldout_mae": float(np.mean(np.abs(mean - heldout.y))) if len(heldout) else None,
            "heldout_interval_coverage": None,
            "calibration_interval_coverage": None,
            "early_stopping_loss": float(np.mean([min(m[1][_monitor(cfg)]) for m in members]))
            if blocks.validation.any()
            else None,
        }
        if cfg.intervals and len(heldout):
            lower, upper = apply_calibration(self.calibration_, mean, raw_lower, raw_upper)
            metrics["calibration_interval_coverage"] = _coverage(heldout.y, lower, upper)
            metrics["heldout_interval_coverage"] = split_half_coverage(
                heldout.y, mean, raw_lower, raw_upper, heldout.origin, cfg.interval_level
            )
        self.fit_seconds_ = time.perf_counter() - start

        def target_period(mask: np.ndarray, last: bool = False) -> str | None:
            """First (or last) target period of the rows in ``mask``."""
            if not mask.any():
                return None
            origin = rows.origin[mask].max() if last else rows.origin[mask].min()
            return str(cube.periods[int(origin) + 1].date())

        self.metadata_ = {
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
                "final_training_to": target_period(final_mask, last=True),
            },
            "unit_type": str(cube.meta.get("unit_type", "unknown")),
            "freq": cube.freq,
            "target": cfg.target,
            "features": list(rows.names),
            "config": cfg.to_dict(),
            "hyperparameters": cfg.hyperparameters(),
            "seed": self.seed,
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
            "interval_calibration": self.calibration_,
            "fit_seconds": round(self.fit_seconds_, 3),
        }
        return self

    def _train_member(
        self,
        rows: FeatureMatrix,
        y: np.ndarray,
        blocks: TrainingBlocks,
        seed: int,
    ) -> tuple[list[np.ndarray], dict[str, list[float]], int]:
        """Train one network; returns its weights, loss history and best epoch.

        Early stopping trains on ``blocks.fit`` and monitors ``blocks.validation``; with
        ``blocks.refit`` (or without a validation block) the network is then retrained from the
        same seed on ``blocks.final_training``. The calibration block is never passed to Keras.
        """
        cfg = self.config
        keras = _keras()
        seed_everything(seed, deterministic=cfg.deterministic)
        network = build_network(rows.X.shape[1], cfg)
        history: dict[str, list[float]] = {}
        best_epoch = cfg.max_epochs
        if blocks.validation.any():
            stop = keras.callbacks.EarlyStopping(
                monitor=_monitor(cfg), patience=cfg.patience, restore_best_weights=True, mode="min"
            )
            fitted = network.fit(
                _inputs(rows, blocks.fit),
                _targets(y[blocks.fit], cfg.intervals),
                validation_data=(
                    _inputs(rows, blocks.validation),
                    _targets(y[blocks.validation], cfg.intervals),
                ),
                epochs=cfg.max_epochs,
                batch_size=cfg.batch_size,
                callbacks=[stop],
                shuffle=True,
                verbose=0,
            )
            history = {k: [float(v) for v in vals] for k, vals in fitted.history.items()}
            best_epoch = int(np.argmin(history[_monitor(cfg)])) + 1
        if blocks.refit or not blocks.validation.any():
            final_mask = blocks.final_training
            seed_everything(seed, deterministic=cfg.deterministic)
            network = build_network(rows.X.shape[1], cfg)
            network.fit(
                _inputs(rows, final_mask),
                _targets(y[final_mask], cfg.intervals),
                epochs=best_epoch,
                batch_size=cfg.batch_size,
                shuffle=True,
                verbose=0,
            )
        return network.get_weights(), history, best_epoch

    # --- prediction ------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "networks_"):
            raise ModelError("the Keras forecaster is not fitted: call fit(cube) or load(path)")

    def _network_outputs(self, rows: FeatureMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean and uncalibrated bounds (ensemble averages) in the target's units.

        The bounds are NaN without intervals.
        """
        scale = self.builder_.target_scale_
        if len(rows) == 0:
            empty = np.zeros(0)
            return empty, empty, empty
        inputs = _inputs(rows)
        outs = [net(inputs, training=False) for net in self.networks_]  # eager: no retracing
        mean = np.mean([np.asarray(o["mean"], dtype=float)[:, 0] for o in outs], axis=0) * scale
        if not self.config.intervals:
            missing = np.full(len(mean), np.nan)
            return mean, missing, missing
        lower = np.mean([np.asarray(o["lower"], dtype=float)[:, 0] for o in outs], axis=0) * scale
        upper = np.mean([np.asarray(o["upper"], dtype=float)[:, 0] for o in outs], axis=0) * scale
        return mean, lower, upper

    def _raw_predict(self, rows: FeatureMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, lower and upper (calibrated) in the target's units for feature rows."""
        mean, lower, upper = self._network_outputs(rows)
        if self.config.intervals and len(mean):
            calibration = getattr(self, "calibration_", _NO_CALIBRATION)
            lower, upper = apply_calibration(calibration, mean, lower, upper)
        return mean, lower, upper

    def predict_all(self, cube: Cube) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean and 80% interval for the period after the cube's last period.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray, numpy.ndarray)
            ``(mean, lower, upper)``, each ``(n_units,)``; NaN where the unit's last ``lags``
            periods are not all complete.
        """
        self._check_fitted()
        rows = self.builder_.transform(cube)
        mean, lower, upper = self._raw_predict(rows)
        bad = ~rows.valid
        return (
            np.where(bad, np.nan, mean),
            np.where(bad, np.nan, lower),
            np.where(bad, np.nan, upper),
        )

    def predict(self, cube: Cube) -> np.ndarray:
        """Forecast mean of the period after the cube's last period (see :meth:`predict_all`)."""
        return self.predict_all(cube)[0]

    def predict_interval(self, cube: Cube) -> tuple[np.ndarray, np.ndarray]:
        """The 80% interval ``(lower, upper)`` of the next period (see :meth:`predict_all`)."""
        if not self.config.intervals:
            raise ModelError("this model was trained without intervals (config.intervals=False)")
        _, lower, upper = self.predict_all(cube)
        return lower, upper

    # --- persistence -----------------------------------------------------------------------

    def save(self, path: str | os.PathLike, *, extra: dict[str, Any] | None = None) -> Path:
        """Write the model to a folder, atomically.

        Parameters
        ----------
        path : path-like
            Destination folder (replaced if it exists).
        extra : dict, optional
            More metadata to store (e.g. backtest metrics, tuning results).

        Returns
        -------
        pathlib.Path
            The folder, holding ``metadata.json``, ``features.json`` and ``weights.npz``.
        """
        self._check_fitted()
        final = Path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self.metadata_)
        if extra:
            meta.update(extra)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        try:
            (tmp / "metadata.json").write_text(
                json.dumps(meta, indent=2, default=str), encoding="utf-8"
            )
            (tmp / "features.json").write_text(
                json.dumps(self.builder_.to_dict(), indent=2), encoding="utf-8"
            )
            arrays = {
                f"m{k}_{i:03d}": w
                for k, net in enumerate(self.networks_)
                for i, w in enumerate(net.get_weights())
            }
            np.savez(tmp / "weights.npz", **arrays)
            old = None
            if final.exists():
                old = final.with_name(f".{final.name}.old-{os.getpid()}")
                os.replace(final, old)
            os.replace(tmp, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.metadata_ = meta
        return final

    @classmethod
    def load(cls, path: str | os.PathLike) -> KerasForecaster:
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : path-like
            The model folder.

        Returns
        -------
        KerasForecaster
            Ready to predict.
        """
        folder = Path(path)
        try:
            meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
            state = json.loads((folder / "features.json").read_text(encoding="utf-8"))
            with np.load(folder / "weights.npz") as arrays:
                members: dict[int, list[np.ndarray]] = {}
                for key in sorted(arrays.files):
                    k = int(key[1:].split("_")[0])
                    members.setdefault(k, []).append(arrays[key])
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"{folder}: not a readable forecast model ({exc})") from None
        if meta.get("format") != MODEL_FORMAT:
            raise ModelError(f"{folder}: unsupported model format {meta.get('format')!r}")
        config = ForecastConfig.from_dict(meta["config"])
        model = cls(config, seed=int(meta.get("seed", 0)))
        model.builder_ = FeatureBuilder.from_dict(state)
        model.networks_ = []
        for k in sorted(members):
            network = build_network(len(model.builder_.names_), config)
            try:
                network.set_weights(members[k])
            except ValueError as exc:
                raise ModelError(f"{folder}: weights do not match the network ({exc})") from None
            model.networks_.append(network)
        model.metadata_ = meta
        model.calibration_ = meta.get("interval_calibration") or _NO_CALIBRATION
        model.best_epoch_ = meta.get("metrics", {}).get("best_epoch")
        model.history_ = {}
        return model


#: The trained model type returned by :func:`train`.
ForecastModel = KerasForecaster


def train(cube: Cube, *, config: ForecastConfig = DEFAULT_CONFIG, seed: int = 0) -> KerasForecaster:
    """Train the pooled Keras forecaster on a cube.

    Parameters
    ----------
    cube : Cube
        The training panel (any unit type; ``D``, ``W`` or ``M``); incomplete cells are skipped.
    config : ForecastConfig, default DEFAULT_CONFIG
        Settings (use :data:`FAST_CONFIG` for a quick model).
    seed : int, default 0
        Random seed.

    Returns
    -------
    KerasForecaster
    """
    return KerasForecaster(config, seed=seed).fit(cube)


def load_model(path: str | os.PathLike) -> KerasForecaster:
    """Load a model saved by :meth:`KerasForecaster.save`."""
    return KerasForecaster.load(path)


def predict_next(model: Forecaster, cube: Cube) -> pd.DataFrame:
    """Per-unit forecast of the period after the cube's last period.

    Parameters
    ----------
    model : Forecaster
        A fitted forecaster (the Keras model or any baseline).
    cube : Cube
        History up to the origin.

    Returns
    -------
    pandas.DataFrame
        ``unit_id``, ``period`` (start of the forecast period), ``prediction``, ``lower``,
        ``upper`` (80% interval; NaN without intervals) and ``history_complete`` (False where the
        unit's recent history is incomplete and the prediction is NaN for history-based models).
    """
    if isinstance(model, KerasForecaster) and model.config.intervals:
        mean, lower, upper = model.predict_all(cube)
    else:
        mean = model.predict(cube)
        if model.supports_intervals:
            lower, upper = model.predict_interval(cube)
        else:
            lower = upper = np.full(len(mean), np.nan)
    required = max(1, int(model.required_history))
    ok = history_ok(np.asarray(cube.complete, dtype=bool), min(required, cube.shape[1]))[:, -1]
    return pd.DataFrame(
        {
            "unit_id": cube.unit_ids,
            "period": next_period(cube.periods, cube.freq),
            "prediction": mean,
            "lower": lower,
            "upper": upper,
            "history_complete": ok,
        }
    )
