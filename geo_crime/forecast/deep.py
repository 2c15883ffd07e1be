"""A pooled network for tomorrow's crime by group and cell: field surfaces in, Poisson + rank out.

:class:`GroupNet` (registry name ``groupnet``) forecasts the next period's incidents of one crime
group per unit, on the group cubes of :func:`geo_crime.forecast.groups.group_cubes`. It is built
the way the predictive-policing literature suggests a network can add to the field's methods:

Inputs, per unit and origin (everything from periods up to and including the origin), for
**every** group (so burglary can read yesterday's vehicle crime):

* decayed rates: the unit's incidents per complete period with exponential half-lives
  :attr:`half_lives` (7, 28 and 91 days on a daily panel), and its long-run (expanding) mean;
* neighbour context: the same four rates averaged over the first and the second ring of
  neighbours (units whose centroids lie within 1.5 and 2.5 cell spacings: on H3 cells the
  first and second k-rings), a fixed graph convolution;
* the **KDE surface** of :class:`~geo_crime.forecast.field.SpaceTimeKDE`: its bandwidth and
  half-life are fitted on the training cube (per group), then its edge-corrected rate is
  computed at every training origin with those two numbers;
* the **SEPP excitation** of :class:`~geo_crime.forecast.sepp.SelfExcitingPointProcess`: its
  branching ratio and decay are fitted on the training cube (per group), then
  ``θ Σ_s x(s) g(t+1-s)`` is computed at every origin. The fitted backgrounds ``μ`` are not
  inputs (each is a mean over the whole training window, later days included); the expanding
  mean stands in for them;
* the day of week of the target day (daily panels).

Output: one head per group, ``log μ_g = log b_g + f_g(x)``, a correction of the group's KDE rate
``b_g`` (floored) by a two-layer perceptron shared by all units, so an untrained network starts
at the KDE. Loss (pooled over all units and training origins, one batch = a few whole days):

.. math:: \\frac{1}{N}\\sum (\\mu - y \\log \\mu) \\; + \\; \\lambda \\frac{1}{|D|}
          \\sum_{d, g} \\Big(- \\sum_c p_{dgc} \\log \\mathrm{softmax}_c(\\log \\mu_{dg})\\Big)

the Poisson negative log-likelihood plus a listwise (ListNet) ranking term whose target ``p`` is
each day's and group's distribution of incidents over the units (days with none are skipped):
the first term gets the levels right, the second the order PAI reads. Training stops early on
the last :attr:`validation_periods` training origins' loss, and keeps the best weights.

Settings. The defaults were chosen on West LA 2020-21 burglary and vehicle crime (413 daily
origins), among half-lives (1, 7, 28), (7, 28, 91) and (14, 56, 182), ranking weights 0.05 to 2
and KDE / long-run bases: the network's PAI@1% of burglary ranged from 12.0 to 13.6 across
them, never reaching ``hist_mean``'s 15.5 (``benchmarks/group_panels.py`` has the full table).

One fit serves all groups: :meth:`GroupNet.fit` trains all heads at once and caches the fitted
network by the training data it saw, so the backtest, which fits one model per group cube on
the same periods, trains once per refit. ``predict(cube)`` returns the head of
``cube.meta["group"]``.

Cutoff. Features at origin ``t`` read periods ``<= t``; targets are period ``t + 1``; the last
training target is the training cube's last period. ``predict`` reads the cube it is given only.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from geo_crime.core.errors import ModelError
from geo_crime.cube.panel import Cube
from geo_crime.forecast.field import (
    CentroidForecaster,
    SpaceTimeKDE,
    gaussian_kernel,
    unit_distances,
    unit_spacing,
)
from geo_crime.forecast.network import import_keras, seed_everything
from geo_crime.forecast.sepp import SelfExcitingPointProcess, excitation

__all__ = ["GroupNet", "group_features", "poisson_listwise_loss", "ring_matrices"]

#: Fitted networks kept, keyed by their training data and settings (one per refit and seed).
_CACHE_SIZE = 4
_FITTED: OrderedDict[str, _Fitted] = OrderedDict()


@dataclass
class _Fitted:
    """What one training produced: the network, the scaling and the field parameters."""

    model: Any
    mean: np.ndarray
    std: np.ndarray
    field: dict[str, dict[str, float]]
    groups: tuple[str, ...]
    history: dict[str, Any]


def ring_matrices(xy: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Row-normalised means over the first and second ring of neighbours.

    Parameters
    ----------
    xy : numpy.ndarray
        ``(n, 2)`` unit centroids in metres.

    Returns
    -------
    (scipy.sparse.csr_matrix, scipy.sparse.csr_matrix)
        ``R1`` (centroids within 1.5 spacings, the unit excluded) and ``R2`` (1.5 to 2.5
        spacings), each row summing to one (zero for a unit with no such neighbour).
    """
    spacing = unit_spacing(xy)
    d = unit_distances(xy, 2.5 * spacing).tocsr()
    d.eliminate_zeros()  # the diagonal (distance 0) is not a neighbour

    def ring(lo: float, hi: float) -> sp.csr_matrix:
        m = d.copy()
        m.data = ((m.data > lo) & (m.data <= hi)).astype(float)
        m.eliminate_zeros()
        rows = np.asarray(m.sum(axis=1)).ravel()
        scale = np.divide(1.0, rows, out=np.zeros_like(rows), where=rows > 0)
        return sp.diags(scale) @ m

    return ring(0.0, 1.5 * spacing).tocsr(), ring(1.5 * spacing, 2.5 * spacing).tocsr()


