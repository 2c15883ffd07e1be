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
split-conformal factors computed on the validation block, per bin of the predicted mean (Mondrian
conformal: each bin's interval holds about 80% of its validation actuals). In zero-heavy panels
(most weeks of most small hexagons are empty) the honest 80% interval of a quiet cell is
``[0, 0]``; busy cells keep informative bounds. The empirical coverage on the validation block is
stored in the metadata; the backtest reports it on the test periods.

Training. The training cube's eligible rows (complete history and target) are split by time:
the latest ``validation_share`` of origins is a validation block (whole periods, never shuffled
rows) used for early stopping, with the best epoch's weights restored. With
``refit_full=True`` the network is then retrained from the same seed on every row for the chosen
number of epochs. Rows are shuffled within the fitting block only. With ``ensemble=k``, ``k``
networks (seeds ``seed`` .. ``seed + k - 1``) are trained the same way and their outputs averaged.

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
    "build_network",
    "load_model",
    "predict_next",
    "seed_everything",
    "train",
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
        Latest share of the training origins used as the early-stopping block.
    refit_full : bool
        Retrain on every training row for the chosen number of epochs after early stopping (on
        by default: the validation block is the most recent data, and leaving it out hurt on
        three of the five real panels; off in :data:`FAST_CONFIG`).
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
    """Lower and upper multipliers giving ``level`` coverage on ``y`` (see ``_calibrate``)."""
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
    metadata_ : dict
        Training window, unit type, features, target, versions, metrics, hyperparameters.
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
        """Train on every eligible row of the training cube.

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
        fit_mask, val_mask = chronological_split(rows.origin, share=cfg.validation_share)
        members = [
            self._train_member(rows, y, fit_mask, val_mask, self.seed + k)
            for k in range(cfg.ensemble)
        ]
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
        metrics: dict[str, Any] = {
            "best_epoch": best_epochs[0] if len(best_epochs) == 1 else best_epochs,
            "epochs_run": len(next(iter(history.values()), [])) or best_epochs[0],
            "fit_rows": int(fit_mask.sum()),
            "validation_rows": int(val_mask.sum()),
        }
        self.calibration_ = _NO_CALIBRATION
        if val_mask.any() and cfg.intervals:
            self.calibration_ = self._calibrate(rows.subset(val_mask))
        if val_mask.any():
            mean, lower, upper = self._raw_predict(rows.subset(val_mask))
            actual = rows.y[val_mask]
            metrics["validation_mae"] = float(np.mean(np.abs(mean - actual)))
            metrics["validation_poisson_loss"] = float(
                np.mean([min(m[1][_monitor(cfg)]) for m in members])
            )
            if cfg.intervals:
                inside = (actual >= lower) & (actual <= upper)
                metrics["validation_interval_coverage"] = float(inside.mean())
        self.fit_seconds_ = time.perf_counter() - start
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
                "first_target_period": str(cube.periods[int(rows.origin.min()) + 1].date()),
                "validation_from": str(cube.periods[int(rows.origin[val_mask].min()) + 1].date())
                if val_mask.any()
                else None,
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
            "interval_calibration": self.calibration_,
            "fit_seconds": round(self.fit_seconds_, 3),
        }
        return self

    def _train_member(
        self,
        rows: FeatureMatrix,
        y: np.ndarray,
        fit_mask: np.ndarray,
        val_mask: np.ndarray,
        seed: int,
    ) -> tuple[list[np.ndarray], dict[str, list[float]], int]:
        """Train one network; returns its weights, loss history and best epoch."""
        cfg = self.config
        keras = _keras()
        seed_everything(seed, deterministic=cfg.deterministic)
        network = build_network(rows.X.shape[1], cfg)
        history: dict[str, list[float]] = {}
        best_epoch = cfg.max_epochs
        if val_mask.any():
            stop = keras.callbacks.EarlyStopping(
                monitor=_monitor(cfg), patience=cfg.patience, restore_best_weights=True, mode="min"
            )
            fitted = network.fit(
                _inputs(rows, fit_mask),
                _targets(y[fit_mask], cfg.intervals),
                validation_data=(_inputs(rows, val_mask), _targets(y[val_mask], cfg.intervals)),
                epochs=cfg.max_epochs,
                batch_size=cfg.batch_size,
                callbacks=[stop],
                shuffle=True,
                verbose=0,
            )
            history = {k: [float(v) for v in vals] for k, vals in fitted.history.items()}
            best_epoch = int(np.argmin(history[_monitor(cfg)])) + 1
        if cfg.refit_full or not val_mask.any():
            seed_everything(seed, deterministic=cfg.deterministic)
            network = build_network(rows.X.shape[1], cfg)
            network.fit(
                _inputs(rows),
                _targets(y, cfg.intervals),
                epochs=best_epoch,
                batch_size=cfg.batch_size,
                shuffle=True,
                verbose=0,
            )
        return network.get_weights(), history, best_epoch

    def _calibrate(self, rows: FeatureMatrix) -> dict[str, list[float]]:
        """Split-conformal factors of the interval bounds, per bin of the predicted mean.

        The validation rows are split into up to five bins of the predicted mean (quantile edges,
        at least 200 rows per bin); in each bin the lower bound is multiplied by the
        ``(1 - level) / 2`` quantile of ``y / lower``, then the upper bound by the smallest factor
        for which the interval holds ``level`` of the bin's actuals (finite-sample corrected).
        Binning (Mondrian conformal) keeps the intervals of busy cells meaningful when most cells
        are quiet: in a bin where more than ``level`` of the actuals are zero the interval is
        ``[0, 0]``, which is the honest 80% interval there. The heads give the shape within a
        bin, the factors the level.
        """
        self.calibration_ = _NO_CALIBRATION
        mean, lower, upper = self._raw_predict(rows)
        level = self.config.interval_level
        n_bins = int(np.clip(len(rows) // 200, 1, 5))
        edges = np.quantile(mean, np.linspace(0, 1, n_bins + 1)[1:-1]).tolist()
        which = np.searchsorted(edges, mean, side="right")
        lo_fs, hi_fs = [], []
        for b in range(n_bins):
            sel = which == b
            lo_f, hi_f = _conformal_factors(rows.y[sel], lower[sel], upper[sel], level)
            lo_fs.append(lo_f)
            hi_fs.append(hi_f)
        return {"edges": edges, "lower": lo_fs, "upper": hi_fs}

    # --- prediction ------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "networks_"):
            raise ModelError("the Keras forecaster is not fitted: call fit(cube) or load(path)")

    def _raw_predict(self, rows: FeatureMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, lower and upper in the target's units for feature rows."""
        scale = self.builder_.target_scale_
        if len(rows) == 0:
            empty = np.zeros(0)
            return empty, empty, empty
        inputs = _inputs(rows)
        outs = [net(inputs, training=False) for net in self.networks_]  # eager: no retracing
        mean = np.mean([np.asarray(o["mean"], dtype=float)[:, 0] for o in outs], axis=0) * scale
        if self.config.intervals:
            lower = np.mean([np.asarray(o["lower"], dtype=float)[:, 0] for o in outs], axis=0)
            upper = np.mean([np.asarray(o["upper"], dtype=float)[:, 0] for o in outs], axis=0)
            cal = getattr(self, "calibration_", _NO_CALIBRATION)
            which = np.searchsorted(np.asarray(cal["edges"], dtype=float), mean, side="right")
            lower = lower * scale * np.asarray(cal["lower"])[which]
            upper = upper * scale * np.asarray(cal["upper"])[which]
        else:
            lower = upper = np.full(len(mean), np.nan)
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
