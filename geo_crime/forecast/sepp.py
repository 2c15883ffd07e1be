"""Self-exciting point process on the units: the grid model of the LAPD field trial.

Mohler, Short, Malinowski, Johnson, Tita, Bertozzi & Brantingham (2015), "Randomized controlled
field trials of predictive policing", *Journal of the American Statistical Association* 110,
fit in Los Angeles a Hawkes process on 150 m grid cells: each cell has its own background rate,
and every event raises the rate of its own cell for a while (repeat and near-repeat
victimisation). On a cube's periods the intensity of unit ``c`` in period ``t`` is

.. math:: \\lambda_c(t) = \\mu_c + \\theta \\sum_{s<t} x_c(s)\\, g(t-s)
          \\; [+\\; \\theta_n \\sum_j W_{cj} \\sum_{s<t} x_j(s)\\, g(t-s)]

with ``x`` the target (severity by default), ``g(k) = e^{-\\omega(k-1)} - e^{-\\omega k}`` the
field trial's exponential kernel ``\\omega e^{-\\omega u}`` integrated over the ``k``-th period
after the parent's (so ``g`` sums to one and ``θ`` is the branching ratio: the expected
offspring of one event), and, with ``neighbours=True``, a term spreading the same excitation to
the neighbouring units (``W``: row-normalised, units within ``neighbour_radius`` cell widths).

Fitting (:func:`fit_sepp`) is expectation-maximisation over the branching structure (Mohler et
al. 2011; Lewis & Mohler 2011): the E-step splits each cell's value between the background and
each earlier period, the M-step sets ``μ_c`` to the background share per complete period, and
``θ``, ``θ_n`` and ``ω`` to the exact maximisers of the expected complete-data Poisson
log-likelihood (``ω`` by a one-dimensional bounded search of the profile; ``θ`` divides the
offspring by the kernel mass that falls inside the observed complete cells, the edge correction
of Lewis & Mohler). Counts and severity sums are both fit by the Poisson (quasi-)likelihood;
``θ`` and ``ω`` do not depend on the scale of ``x``, and ``μ`` is in the target's units.

Coverage. Incomplete cells are no parents (their values enter no sum) and no children (they are
not in the likelihood); ``μ_c`` is averaged over the unit's complete periods. A unit with no
complete period in the training cube, or none in the history it is asked to forecast from, gets
NaN.

The forecast of period ``T`` is its expected value ``λ_c(T)`` given periods ``< T``: ``μ_c`` plus
the excitation the cube's history carries into the next period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar

from geo_crime.core.errors import ModelError
from geo_crime.cube.panel import Cube
from geo_crime.forecast.field import (
    CentroidForecaster,
    distance_weights,
    unit_distances,
    unit_spacing,
)
from geo_crime.forecast.panel import target_values

__all__ = ["SelfExcitingPointProcess", "SeppFit", "excitation", "fit_sepp", "neighbour_matrix"]

#: Search range of the decay rate ``ω`` (per period).
OMEGA_BOUNDS = (1e-3, 30.0)


@dataclass(frozen=True)
class SeppFit:
    """Parameters of a fitted self-exciting process.

    Attributes
    ----------
    mu : numpy.ndarray
        ``(n_units,)`` background per period (NaN: no complete period).
    theta, theta_neighbours : float
        Branching ratios of the unit's own and its neighbours' events.
    omega : float
        Decay rate per period (mean delay ``1 / (1 - e^{-ω})`` periods).
    self_exciting_share : float
        Share of the observed total the E-step attributes to triggering.
    log_likelihood : float
        Poisson (quasi-)log-likelihood over the complete cells, without the ``log x!`` term.
    n_iter : int
        EM iterations run.
    converged : bool
        Whether the parameters moved less than the tolerance in the last iteration.
    """

    mu: np.ndarray
    theta: float
    theta_neighbours: float
    omega: float
    self_exciting_share: float
    log_likelihood: float
    n_iter: int
    converged: bool


def excitation(values: np.ndarray, omega: float) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's excitation from earlier periods, and the same weighted by delay minus one.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n, T)`` parent values (zero where incomplete).
    omega : float
        Decay rate per period.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``phi[c, t] = sum_{s<t} x[c, s] g(t-s)`` and ``sum_{s<t} x[c, s] (t-s-1) g(t-s)``, each
        ``(n, T)``, by one first-order recursion over the periods (``O(n T)``).
    """
    a = float(np.exp(-omega))
    x = np.asarray(values, dtype=float)
    running = np.empty_like(x)
    delayed = np.empty_like(x)
    s = np.zeros(x.shape[0])  # sum_s x(s) a^(t-1-s)
    d = np.zeros(x.shape[0])  # sum_s x(s) (t-1-s) a^(t-1-s)
    for t in range(x.shape[1]):
        running[:, t] = s
        delayed[:, t] = d
        d = a * (d + s)
        s = a * s + x[:, t]
    return (1.0 - a) * running, (1.0 - a) * delayed


