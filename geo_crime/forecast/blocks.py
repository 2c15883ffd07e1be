"""Chronological blocks of the Keras forecaster's training rows: fit, validation, calibration.

The training rows of a cube (one per eligible unit and origin) are split by time into blocks of
whole periods, never shuffled rows, from the latest origins backwards (:func:`training_blocks`):
early stopping trains on the fit block and monitors the validation block, the final networks are
trained on :attr:`TrainingBlocks.final_training`, and :attr:`TrainingBlocks.heldout` (rows no final
network was trained on) calibrates the intervals. The cases and fallbacks are described in
:mod:`geo_crime.forecast.model`, which re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo_crime.forecast.network import ForecastConfig
from geo_crime.forecast.panel import chronological_split

__all__ = ["TrainingBlocks", "training_blocks"]


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
        validation blocks of :func:`~geo_crime.forecast.panel.chronological_split` (see the
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
