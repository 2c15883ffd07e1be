"""Settings and architecture of the pooled Keras forecaster.

:class:`ForecastConfig` holds every setting of the forecaster (features, network, training,
intervals); :data:`DEFAULT_CONFIG` and :data:`FAST_CONFIG` are the two standard choices.
:func:`build_network` builds the compiled network those settings describe (the model and its
prediction intervals are explained in :mod:`geo_crime.forecast.model`), and
:func:`network_inputs` / :func:`network_targets` put feature rows into the shape it reads. Keras
(TensorFlow backend) is imported only when a network is built (:func:`import_keras`), so the
settings load fast; :func:`seed_everything` makes the fits reproducible.

Training, calibration and persistence live in :mod:`geo_crime.forecast.model`, which re-exports
the public names of this module.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from types import ModuleType
from typing import Any

import numpy as np

from geo_crime.core.errors import ConfigError, ModelError
from geo_crime.forecast.baselines import ROLLING_BASELINES
from geo_crime.forecast.features import FeatureMatrix
from geo_crime.forecast.panel import TARGETS

__all__ = [
    "CORRECTION_BASES",
    "DEFAULT_CONFIG",
    "FAST_CONFIG",
    "ForecastConfig",
    "build_network",
    "import_keras",
    "monitored_loss",
    "network_inputs",
    "network_targets",
    "pinball_loss",
    "seed_everything",
]


#: Losses of the point forecast (see :attr:`ForecastConfig.point_loss`).
POINT_LOSSES = ("poisson", "median")


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
    base_models : tuple of str
        Empty (the default): the network corrects the unit's historical mean, with a learnt
        weight on its log. Otherwise the **correction model**: at every fit the candidate
        baseline (names of :data:`~geo_crime.forecast.baselines.ROLLING_BASELINES`) with the
        lowest point loss on the validation block becomes the base, the network's output is
        ``base * exp(g(x))`` with ``g`` starting at zero, every candidate's forecast is also an
        input, and the network is kept only if it beats its base on the validation block (else
        the base itself is the model): it can never do worse there.
    point_loss : {"poisson", "median"}
        Loss of the point forecast: the Poisson deviance (the point forecast is a mean) or the
        absolute error (pinball at 0.5: the point forecast is a median, which is what minimises
        the MAE; with skewed severity sums the two differ by a few percent).
    warm_start : bool
        In a backtest, each refit starts from the previous origin's network (same base) and
        early stopping decides how many epochs more it needs, instead of training from scratch;
        the pipeline's final model starts from the last backtest network too.
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
    base_models: tuple[str, ...] = ()
    point_loss: str = "poisson"
    warm_start: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_models", tuple(self.base_models))
        if self.point_loss not in POINT_LOSSES:
            raise ModelError(f"point_loss must be one of {POINT_LOSSES}, got {self.point_loss!r}")
        unknown = [b for b in self.base_models if b not in ROLLING_BASELINES]
        if unknown:
            raise ModelError(
                f"base_models {unknown} are not rolling baselines; use {ROLLING_BASELINES}"
            )
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
        """A copy with some settings changed.

        Parameters
        ----------
        **changes
            New values of existing settings.

        Returns
        -------
        ForecastConfig

        Raises
        ------
        geo_crime.core.errors.ConfigError
            For a setting that does not exist.
        """
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(
                f"unknown forecast setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(f.name for f in fields(self))}"
            )
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ForecastConfig:
        """Build from a dict, ignoring unknown keys.

        Parameters
        ----------
        values : dict
            E.g. the output of :meth:`to_dict`.

        Returns
        -------
        ForecastConfig
        """
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def feature_options(self) -> dict[str, Any]:
        """The feature groups and weights settings, as keyword arguments of a feature builder.

        Returns
        -------
        dict
            ``spatial``, ``calendar``, ``static``, ``weights_method`` and ``knn``, for
            :class:`~geo_crime.forecast.features.FeatureBuilder` (with ``target`` and ``lags``)
            and :class:`~geo_crime.forecast.baselines.GradientBoosting`'s ``feature_options``.
        """
        keys = ("spatial", "calendar", "static", "weights_method", "knn")
        return {k: getattr(self, k) for k in keys}

    def hyperparameters(self) -> dict[str, Any]:
        """The network and training settings (what tuning searches)."""
        keys = ("lags", "units", "layers", "dropout", "l2", "learning_rate", "batch_size")
        return {k: getattr(self, k) for k in keys}

    @property
    def correction(self) -> bool:
        """The network corrects the best of :attr:`base_models` (see the class docstring)."""
        return bool(self.base_models)


#: The correction model's candidate bases (the baselines :func:`rolling_baseline` computes).
CORRECTION_BASES = ("last", "ma4", "ma8", "ma13", "hist_mean")

#: Default settings for analyses and the report: the correction model with a median forecast.
DEFAULT_CONFIG = ForecastConfig(base_models=CORRECTION_BASES, point_loss="median", warm_start=True)

#: Small, fast settings for the one-command pipeline (well under a minute on ~2,000 cells).
FAST_CONFIG = ForecastConfig(
    lags=6,
    units=32,
    layers=1,
    dropout=0.0,
    batch_size=4096,
    learning_rate=4e-3,
    max_epochs=30,
    patience=4,
    refit_full=False,
    base_models=CORRECTION_BASES,
    point_loss="median",
    warm_start=True,
)


#: Log of the correction model's starting floor (in units of the scaled target).
FLOOR_LOG = float(np.log(1e-6))


def import_keras() -> ModuleType:
    """Import Keras (TensorFlow backend) quietly, on first use only.

    TensorFlow's C++ log (``TF_CPP_MIN_LOG_LEVEL=3``: not even its spurious graph "errors") and
    its Python logger (errors only) are silenced, unless ``GEO_CRIME_DEBUG`` is set (the CLI's
    ``--debug`` sets it) or the user chose a log level already.

    Returns
    -------
    module
        The ``keras`` package.
    """
    debug = bool(os.environ.get("GEO_CRIME_DEBUG"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if debug else "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if debug or "keras" in sys.modules:
        # heavy (loads TensorFlow, seconds): only a Keras model needs it
        import keras
    else:
        # TensorFlow >= 2.21 logs its start-up notes (oneDNN, CPU features) through absl before
        # it reads TF_CPP_MIN_LOG_LEVEL: the process's stderr is closed while it loads
        with _stderr_closed():
            import keras  # heavy, as above

    if not debug:
        import tensorflow as tf  # heavy: loaded with Keras above

        tf.get_logger().setLevel("ERROR")
    return keras


@contextlib.contextmanager
def _stderr_closed() -> Iterator[None]:
    """Send file descriptor 2 (C++ and Python stderr) to the null device for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow; optionally switch TF op determinism on.

    Parameters
    ----------
    seed : int
        The seed.
    deterministic : bool, default True
        Call ``tf.config.experimental.enable_op_determinism()`` (process-wide).
    """
    keras = import_keras()
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        import tensorflow as tf  # heavy: loaded with Keras above

        tf.config.experimental.enable_op_determinism()


def pinball_loss(quantile: float) -> Callable[[Any, Any], Any]:
    """Pinball (quantile) loss for the given quantile, as a Keras loss function.

    Parameters
    ----------
    quantile : float
        In ``(0, 1)``.

    Returns
    -------
    callable
        ``loss(y_true, y_pred)`` named ``pinball_<quantile>``.
    """
    keras = import_keras()
    ops = keras.ops

    def loss(y_true, y_pred):
        err = y_true - y_pred
        return ops.mean(ops.maximum(quantile * err, (quantile - 1.0) * err), axis=-1)

    loss.__name__ = f"pinball_{quantile:g}"
    return loss


def build_network(n_features: int, config: ForecastConfig) -> Any:
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
        Inputs ``{"features": (n, p), "base": (n, 1)}`` (the log of the scaled historical
        mean, or, for the correction model, the scaled base forecast itself); outputs
        ``{"mean"}`` (the point forecast: a mean or, with ``point_loss="median"``, a median)
        and, with intervals, ``{"lower", "upper"}`` (in units of the scaled target).
    """
    keras = import_keras()
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
    if config.correction:
        # base * exp(g) + a floor starting at ~1e-6 (so a zero base can still move): an
        # untrained network forecasts its base exactly, to 1e-6 of the target scale
        floor = layers.Dense(
            1,
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(FLOOR_LOG),
            name="floor",
        )(h)
        mu = layers.Lambda(
            lambda z: z[0] * ops.exp(ops.clip(z[1], -15.0, 8.0)) + ops.exp(ops.clip(z[2], -30, 5)),
            name="mean",
        )([b_in, correction, floor])
        log_mu = layers.Lambda(lambda t: ops.log(t + 1e-6), name="log_mean")(mu)
    else:
        weighted_base = layers.Dense(1, kernel_initializer="ones", name="base_weight")(b_in)
        log_mu = layers.Add(name="log_mean")([weighted_base, correction])
        mu = layers.Lambda(lambda t: ops.exp(ops.clip(t, -15.0, 12.0)), name="mean")(log_mu)
    outputs = {"mean": mu}
    losses: dict[str, Any] = {
        "mean": "poisson" if config.point_loss == "poisson" else pinball_loss(0.5)
    }
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