def lag_totals(parents: np.ndarray, complete: np.ndarray) -> np.ndarray:
    """``C[k] = sum_c sum_s x[c, s] complete[c, s + k]``: parent mass with a complete cell k later.

    Parameters
    ----------
    parents : numpy.ndarray
        ``(n, T)`` parent values.
    complete : numpy.ndarray
        ``(n, T)`` coverage mask.

    Returns
    -------
    numpy.ndarray
        ``(T,)`` (``C[0]`` unused); the compensator of the triggered part is
        ``sum_k g(k) C[k]``.
    """
    pairs = parents.T @ complete.astype(float)
    return np.array([np.trace(pairs, offset=k) for k in range(pairs.shape[0])])


def _kernel_mass(totals: np.ndarray, omega: float) -> float:
    """``sum_k g(k) C[k]`` for ``k >= 1``."""
    a = np.exp(-omega)
    k = np.arange(1, len(totals))
    return float(((1.0 - a) * a ** (k - 1) * totals[1:]).sum())


def neighbour_matrix(xy: np.ndarray, radius: float) -> sp.csr_matrix:
    """Row-normalised weights of the other units within ``radius`` metres.

    Parameters
    ----------
    xy : numpy.ndarray
        ``(n, 2)`` centroids in metres.
    radius : float
        Largest centroid distance of a neighbour.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n, n)``, zero diagonal; a unit without neighbours has an empty row.
    """
    others = distance_weights(unit_distances(xy, radius), radius, np.ones_like)
    others.setdiag(0.0)
    others.eliminate_zeros()
    degree = np.asarray(others.sum(axis=1)).ravel()
    scale = sp.diags(np.where(degree > 0, 1.0 / np.maximum(degree, 1.0), 0.0))
    return sp.csr_matrix(scale @ others)


@dataclass
class _Panel:
    """The arrays one EM step reads (complete-masked values, their lag totals, neighbours)."""

    x: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    periods: np.ndarray
    has: np.ndarray
    totals: np.ndarray
    neighbours: sp.spmatrix | None
    totals_nb: np.ndarray | None


def _em_step(panel: _Panel, params: np.ndarray) -> tuple[np.ndarray, float, float]:
    """One EM step from ``params = (mu..., theta, theta_nb, omega)``.

    Returns the next parameters, the log-likelihood at ``params`` and the share of the total the
    E-step gives to triggering. Only the cells with a positive value enter the E-step.
    """
    rows, cols, spread = panel.rows, panel.cols, panel.neighbours is not None
    mu, theta, theta_nb, omega = params[:-3], params[-3], params[-2], params[-1]
    phi, phi_lag = excitation(panel.x, omega)
    x = panel.x[rows, cols]
    own_e, lag_e = phi[rows, cols], phi_lag[rows, cols]
    lam = mu[rows] + theta * own_e
    if spread:
        near_e = (panel.neighbours @ phi)[rows, cols]
        near_lag_e = (panel.neighbours @ phi_lag)[rows, cols]
        lam = lam + theta_nb * near_e
    lam = np.maximum(lam, 1e-300)
    compensator = float((mu * panel.periods).sum()) + theta * _kernel_mass(panel.totals, omega)
    if spread:
        compensator += theta_nb * _kernel_mass(panel.totals_nb, omega)
    loglik = float((x * np.log(lam)).sum()) - compensator
    ratio = x / lam
    per_unit = np.bincount(rows, weights=ratio, minlength=len(mu))
    new_mu = np.where(panel.has, mu * per_unit / np.maximum(panel.periods, 1), 0.0)
    own = theta * float(ratio @ own_e)
    lagged = theta * float(ratio @ lag_e)
    near = theta_nb * float(ratio @ near_e) if spread else 0.0
    if spread:
        lagged += theta_nb * float(ratio @ near_lag_e)
    offspring = own + near
    new = np.concatenate([new_mu, [0.0, 0.0, omega]])
    if offspring > 0:

        def profile(w: float) -> float:
            value = own * np.log(_kernel_mass(panel.totals, w)) if own > 0 else 0.0
            if near > 0:
                value += near * np.log(_kernel_mass(panel.totals_nb, w))
            return float(value - offspring * np.log1p(-np.exp(-w)) + lagged * w)

        w = float(minimize_scalar(profile, bounds=OMEGA_BOUNDS, method="bounded").x)
        new[-3] = own / _kernel_mass(panel.totals, w) if own > 0 else 0.0
        new[-2] = near / _kernel_mass(panel.totals_nb, w) if near > 0 else 0.0
        new[-1] = w
    return new, loglik, offspring / float(x.sum())


