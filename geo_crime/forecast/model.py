"""The pooled Keras forecaster: one network for every unit, next-period severity.

Model
-----
One feed-forward network (TensorFlow backend) is trained on the feature rows of **all** units
(:class:`~geo_crime.forecast.features.FeatureBuilder`: the unit's last ``L`` periods and those of
its spatial lag, its long-run mean and its neighbours', calendar features of the target period,
log population and the division one-hot when known). The default is the **correction model**
(``config.base_models``, :mod:`geo_crime.forecast.correction`): the candidate baseline with the
lowest point loss on the validation block is the base ``b`` and the forecast is
``b * exp(g(x))``, ``g`` a ReLU network whose last layer starts at zero, kept only where it beats
``b`` on the validation block. Without base models it is ``s * exp(w * log(m / s + eps) + g(x))``
(``m`` the historical mean, ``s`` the target scale, ``w`` starting at one). The point loss is the
absolute error (a median forecast, the default) or the Poisson deviance (a mean).

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

Modules. The settings and the network live in :mod:`geo_crime.forecast.network`
(:class:`ForecastConfig`, :func:`build_network`), the chronological blocks in
:mod:`geo_crime.forecast.blocks` (:func:`training_blocks`), the conformal factors in
:mod:`geo_crime.forecast.calibration` and the metadata a fit records in
:mod:`geo_crime.forecast.model_metadata`; this module trains, predicts, saves and loads, and
re-exports their public names, so ``from geo_crime.forecast.model import ForecastConfig`` keeps
working.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.core import progress
from geo_crime.core.errors import ModelError
from geo_crime.core.io_utils import staged_folder
from geo_crime.cube.panel import Cube
from geo_crime.forecast.baselines import Forecaster
from geo_crime.forecast.blocks import TrainingBlocks, training_blocks
from geo_crime.forecast.calibration import (
    NO_CALIBRATION,
    apply_calibration,
    fit_calibration,
)
from geo_crime.forecast.correction import (
    candidate_bases,
    keras_point_loss,
    point_loss,
    with_bases,
)
from geo_crime.forecast.features import FeatureBuilder, FeatureMatrix
from geo_crime.forecast.model_metadata import MODEL_FORMAT, fit_metadata, heldout_metrics
from geo_crime.forecast.network import (
    DEFAULT_CONFIG,
    ForecastConfig,
    build_network,
    import_keras,
    monitored_loss,
    network_inputs,
    network_targets,
    seed_everything,
)
from geo_crime.forecast.panel import history_ok, next_period

__all__ = [
    "KerasForecaster",
    "load_model",
    "predict_next",
    "train",
]


class KerasForecaster(Forecaster):
    """The pooled Keras forecaster (see the module docstring).

    Parameters
    ----------
    config : ForecastConfig, default DEFAULT_CONFIG
        Features, network and training settings.
    seed : int, default 0
        Seed of every random step (weights, dropout, shuffling).
    target : str, optional
        Overrides ``config.target``: ``config`` is stored with it applied, and the ``target``
        attribute is always ``config.target``, so :meth:`get_params` and :meth:`clone` round trip.

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

    @property
    def supports_intervals(self) -> bool:  # type: ignore[override]
        return self.config.intervals

    @property
    def required_history(self) -> int:
        return self.config.lags

    # --- training ---------------------------------------------------------------------------

    def _builder(self) -> FeatureBuilder:
        cfg = self.config
        return FeatureBuilder(target=cfg.target, lags=cfg.lags, **cfg.feature_options())

    def fit(self, cube: Cube, *, warm_start: KerasForecaster | None = None) -> KerasForecaster:
        """Train on the eligible rows of the training cube; calibrate on held-out rows.

        The rows are split by time (:func:`training_blocks`); the final networks are trained on
        ``blocks_.final_training`` only, and the interval factors and held-out metrics come from
        ``blocks_.heldout``, rows no final network was trained on (see the module docstring).

        Parameters
        ----------
        cube : Cube
            The training window; its coverage mask restricts the rows.
        warm_start : KerasForecaster, optional
            A fitted model of the same configuration, features and base (e.g. the previous
            origin's): its networks are the start, kept unless training beats them.

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
        rows, base_losses = self._with_base(cube, rows, blocks)
        starts: list[list[np.ndarray] | None] = [None] * cfg.ensemble
        if warm_start is not None and self._can_start_from(warm_start, rows):
            nets = warm_start.networks_
            starts = [nets[k % len(nets)].get_weights() for k in range(cfg.ensemble)]
        self.warm_started_ = starts[0] is not None
        members = [
            self._train_member(rows, y, blocks, self.seed + k, starts[k])
            for k in range(cfg.ensemble)
        ]
        # inference runs on fresh copies of the trained networks (no optimizer, no traced training
        # graph): exactly the networks load() rebuilds, so saved and loaded models agree bit for bit
        self.networks_ = []
        for weights, _, _ in members:
            net = build_network(rows.X.shape[1], cfg)
            net.set_weights(weights)
            self.networks_.append(net)
        self.best_epoch_ = members[0][2]
        self.history_ = members[0][1]
        heldout = rows.subset(blocks.heldout)
        mean, raw_lower, raw_upper = self._network_outputs(heldout)
        self.calibration_ = NO_CALIBRATION
        if cfg.intervals and blocks.heldout.any():
            self.calibration_ = fit_calibration(
                heldout.y, mean, raw_lower, raw_upper, cfg.interval_level
            )
        metrics = heldout_metrics(
            cfg,
            blocks,
            members,
            heldout,
            (mean, raw_lower, raw_upper),
            self.calibration_,
            base_model=self.base_model_,
            base_losses=base_losses,
            warm_started=self.warm_started_,
        )
        self.fit_seconds_ = time.perf_counter() - start
        self.metadata_ = fit_metadata(
            cube,
            rows,
            blocks,
            cfg,
            seed=self.seed,
            base_model=self.base_model_,
            metrics=metrics,
            calibration=self.calibration_,
            fit_seconds=self.fit_seconds_,
        )
        return self

    def _with_base(
        self, cube: Cube, rows: FeatureMatrix, blocks: TrainingBlocks
    ) -> tuple[FeatureMatrix, dict[str, float]]:
        """The correction model's base (``base_model_``, None without ``config.correction``):
        the candidate with the lowest point loss on the validation block (else on the final
        training rows). Returns the rows with the base's inputs, and each candidate's loss."""
        cfg = self.config
        self.base_model_ = None
        base_losses: dict[str, float] = {}
        if cfg.correction:
            candidates = candidate_bases(cube, rows, cfg.base_models, cfg.target)
            chosen_on = blocks.validation if blocks.validation.any() else blocks.final_training
            base_losses = {
                name: point_loss(rows.y[chosen_on], values[chosen_on], cfg.point_loss)
                for name, values in candidates.items()
            }
            self.base_model_ = min(base_losses, key=base_losses.__getitem__)
            rows = with_bases(rows, candidates, self.base_model_, self.builder_.target_scale_)
        return rows, base_losses

    def _can_start_from(self, previous: KerasForecaster, rows: FeatureMatrix) -> bool:
        """``previous`` is fitted with the same configuration, features and base."""
        return (
            hasattr(previous, "networks_")
            and previous.config == self.config
            and list(previous.metadata_.get("features", [])) == list(rows.names)
            and getattr(previous, "base_model_", None) == self.base_model_
        )

    def _train_member(
        self,
        rows: FeatureMatrix,
        y: np.ndarray,
        blocks: TrainingBlocks,
        seed: int,
        start_weights: list[np.ndarray] | None = None,
    ) -> tuple[list[np.ndarray], dict[str, list[float]], int]:
        """Train one network; returns its weights, loss history and best epoch.

        Early stopping trains on ``blocks.fit`` and monitors ``blocks.validation``; with
        ``blocks.refit`` (or without a validation block) the network is then retrained from the
        same seed and start on ``blocks.final_training`` (never the calibration block). The
        correction model and a warm start keep their start (best epoch 0) unless beaten.
        """
        cfg = self.config
        keras = import_keras()
        seed_everything(seed, deterministic=cfg.deterministic)
        network = build_network(rows.X.shape[1], cfg)
        if start_weights is not None:
            network.set_weights(start_weights)
        initial = network.get_weights()
        guarded = cfg.correction or start_weights is not None
        history: dict[str, list[float]] = {}
        best_epoch = cfg.max_epochs
        epochs_seen = _epoch_reporter(keras, cfg.max_epochs)
        if blocks.validation.any():
            validation = (
                network_inputs(rows, blocks.validation),
                network_targets(y[blocks.validation], cfg.intervals),
            )
            start_loss = np.inf
            if guarded:  # the starting network's validation loss, as Keras computes it
                start = network(validation[0], training=False)["mean"]
                start_loss = keras_point_loss(y[blocks.validation], start, cfg.point_loss)
            stop = keras.callbacks.EarlyStopping(
                monitor=monitored_loss(cfg),
                patience=cfg.patience,
                restore_best_weights=True,
                mode="min",
            )
            fitted = network.fit(
                network_inputs(rows, blocks.fit),
                network_targets(y[blocks.fit], cfg.intervals),
                validation_data=validation,
                epochs=cfg.max_epochs,
                batch_size=cfg.batch_size,
                callbacks=[stop, epochs_seen],
                shuffle=True,
                verbose=0,
            )
            history = {k: [float(v) for v in vals] for k, vals in fitted.history.items()}
            losses = history[monitored_loss(cfg)]
            best_epoch = int(np.argmin(losses)) + 1
            if guarded and min(losses) >= start_loss:
                network.set_weights(initial)
                best_epoch = 0
        if (blocks.refit or not blocks.validation.any()) and best_epoch > 0:
            final_mask = blocks.final_training
            seed_everything(seed, deterministic=cfg.deterministic)
            network = build_network(rows.X.shape[1], cfg)
            if start_weights is not None:
                network.set_weights(start_weights)
            network.fit(
                network_inputs(rows, final_mask),
                network_targets(y[final_mask], cfg.intervals),
                epochs=best_epoch,
                batch_size=cfg.batch_size,
                callbacks=[_epoch_reporter(keras, best_epoch)],
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
        inputs = network_inputs(rows)
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
            calibration = getattr(self, "calibration_", NO_CALIBRATION)
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
        if self.config.correction:
            candidates = candidate_bases(cube, rows, self.config.base_models, self.config.target)
            rows = with_bases(rows, candidates, self.base_model_, self.builder_.target_scale_)
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
            Destination folder: replaced whole if it exists and geo-crime made it (it carries
            :data:`geo_crime.core.io_utils.OWNED_MARKER`) or it is empty; any other folder is
            refused.
        extra : dict, optional
            More metadata to store (e.g. backtest metrics, tuning results).

        Returns
        -------
        pathlib.Path
            The folder, holding ``metadata.json``, ``features.json`` and ``weights.npz``.

        Raises
        ------
        geo_crime.core.errors.ConfigError
            ``path`` is a folder geo-crime did not make, and not empty.
        """
        self._check_fitted()
        final = Path(path)
        meta = dict(self.metadata_)
        if extra:
            meta.update(extra)
        with staged_folder(final) as tmp:
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
        try:
            config = ForecastConfig.from_dict(meta["config"])
            builder = FeatureBuilder.from_dict(state)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{folder}: incomplete model metadata ({exc!r})") from None
        model = cls(config, seed=int(meta.get("seed", 0)))
        model.builder_ = builder
        model.base_model_ = meta.get("base_model")
        model.networks_ = []
        for k in sorted(members):
            network = build_network(len(model.builder_.names_) + len(config.base_models), config)
            try:
                network.set_weights(members[k])
            except ValueError as exc:
                raise ModelError(f"{folder}: weights do not match the network ({exc})") from None
            model.networks_.append(network)
        model.metadata_ = meta
        model.calibration_ = meta.get("interval_calibration") or NO_CALIBRATION
        model.best_epoch_ = meta.get("metrics", {}).get("best_epoch")
        model.history_ = {}
        return model


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
    """Load a model saved by :meth:`KerasForecaster.save` (see :meth:`KerasForecaster.load`).

    Raises :class:`~geo_crime.core.errors.ModelError` when the folder is missing, unreadable or of
    another format.
    """
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


def _epoch_reporter(keras: ModuleType, max_epochs: int) -> Any:
    """A Keras callback reporting each finished epoch to :mod:`geo_crime.core.progress`."""

    class EpochReporter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            progress.epoch(epoch + 1, max_epochs)

    return EpochReporter()