def monitored_loss(config: ForecastConfig) -> str:
    """The Keras history key early stopping monitors: the mean head's validation loss.

    Parameters
    ----------
    config : ForecastConfig
        With intervals the network has three losses and the mean head's is monitored.

    Returns
    -------
    str
        ``"val_mean_loss"`` or ``"val_loss"``.
    """
    return "val_mean_loss" if config.intervals else "val_loss"


def network_inputs(rows: FeatureMatrix, keep: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The inputs of :func:`build_network`'s model for feature rows.

    Parameters
    ----------
    rows : FeatureMatrix
        Feature rows.
    keep : numpy.ndarray, optional
        Boolean mask or indices of the rows to pass (default all).

    Returns
    -------
    dict
        ``{"features": (n, p), "base": (n, 1) float32}``.
    """
    X, base = (rows.X, rows.base) if keep is None else (rows.X[keep], rows.base[keep])
    return {"features": X, "base": base[:, None].astype(np.float32)}


def network_targets(y: np.ndarray, intervals: bool) -> dict[str, np.ndarray]:
    """The training targets of :func:`build_network`'s outputs.

    Parameters
    ----------
    y : numpy.ndarray
        Scaled targets of the rows.
    intervals : bool
        Whether the network has the quantile heads (they are trained on the same targets).

    Returns
    -------
    dict
        ``{"mean": (n, 1)}`` and, with intervals, ``"lower"`` and ``"upper"`` (float32).
    """
    col = y.astype(np.float32)[:, None]
    return {"mean": col, "lower": col, "upper": col} if intervals else {"mean": col}
