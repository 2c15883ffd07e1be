"""Hyperparameter tuning of the Keras forecaster under a time budget, before the test window.

:func:`tune` runs a keras-tuner random search over the network and feature settings
(:data:`DEFAULT_SPACE`: history length, width, depth, dropout, L2, learning rate, batch size).
Each trial is trained on the early part of the cube it is given and scored on **validation blocks
that come later in time** (whole periods, never shuffled rows); the objective is the mean Poisson
loss over the blocks, with early stopping inside each fit. The caller passes only the periods
before the test window: :func:`geo_crime.forecast.evaluate.evaluate` with ``tune=...`` hands it
the periods up to the first forecast origin, so the test periods never influence the choice.

Budget. The search stops after ``max_trials`` trials or when ``max_seconds`` of wall-clock time
have passed, whichever comes first: no new trial starts after the deadline and the running one
stops at the end of its current epoch. The chosen configuration is returned as a
:class:`~geo_crime.forecast.network.ForecastConfig`; :func:`tune_and_train` trains the final model
with it and stores the tuning summary in the model's metadata (saved with the model).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from geo_crime.core.errors import DataError, ModelError
from geo_crime.cube.panel import Cube
from geo_crime.forecast.features import FeatureBuilder, FeatureMatrix
from geo_crime.forecast.model import KerasForecaster
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

__all__ = ["DEFAULT_SPACE", "TuningResult", "search_space", "tune", "tune_and_train"]

#: Candidate values of each tuned setting (``lags`` defaults to half and all of ``config.lags``).
DEFAULT_SPACE: dict[str, list[Any]] = {
    "units": [16, 32, 64, 128],
    "layers": [1, 2, 3],
    "dropout": [0.0, 0.1, 0.2],
    "l2": [0.0, 1e-5, 1e-4],
    "learning_rate": [3e-4, 1e-3, 3e-3],
    "batch_size": [256, 512, 1024],
}


def search_space(
    config: ForecastConfig = DEFAULT_CONFIG, space: dict[str, list[Any]] | None = None
) -> dict[str, list[Any]]:
    """The search space: ``space`` (default :data:`DEFAULT_SPACE`) plus ``lags`` choices.

    Without an explicit ``lags`` entry the choices are ``config.lags // 2`` (at least 2) and
    ``config.lags``, so tuning never asks for more history than the configuration.

    Parameters
    ----------
    config : ForecastConfig, default DEFAULT_CONFIG
        The configuration tuned.
    space : dict, optional
        Candidate values per setting.

    Returns
    -------
    dict
        ``{setting: candidates}``.

    Raises
    ------
    geo_crime.core.errors.ModelError
        For a setting that cannot be tuned.
    """
    out = {k: list(v) for k, v in (space or DEFAULT_SPACE).items()}
    if "lags" not in out:
        out["lags"] = sorted({max(2, config.lags // 2), config.lags})
    unknown = set(out) - set(config.hyperparameters())
    if unknown:
        raise ModelError(
            f"cannot tune {sorted(unknown)}; tunable: {list(config.hyperparameters())}"
        )
    return out


@dataclass
class TuningResult:
    """Outcome of a search.

    Attributes
    ----------
    best_config : ForecastConfig
        The configuration with the lowest mean validation loss.
    trials : pandas.DataFrame
        One row per trial: its settings, ``val_loss``, ``best_epoch``, ``seconds``, ``status``.
    seconds : float
        Wall-clock time of the search.
    stopped_by : str
        ``"max_trials"`` or ``"time"``.
    validation : dict
        The validation blocks (first target period of each) and the training window.
    """

    best_config: ForecastConfig
    trials: pd.DataFrame
    seconds: float
    stopped_by: str
    validation: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable summary (stored with the model)."""
        return {
            "best_hyperparameters": self.best_config.hyperparameters(),
            "n_trials": int(len(self.trials)),
            "seconds": round(self.seconds, 1),
            "stopped_by": self.stopped_by,
            "validation": self.validation,
            "trials": self.trials.replace({np.nan: None}).to_dict(orient="records"),
        }


