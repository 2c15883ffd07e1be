"""Forecasters by name: the registry behind ``models=["keras", "ma4", ...]``.

Every name a backtest, the command line or a configuration file may use maps to a forecaster
class (and, for some names, default settings):

``keras``
    :class:`~geo_crime.forecast.model.KerasForecaster`
``gbm``
    :class:`~geo_crime.forecast.baselines.GradientBoosting`
``last``, ``last_year``, ``hist_mean``
    :class:`~geo_crime.forecast.baselines.LastPeriod`,
    :class:`~geo_crime.forecast.baselines.SeasonalNaive`,
    :class:`~geo_crime.forecast.baselines.HistoricalMean`
``ma<window>``
    A parametrised name: ``ma4``, ``ma8``, ``ma13`` ... are
    :class:`~geo_crime.forecast.baselines.MovingAverage` with ``window`` 4, 8, 13 ...
``spatial_smooth``
    :class:`~geo_crime.forecast.baselines.SpatialSmoothing`
``study_conv1d``
    :class:`~geo_crime.forecast.original.StudyConv1D` in its pooled layout (one window per unit).
``kde``, ``prospective``
    The field's hot-spot forecasts: :class:`~geo_crime.forecast.field.SpaceTimeKDE` (space-time
    kernel density, Chainey et al. 2008) and :class:`~geo_crime.forecast.field.ProspectiveHotSpot`
    (Bowers, Johnson & Pease 2004).
``sepp``
    :class:`~geo_crime.forecast.sepp.SelfExcitingPointProcess`, the grid self-exciting point
    process of the LAPD field trial (Mohler et al. 2015).

:func:`make_forecaster` builds one; :func:`register` adds a class (or a parametrised family).
Unknown names raise :class:`~geo_crime.core.errors.ConfigError` listing the known ones.

Examples
--------
>>> make_forecaster("ma8")
MovingAverage(window=8, target='severity')
>>> make_forecaster("gbm", max_iter=50).max_iter
50
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from geo_crime.core.errors import ConfigError
from geo_crime.forecast.baselines import (
    Forecaster,
    GradientBoosting,
    HistoricalMean,
    LastPeriod,
    MovingAverage,
    SeasonalNaive,
    SpatialSmoothing,
)
from geo_crime.forecast.deep import GroupNet
from geo_crime.forecast.field import ProspectiveHotSpot, SpaceTimeKDE
from geo_crime.forecast.model import KerasForecaster
from geo_crime.forecast.original import StudyConv1D
from geo_crime.forecast.sepp import SelfExcitingPointProcess

__all__ = ["forecaster_class", "known_names", "make_forecaster", "register"]


@dataclass(frozen=True)
class _Entry:
    """One registered name: the class, its default settings and, if parametrised, the setting."""

    cls: type[Forecaster]
    defaults: dict[str, Any] = field(default_factory=dict)
    param: str | None = None


#: Fixed names and parametrised prefixes, in registration order.
_REGISTRY: dict[str, _Entry] = {}


def register(
    name: str, cls: type[Forecaster], *, param: str | None = None, **defaults: Any
) -> type[Forecaster]:
    """Make a forecaster class available by name.

    Parameters
    ----------
    name : str
        The name (``"gbm"``) or, with ``param``, the prefix of a parametrised family (``"ma"``:
        ``ma4``, ``ma8`` ...).
    cls : type
        A :class:`~geo_crime.forecast.baselines.Forecaster` subclass.
    param : str, optional
        The ``__init__`` parameter set from the whole number after the prefix.
    **defaults
        Settings the name implies (e.g. ``layout="pooled"``); explicit parameters of
        :func:`make_forecaster` override them.

    Returns
    -------
    type
        ``cls``.

    Raises
    ------
    geo_crime.core.errors.ConfigError
        When the name is taken, or ``param`` or a default is not a parameter of ``cls``.
    """
    if not (isinstance(cls, type) and issubclass(cls, Forecaster)):
        raise ConfigError(f"{cls!r} is not a Forecaster subclass")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ConfigError(f"forecaster name {name!r}: use lower-case letters, digits and _")
    if name in _REGISTRY:
        raise ConfigError(f"a forecaster is already registered as {name!r}")
    _check_params(name, cls, [*defaults, *([param] if param else [])])
    _REGISTRY[name] = _Entry(cls=cls, defaults=dict(defaults), param=param)
    return cls


def known_names() -> list[str]:
    """The registered names, parametrised families as ``prefix<param>`` (``ma<window>``).

    Returns
    -------
    list of str
    """
    return [f"{name}<{entry.param}>" if entry.param else name for name, entry in _REGISTRY.items()]


def forecaster_class(name: str) -> tuple[type[Forecaster], dict[str, Any]]:
    """The class a name stands for, and the settings the name implies.

    Parameters
    ----------
    name : str
        A registered name (``"keras"``) or a member of a parametrised family (``"ma13"``).

    Returns
    -------
    (type, dict)
        The class and its implied settings (``{"window": 13}`` for ``ma13``).

    Raises
    ------
    geo_crime.core.errors.ConfigError
        For an unknown name; the message lists the known ones.
    """
    entry = _REGISTRY.get(name)
    if entry is not None and entry.param is None:
        return entry.cls, dict(entry.defaults)
    for prefix, entry in _REGISTRY.items():
        if entry.param is None:
            continue
        match = re.fullmatch(re.escape(prefix) + r"(\d+)", str(name))
        if match:
            return entry.cls, {**entry.defaults, entry.param: int(match.group(1))}
    raise ConfigError(f"unknown model {name!r}; known: {', '.join(known_names())}")


def make_forecaster(
    name: str, /, *, context: Mapping[str, Any] | None = None, **params: Any
) -> Forecaster:
    """An unfitted forecaster by name.

    Parameters
    ----------
    name : str
        See :func:`known_names` (``keras``, ``gbm``, ``last``, ``ma<window>`` ...).
    context : mapping, optional
        Settings offered to every class (e.g. ``seed``, ``target``, ``config``): each is passed
        only when the class's ``__init__`` takes it, so one context serves every name.
    **params
        Settings of this forecaster; each must be an ``__init__`` parameter of its class. They
        override the context and the settings the name implies.

    Returns
    -------
    Forecaster

    Raises
    ------
    geo_crime.core.errors.ConfigError
        For an unknown name or a parameter the class does not take.
    """
    cls, implied = forecaster_class(name)
    _check_params(name, cls, params)
    accepted = set(cls.param_names())
    offered = {k: v for k, v in (context or {}).items() if k in accepted}
    return cls(**{**offered, **implied, **params})


def _check_params(name: str, cls: type[Forecaster], params: Any) -> None:
    """Raise ConfigError for any name in ``params`` that ``cls.__init__`` does not take."""
    accepted = cls.param_names()
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"{name!r} ({cls.__name__}) takes no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters: {', '.join(accepted)}"
        )


register("keras", KerasForecaster)
register("gbm", GradientBoosting)
register("last", LastPeriod)
register("ma", MovingAverage, param="window")
register("last_year", SeasonalNaive)
register("hist_mean", HistoricalMean)
register("spatial_smooth", SpatialSmoothing)
register("study_conv1d", StudyConv1D, layout="pooled")
register("kde", SpaceTimeKDE)
register("prospective", ProspectiveHotSpot)
register("sepp", SelfExcitingPointProcess)
register("groupnet", GroupNet)