def _feasible(params: np.ndarray) -> np.ndarray:
    """Parameters clipped to their domain (non-negative rates, ``ω`` within its bounds)."""
    out = np.maximum(params, 0.0)
    out[-1] = np.clip(out[-1], *OMEGA_BOUNDS)
    return out


def _moved(old: np.ndarray, new: np.ndarray, has: np.ndarray) -> float:
    """Largest change: ``θ``, ``θ_n`` absolute, ``μ`` relative to its mean, and ``ω`` relative
    times the branching ratio (the decay does not matter when nothing triggers)."""
    scale = max(float(new[:-3][has].mean()) if has.any() else 0.0, 1e-12)
    return max(
        abs(new[-3] - old[-3]),
        abs(new[-2] - old[-2]),
        abs(new[-1] - old[-1]) / old[-1] * min(1.0, new[-3] + new[-2]),
        float(np.abs(new[:-3] - old[:-3]).max(initial=0.0)) / scale,
    )


def fit_sepp(
    values: np.ndarray,
    complete: np.ndarray,
    neighbours: sp.spmatrix | None = None,
    *,
    max_iter: int = 500,
    tol: float = 1e-6,
) -> SeppFit:
    """Fit background, branching ratios and decay by expectation-maximisation.

    The EM map is accelerated by SQUAREM (Varadhan & Roland 2008, *Scandinavian Journal of
    Statistics* 35): two EM steps give a direction, the extrapolated point is stabilised by one
    more step and kept only when its likelihood is at least that of the point the iteration
    started from (else the two plain EM steps are taken), so the likelihood never falls and the
    fixed point is EM's.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n, T)`` non-negative values (counts or severity sums).
    complete : numpy.ndarray
        ``(n, T)`` coverage mask; incomplete cells are neither parents nor children.
    neighbours : scipy.sparse matrix, optional
        ``(n, n)`` neighbour weights (:func:`neighbour_matrix`); ``None``: no spatial term.
    max_iter : int, default 500
        Upper bound on accelerated iterations (each runs three EM steps).
    tol : float, default 1e-6
        Stop when ``θ``, ``θ_n``, ``μ`` (relative to its mean) and ``ω`` (relative, times the
        branching ratio) all move less than this in one iteration.

    Returns
    -------
    SeppFit
    """
    complete = np.asarray(complete, dtype=bool)
    x = np.where(complete, np.asarray(values, dtype=float), 0.0)
    if (x < 0).any():
        raise ModelError("a self-exciting process needs non-negative values")
    periods = complete.sum(axis=1)
    has = periods > 0
    spread = neighbours is not None
    rows, cols = np.nonzero(x > 0)
    panel = _Panel(
        x=x,
        rows=rows,
        cols=cols,
        periods=periods,
        has=has,
        totals=lag_totals(x, complete),
        neighbours=neighbours,
        totals_nb=lag_totals(np.asarray(neighbours @ x), complete) if spread else None,
    )
    mu0 = np.where(has, 0.5 * x.sum(axis=1) / np.maximum(periods, 1), 0.0)
    params = np.concatenate([mu0, [0.5, 0.1 if spread else 0.0, 1.0]])
    if len(rows) == 0:
        zero = np.where(has, 0.0, np.nan)
        return SeppFit(zero, 0.0, 0.0, 1.0, 0.0, 0.0, 0, True)
    converged, n_iter, share = False, 0, 0.0
    while not converged and n_iter < max_iter:
        n_iter += 1
        p1, loglik1, _ = _em_step(panel, params)
        p2, _, _ = _em_step(panel, p1)
        r, v = p1 - params, p2 - 2 * p1 + params
        norm_v = float(np.linalg.norm(v))
        alpha = min(-float(np.linalg.norm(r)) / norm_v, -1.0) if norm_v > 0 else -1.0
        jump = _feasible(params - 2 * alpha * r + alpha**2 * v)
        nxt, loglik_jump, share = _em_step(panel, jump)
        if not (np.isfinite(loglik_jump) and loglik_jump >= loglik1):
            nxt, _, share = _em_step(panel, p2)
        converged = _moved(params, nxt, has) < tol
        params = nxt
    _, loglik, share = _em_step(panel, params)
    return SeppFit(
        mu=np.where(has, params[:-3], np.nan),
        theta=float(params[-3]),
        theta_neighbours=float(params[-2]),
        omega=float(params[-1]),
        self_exciting_share=float(share),
        log_likelihood=loglik,
        n_iter=n_iter,
        converged=bool(converged),
    )