def _blocks(origins: np.ndarray, share: float, n_blocks: int) -> list[tuple[int, int]]:
    """``n_blocks`` consecutive validation blocks of origins covering the latest ``share``."""
    distinct = np.unique(origins)
    if len(distinct) < 2:
        raise DataError("tuning needs at least two training periods with complete data")
    n_val = int(np.clip(round(share * len(distinct)), n_blocks, len(distinct) - 1))
    edges = np.linspace(len(distinct) - n_val, len(distinct), n_blocks + 1).round().astype(int)
    return [
        (int(distinct[a]), int(distinct[b - 1])) for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]


def tune(
    cube: Cube,
    *,
    config: ForecastConfig = DEFAULT_CONFIG,
    space: dict[str, list[Any]] | None = None,
    max_trials: int = 10,
    max_seconds: float = 300.0,
    n_blocks: int = 1,
    validation_share: float | None = None,
    seed: int = 0,
    verbose: bool = False,
) -> TuningResult:
    """Random search of the Keras forecaster's hyperparameters on later validation blocks.

    Parameters
    ----------
    cube : Cube
        The periods available for tuning: pass only periods **before** the test window.
    config : ForecastConfig, default DEFAULT_CONFIG
        Fixed settings; the tuned ones are replaced.
    space : dict, optional
        Candidate values per setting (default :data:`DEFAULT_SPACE`, see :func:`search_space`).
    max_trials : int, default 10
        Trial cap.
    max_seconds : float, default 300
        Wall-clock cap of the whole search.
    n_blocks : int, default 1
        Consecutive validation blocks (each trained on everything before it); the objective is
        the mean loss over the blocks.
    validation_share : float, optional
        Share of the training origins in the validation blocks (default
        ``config.validation_share``).
    seed : int, default 0
        Seed of the random search and of every fit.
    verbose : bool, default False
        Print keras-tuner progress.

    Returns
    -------
    TuningResult
    """
    import keras_tuner as kt  # heavy (loads TensorFlow): only a search needs it

    keras = import_keras()
    values = search_space(config, space)
    share = validation_share if validation_share is not None else config.validation_share
    start = time.monotonic()
    deadline = start + float(max_seconds)
    hp = kt.HyperParameters()
    for name, choices in values.items():
        hp.Choice(name, choices)
    rows_cache: dict[int, Any] = {}
    records: list[dict[str, Any]] = []

    def rows_for(lags: int):
        if lags not in rows_cache:
            builder = FeatureBuilder(
                target=config.target, lags=lags, **config.feature_options()
            ).fit(cube)
            rows_cache[lags] = (builder, builder.training_rows(cube))
        return rows_cache[lags]

    class Deadline(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if time.monotonic() > deadline:
                self.model.stop_training = True

    class Oracle(kt.oracles.RandomSearchOracle):
        def populate_space(self, trial_id):
            if time.monotonic() > deadline:
                return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
            return super().populate_space(trial_id)

    class Search(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            t0 = time.monotonic()
            chosen = {k: trial.hyperparameters.get(k) for k in values}
            cfg = config.replace(**chosen)
            builder, rows = rows_for(cfg.lags)
            losses, epochs = _validation_losses(
                keras,
                rows,
                rows.y / builder.target_scale_,
                cfg,
                _blocks(rows.origin, share, n_blocks),
                seed=seed,
                deadline=Deadline,
            )
            loss = float(np.mean(losses))
            records.append(
                {
                    "trial": trial.trial_id,
                    **chosen,
                    "val_loss": loss,
                    "best_epoch": int(np.median(epochs)),
                    "seconds": round(time.monotonic() - t0, 2),
                }
            )
            return {"val_loss": loss}

    _search(kt, Oracle, Search, hp, max_trials=max_trials, seed=seed, verbose=verbose)
    elapsed = time.monotonic() - start
    if not records:
        raise ModelError(
            f"tuning finished no trial within {max_seconds:.0f} s; raise max_seconds or shrink "
            "the search space"
        )
    trials = pd.DataFrame(records).sort_values("val_loss", kind="stable").reset_index(drop=True)
    best = trials.iloc[0]
    best_config = config.replace(**{k: _plain(best[k]) for k in values})
    _, rows = rows_for(best_config.lags)
    blocks = _blocks(rows.origin, share, n_blocks)
    return TuningResult(
        best_config=best_config,
        trials=trials,
        seconds=elapsed,
        stopped_by="time" if len(records) < max_trials else "max_trials",
        validation=_validation_summary(cube, blocks),
    )


def _search(
    kt: Any, oracle: type, tuner: type, hp: Any, *, max_trials: int, seed: int, verbose: bool
) -> None:
    """Run a keras-tuner search (``tuner`` with ``oracle``) in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="geo_crime_tuning_") as folder:
        found = oracle(
            objective=kt.Objective("val_loss", "min"),
            max_trials=max_trials,
            hyperparameters=hp,
            # keras-tuner reads seed=0 as "no seed" (``seed or random.randint(...)``): shift it
            seed=int(seed) + 1,
            allow_new_entries=False,
            tune_new_entries=False,
        )
        search = tuner(oracle=found, directory=folder, project_name="forecast", overwrite=True)
        if not verbose:
            search.oracle.verbose = 0
        search.search(verbose=verbose)


def _validation_losses(
    keras: Any,
    rows: FeatureMatrix,
    y: np.ndarray,
    cfg: ForecastConfig,
    blocks: list[tuple[int, int]],
    *,
    seed: int,
    deadline: type,
) -> tuple[list[float], list[int]]:
    """One trial: for each validation block, a network fitted on the rows before it with early
    stopping on it (and the ``deadline`` callback); the best validation loss and epoch of each
    block."""
    losses, epochs = [], []
    for first, last in blocks:
        fit_mask = rows.origin < first
        val_mask = (rows.origin >= first) & (rows.origin <= last)
        if not fit_mask.any() or not val_mask.any():
            continue
        seed_everything(seed, deterministic=cfg.deterministic)
        net = build_network(rows.X.shape[1], cfg)
        key = monitored_loss(cfg)
        stop = keras.callbacks.EarlyStopping(
            monitor=key,
            patience=cfg.patience,
            restore_best_weights=True,
            mode="min",
        )
        hist = net.fit(
            network_inputs(rows, fit_mask),
            network_targets(y[fit_mask], cfg.intervals),
            validation_data=(
                network_inputs(rows, val_mask),
                network_targets(y[val_mask], cfg.intervals),
            ),
            epochs=cfg.max_epochs,
            batch_size=cfg.batch_size,
            callbacks=[stop, deadline()],
            shuffle=True,
            verbose=0,
        ).history
        losses.append(float(np.min(hist[key])))
        epochs.append(int(np.argmin(hist[key])) + 1)
    if not losses:
        raise DataError("no validation block has both fitting and validation rows")
    return losses, epochs


def _validation_summary(cube: Cube, blocks: list[tuple[int, int]]) -> dict[str, Any]:
    """The training window and the validation blocks (first and last target period of each)."""
    return {
        "training_periods": [str(cube.periods[0].date()), str(cube.periods[-1].date())],
        "validation_blocks": [
            [str(cube.periods[a + 1].date()), str(cube.periods[b + 1].date())] for a, b in blocks
        ],
    }


def _plain(value: Any) -> Any:
    """NumPy scalars to Python scalars (for the frozen config and JSON)."""
    return value.item() if hasattr(value, "item") else value


def tune_and_train(
    cube: Cube,
    *,
    config: ForecastConfig = DEFAULT_CONFIG,
    seed: int = 0,
    **tune_options: Any,
) -> KerasForecaster:
    """Tune on ``cube`` (see :func:`tune`), then train the final model on all of it.

    The tuning summary is stored in ``model.metadata_["tuning"]`` and written by
    :meth:`~geo_crime.forecast.model.KerasForecaster.save`.

    Parameters
    ----------
    cube : Cube
        The training panel.
    config : ForecastConfig, default DEFAULT_CONFIG
        Fixed settings; the tuned ones are replaced.
    seed : int, default 0
        Seed of the search and of the final fit.
    **tune_options
        Further arguments of :func:`tune` (``space``, ``max_trials``, ``max_seconds`` ...).

    Returns
    -------
    KerasForecaster
        Fitted with the best configuration.
    """
    result = tune(cube, config=config, seed=seed, **tune_options)
    model = KerasForecaster(result.best_config, seed=seed).fit(cube)
    model.metadata_["tuning"] = result.summary()
    return model