def _decayed(x: np.ndarray, c: np.ndarray, half_life: float, keep: np.ndarray) -> np.ndarray:
    """``Σ_{s<=t} a^{t-s} x(s) / Σ_{s<=t} a^{t-s} complete(s)`` at the periods ``keep``."""
    a = float(np.exp2(-1.0 / half_life)) if np.isfinite(half_life) else 1.0
    s = np.zeros(x.shape[:-1])
    m = np.zeros(x.shape[:-1])
    out = np.empty((*x.shape[:-1], len(keep)))
    want = {int(t): j for j, t in enumerate(keep)}
    for t in range(x.shape[-1]):
        s = a * s + x[..., t]
        m = a * m + c[..., t]
        j = want.get(t)
        if j is not None:
            out[..., j] = np.divide(s, m, out=np.zeros_like(s), where=m > 0)
    return out


def group_features(
    stack: np.ndarray,
    complete: np.ndarray,
    weights: Callable[[Any], sp.spmatrix],
    origins: np.ndarray,
    *,
    half_lives: tuple[float, ...],
    field: dict[str, dict[str, float]],
    groups: tuple[str, ...],
    weekdays: np.ndarray | None = None,
    base_mix: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Features and KDE base rates at the given origins, from periods up to each origin.

    Parameters
    ----------
    stack : numpy.ndarray
        ``(G, n, T)`` counts of each group.
    complete : numpy.ndarray
        ``(n, T)`` coverage mask (incomplete cells are read as unrecorded, never as zero).
    weights : callable
        The units' sparse spatial weights by setting: ``"ring1"`` and ``"ring2"``
        (:func:`ring_matrices`) and a KDE bandwidth in metres (its truncated Gaussian kernel);
        :meth:`GroupNet.unit_weights` caches them per unit set.
    origins : numpy.ndarray
        Period indices ``t``; the features of ``t`` forecast ``t + 1``.
    half_lives : tuple of float
        Half-lives (periods) of the decayed rates; ``inf`` adds none (the long-run mean is
        always included).
    field : dict
        Per group, ``bandwidth`` and ``half_life`` (KDE) and ``theta`` and ``omega`` (SEPP).
    groups : tuple of str
        Group names, in ``stack`` order.
    weekdays : numpy.ndarray, optional
        Day of week (0-6) of each origin's target period, for daily panels.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(len(origins), n, F)`` features and ``(len(origins), n, G)`` KDE base rates.
    """
    c = np.asarray(complete, dtype=float)
    x = np.where(complete[None], np.asarray(stack, dtype=float), 0.0)
    r1, r2 = weights("ring1"), weights("ring2")
    origins = np.asarray(origins, dtype=int)
    blocks: list[np.ndarray] = []  # each (G, n, D)
    for h in (*half_lives, np.inf):
        rate = _decayed(x, np.broadcast_to(c, x.shape), h, origins)
        long_run = rate  # the last pass (h = inf) leaves the expanding mean here
        blocks.append(rate)
        for ring in (r1, r2):
            blocks.append(np.stack([ring @ rate[g] for g in range(len(groups))]))
    base = np.empty((len(groups), len(c), len(origins)))
    for g, name in enumerate(groups):
        p = field[name]
        kernel = weights(float(p["bandwidth"]))
        kde = _decayed(
            (kernel @ x[g]), kernel @ c, p["half_life"], origins
        )  # edge-corrected rate per complete period
        base[g] = kde
        # SEPP excitation carried into the period after each origin
        nxt = np.concatenate([x[g], np.zeros((x.shape[1], 1))], axis=1)
        phi = excitation(nxt, p["omega"])[0][:, origins + 1]
        blocks.append(kde[None])
        blocks.append((p["theta"] * phi)[None])
    base = base_mix * long_run + (1.0 - base_mix) * base
    feats = np.concatenate(
        [b.reshape(-1, b.shape[-2], b.shape[-1]) for b in blocks], axis=0
    )  # (F, n, D)
    feats = np.log1p(np.maximum(feats, 0.0)).transpose(2, 1, 0)
    if weekdays is not None:
        onehot = np.eye(7)[np.asarray(weekdays, dtype=int)]  # (D, 7)
        feats = np.concatenate(
            [feats, np.broadcast_to(onehot[:, None, :], (*feats.shape[:2], 7))], axis=2
        )
    return feats.astype(np.float32), base.transpose(2, 1, 0).astype(np.float32)


def _group_cube(cube: Cube, values: np.ndarray) -> Cube:
    """A cube whose ``count`` is one group's counts (for fitting the field's methods)."""
    v = np.asarray(values)
    return Cube(
        units=cube.units,
        periods=cube.periods,
        freq=cube.freq,
        counts=v,
        severity=v.astype(float),
        harm=v.astype(float),
        complete=cube.complete,
        meta=cube.meta,
    )


def poisson_listwise_loss(n_groups: int, ranking_weight: float) -> Callable[[Any, Any], Any]:
    """The training loss: Poisson negative log-likelihood plus a listwise ranking term.

    Parameters
    ----------
    n_groups : int
        Heads ``G``; ``y_true`` is ``(B, n, G + 1)``: the counts, then the mask of scored
        cells (1 where the target cell is completely recorded and the unit has history).
    ranking_weight : float
        ``λ``.

    Returns
    -------
    callable
        ``loss(y_true, log_rate)`` with ``log_rate`` ``(B, n, G)``: the masked mean of
        ``μ - y log μ`` over cells and groups, plus ``λ`` times the mean over (period, group)
        pairs with at least one incident of ``-Σ_c p_c log softmax_c(log μ)``, ``p`` the
        incidents' shares over the scored cells.
    """
    keras = import_keras()
    ops = keras.ops

    def loss(y_true: Any, log_rate: Any) -> Any:
        counts = y_true[..., :n_groups]
        m = y_true[..., n_groups:]
        log_rate = ops.clip(log_rate, -20.0, 8.0)
        poisson = ops.sum(m * (ops.exp(log_rate) - counts * log_rate)) / ops.maximum(
            ops.sum(m) * n_groups, 1.0
        )
        logits = log_rate - 1e9 * (1.0 - m)
        log_p = logits - ops.logsumexp(logits, axis=1, keepdims=True)
        total = ops.sum(counts * m, axis=1, keepdims=True)
        share = counts * m / ops.maximum(total, 1e-9)
        listwise = -ops.sum(share * ops.where(m > 0, log_p, 0.0), axis=1)  # (B, G)
        has = ops.cast(total[:, 0, :] > 0, "float32")
        ranking = ops.sum(listwise * has) / ops.maximum(ops.sum(has), 1.0)
        return poisson + ranking_weight * ranking

    return loss


class GroupNet(CentroidForecaster):
    """Pooled multi-group network over unit neighbourhoods (see the module notes).

    Parameters
    ----------
    half_lives : tuple of float, default (7, 28, 91)
        Half-lives (periods) of the decayed rates.
    hidden : tuple of int, default (64, 32)
        Widths of the shared hidden layers.
    ranking_weight : float, default 1.0
        ``λ``, the weight of the listwise ranking term.
    train_periods : int, default 150
        Training origins used (the most recent), to bound memory on city-wide panels.
    validation_periods : int, default 21
        The last training origins held out for early stopping.
    epochs, patience : int, default 40, 4
        Maximum epochs and early-stopping patience.
    batch_periods : int, default 4
        Whole periods (all units) per batch.
    learning_rate : float, default 2e-3
        Adam's learning rate.
    seed : int, default 0
        Seed of weights and shuffling.
    target : str, default "count"
        The measure forecast (incidents of the cube's group).
    """

    name = "groupnet"

    def __init__(
        self,
        *,
        half_lives: tuple[float, ...] = (7.0, 28.0, 91.0),
        hidden: tuple[int, ...] = (64, 32),
        ranking_weight: float = 1.0,
        base_mix: float = 0.5,
        train_periods: int = 150,
        validation_periods: int = 21,
        epochs: int = 40,
        patience: int = 4,
        batch_periods: int = 4,
        learning_rate: float = 2e-3,
        seed: int = 0,
        target: str = "count",
    ) -> None:
        super().__init__(target=target)
        if target != "count":
            raise ModelError("groupnet forecasts incidents of a crime group: target='count'")
        self.half_lives = tuple(float(h) for h in half_lives)
        self.hidden = tuple(int(h) for h in hidden)
        self.ranking_weight = float(ranking_weight)
        self.base_mix = float(base_mix)
        self.train_periods = int(train_periods)
        self.validation_periods = int(validation_periods)
        self.epochs = int(epochs)
        self.patience = int(patience)
        self.batch_periods = int(batch_periods)
        self.learning_rate = float(learning_rate)
        self.seed = int(seed)

    @property
    def required_history(self) -> int:
        return 7

    # --- data ---------------------------------------------------------------------------------

    @staticmethod
    def _groups(cube: Cube) -> tuple[str, ...]:
        groups = tuple(cube.meta.get("groups") or ())
        if not groups or cube.meta.get("group") not in groups:
            raise ModelError(
                "groupnet needs a crime-group cube (geo_crime.forecast.groups.group_cubes): "
                "meta['groups'] and meta['group'] are missing"
            )
        missing = [g for g in groups if g not in cube.categories]
        if missing:
            raise ModelError(f"groupnet: the cube holds no counts of group(s) {missing}")
        return groups

    def weights_for(self, xy: np.ndarray, setting: Any) -> sp.csr_matrix:
        if setting in ("ring1", "ring2"):
            return ring_matrices(xy)[0 if setting == "ring1" else 1]
        bandwidth = float(setting)
        return gaussian_kernel(unit_distances(xy, 3.0 * bandwidth), bandwidth)

    def _weekdays(self, cube: Cube, origins: np.ndarray) -> np.ndarray | None:
        if cube.freq != "D":
            return None
        target_days = cube.periods[0] + pd.to_timedelta(np.asarray(origins) + 1, unit="D")
        return np.asarray(target_days.dayofweek)

    def _key(self, cube: Cube, groups: tuple[str, ...]) -> str:
        h = hashlib.sha1(repr((self.get_params(), groups, cube.freq)).encode())
        h.update(np.asarray(cube.unit_ids).astype(str).tobytes())
        h.update(np.asarray(cube.periods.asi8).tobytes())
        h.update(np.ascontiguousarray(cube.complete).tobytes())
        for g in groups:
            h.update(np.ascontiguousarray(cube.categories[g], dtype=np.int64).tobytes())
        return h.hexdigest()

    # --- fit ----------------------------------------------------------------------------------

    def fit(self, cube: Cube) -> GroupNet:
        """Fit the field parameters per group, then the network on all groups; ``self``."""
        groups = self._groups(cube)
        key = self._key(cube, groups)
        if key in _FITTED:
            _FITTED.move_to_end(key)
            self.fitted_ = _FITTED[key]
            return self
        field: dict[str, dict[str, float]] = {}
        for g in groups:
            one = _group_cube(cube, cube.categories[g])
            kde = SpaceTimeKDE(target="count").fit(one)
            sepp = SelfExcitingPointProcess(target="count").fit(one)
            field[g] = {
                "bandwidth": float(kde.bandwidth_),
                "half_life": float(kde.half_life_),
                "theta": float(sepp.theta_),
                "omega": float(sepp.omega_),
            }
        stack = np.stack([cube.categories[g] for g in groups])
        complete = np.asarray(cube.complete, dtype=bool)
        n_periods = cube.shape[1]
        first = max(self.required_history - 1, n_periods - 1 - self.train_periods)
        origins = np.arange(first, n_periods - 1)
        if len(origins) < 8:
            raise ModelError(
                f"groupnet needs at least {8 + self.required_history} periods of training data, "
                f"got {n_periods}"
            )
        feats, base = group_features(
            stack,
            complete,
            lambda setting: self.unit_weights(cube, setting),
            origins,
            half_lives=self.half_lives,
            field=field,
            groups=groups,
            weekdays=self._weekdays(cube, origins),
            base_mix=self.base_mix,
        )
        seen = np.cumsum(complete, axis=1) > 0
        mask = (complete[:, origins + 1] & seen[:, origins]).T.astype(np.float32)  # (D, n)
        y = stack[:, :, origins + 1].transpose(2, 1, 0).astype(np.float32)  # (D, n, G)
        rows = mask.reshape(-1) > 0
        flat = feats.reshape(-1, feats.shape[-1])[rows]
        mean = flat.mean(axis=0)
        std = flat.std(axis=0)
        std = np.where(std > 1e-6, std, 1.0)
        feats = (feats - mean) / std
        held_out = min(self.validation_periods, len(origins) // 4)
        self.fitted_ = self._train(feats, base, y, mask, groups, held_out)
        self.fitted_.mean, self.fitted_.std, self.fitted_.field = mean, std, field
        _FITTED[key] = self.fitted_
        while len(_FITTED) > _CACHE_SIZE:
            _FITTED.popitem(last=False)
        return self

    def _train(self, feats, base, y, mask, groups, held_out: int) -> _Fitted:
        keras = import_keras()
        seed_everything(self.seed)
        n_groups = len(groups)
        x_in = keras.Input((None, feats.shape[-1]), name="features")
        b_in = keras.Input((None, n_groups), name="kde_rate")
        h = x_in
        for width in self.hidden:
            h = keras.layers.Dense(width, activation="relu")(h)
        correction = keras.layers.Dense(n_groups, kernel_initializer="zeros", name="heads")(h)
        log_mu = keras.layers.Add()(
            [
                correction,
                keras.layers.Lambda(lambda b: keras.ops.log(keras.ops.maximum(b, 1e-4)))(b_in),
            ]
        )
        model = keras.Model([x_in, b_in], log_mu, name="groupnet")
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss=poisson_listwise_loss(n_groups, self.ranking_weight),
        )
        target = np.concatenate([y, mask[..., None]], axis=2)
        v = held_out
        stop = keras.callbacks.EarlyStopping(
            patience=self.patience, restore_best_weights=True, monitor="val_loss"
        )
        history = model.fit(
            [feats[:-v], base[:-v]],
            target[:-v],
            validation_data=([feats[-v:], base[-v:]], target[-v:]),
            batch_size=self.batch_periods,
            epochs=self.epochs,
            shuffle=True,
            verbose=0,
            callbacks=[stop],
        )
        losses = history.history.get("val_loss", [])
        return _Fitted(
            model=model,
            mean=np.zeros(0),
            std=np.zeros(0),
            field={},
            groups=groups,
            history={
                "epochs": len(losses),
                "best_val_loss": float(min(losses)) if losses else None,
            },
        )

    # --- predict ------------------------------------------------------------------------------

    def predict_all(self, cube: Cube) -> dict[str, np.ndarray]:
        """Every group's forecast of the period after the cube's last, per unit."""
        if not hasattr(self, "fitted_"):
            raise ModelError("groupnet is not fitted: call fit(cube) first")
        groups = self._groups(cube)
        fitted = self.fitted_
        if groups != fitted.groups:
            raise ModelError(f"groupnet was fitted on groups {fitted.groups}, not {groups}")
        stack = np.stack([cube.categories[g] for g in groups])
        complete = np.asarray(cube.complete, dtype=bool)
        origin = np.array([cube.shape[1] - 1])
        feats, base = group_features(
            stack,
            complete,
            lambda setting: self.unit_weights(cube, setting),
            origin,
            half_lives=self.half_lives,
            field=fitted.field,
            groups=groups,
            weekdays=self._weekdays(cube, origin),
            base_mix=self.base_mix,
        )
        feats = (feats - fitted.mean) / fitted.std
        log_rate = np.asarray(fitted.model([feats, base], training=False))[0]
        rate = np.exp(np.clip(log_rate, -20.0, 8.0))
        known = complete.any(axis=1)
        return {g: np.where(known, rate[:, i], np.nan) for i, g in enumerate(groups)}

    def predict(self, cube: Cube) -> np.ndarray:
        """The forecast of ``cube.meta["group"]`` for the period after the cube's last."""
        return self.predict_all(cube)[cube.meta["group"]]