class SelfExcitingPointProcess(CentroidForecaster):
    """Self-exciting point process on the units (Mohler et al. 2015), fitted by EM.

    Parameters
    ----------
    neighbours : bool, default False
        Add the neighbour term (units within ``neighbour_radius`` cell widths excite each
        other with a common ratio ``θ_n``); the field trial's model has none.
    neighbour_radius : float, default 1.5
        Neighbour radius in median nearest-neighbour distances (1.5: the first ring of H3 cells).
    max_iter : int, default 500
        Upper bound on EM iterations.
    tol : float, default 1e-6
        Convergence tolerance (see :func:`fit_sepp`).
    target : str, default "severity"
        The measure forecast.

    Notes
    -----
    After :meth:`fit`: ``mu_`` (per unit), ``theta_``, ``theta_neighbours_``, ``omega_``,
    ``self_exciting_share_`` (share of the training total attributed to triggering),
    ``log_likelihood_``, ``n_iter_``, ``converged_`` and ``unit_ids_``; :meth:`summary`
    reports them.
    """

    name = "sepp"

    def __init__(
        self,
        *,
        neighbours: bool = False,
        neighbour_radius: float = 1.5,
        max_iter: int = 500,
        tol: float = 1e-6,
        target: str = "severity",
    ) -> None:
        super().__init__(target=target)
        self.neighbours = bool(neighbours)
        self.neighbour_radius = float(neighbour_radius)
        self.max_iter = int(max_iter)
        self.tol = float(tol)

    def weights_for(self, xy: np.ndarray, setting: Any) -> sp.csr_matrix:
        return neighbour_matrix(xy, float(setting))

    def _neighbours(self, cube: Cube) -> sp.csr_matrix | None:
        if not self.neighbours:
            return None
        radius = self.neighbour_radius * unit_spacing(self.centroids(cube))
        return self.unit_weights(cube, radius)

    def fit(self, cube: Cube) -> SelfExcitingPointProcess:
        """Fit ``μ``, ``θ`` (and ``θ_n``) and ``ω`` on the training cube's complete cells; ``self``.

        The fitted attributes are listed in the class notes (:func:`fit_sepp` does the work).
        """
        y = target_values(cube, self.target)
        found = fit_sepp(
            y, cube.complete, self._neighbours(cube), max_iter=self.max_iter, tol=self.tol
        )
        self.mu_ = found.mu
        self.theta_ = found.theta
        self.theta_neighbours_ = found.theta_neighbours
        self.omega_ = found.omega
        self.self_exciting_share_ = found.self_exciting_share
        self.log_likelihood_ = found.log_likelihood
        self.n_iter_ = found.n_iter
        self.converged_ = found.converged
        self.unit_ids_ = np.asarray(cube.unit_ids).copy()
        return self

    def predict(self, cube: Cube) -> np.ndarray:
        if not hasattr(self, "mu_"):
            raise ModelError("sepp is not fitted: call fit(cube) first")
        if not np.array_equal(np.asarray(cube.unit_ids), self.unit_ids_):
            raise ModelError("sepp forecasts the units it was fitted on; refit on this cube")
        y = target_values(cube, self.target)
        complete = np.asarray(cube.complete, dtype=bool)
        x = np.where(complete, y, 0.0)
        # excitation carried into the period after the last: one more step of the recursion
        nxt = np.concatenate([x, np.zeros((x.shape[0], 1))], axis=1)
        phi = excitation(nxt, self.omega_)[0][:, -1]
        rate = self.mu_ + self.theta_ * phi
        neighbours = self._neighbours(cube)
        if neighbours is not None:
            rate = rate + self.theta_neighbours_ * (neighbours @ phi)
        return np.where(complete.any(axis=1), rate, np.nan)

    def summary(self) -> dict[str, Any]:
        """The fitted parameters in plain numbers.

        Returns
        -------
        dict
            ``mu_mean`` (mean background per period over units with one), ``theta``,
            ``theta_neighbours``, ``omega``, ``mean_delay_periods``, ``self_exciting_share``,
            ``log_likelihood``, ``iterations`` and ``converged``.
        """
        if not hasattr(self, "mu_"):
            raise ModelError("sepp is not fitted: call fit(cube) first")
        return {
            "mu_mean": float(np.nanmean(self.mu_)) if np.isfinite(self.mu_).any() else None,
            "theta": self.theta_,
            "theta_neighbours": self.theta_neighbours_,
            "omega": self.omega_,
            "mean_delay_periods": float(1.0 / (1.0 - np.exp(-self.omega_))),
            "self_exciting_share": self.self_exciting_share_,
            "log_likelihood": self.log_likelihood_,
            "iterations": self.n_iter_,
            "converged": self.converged_,
        }
