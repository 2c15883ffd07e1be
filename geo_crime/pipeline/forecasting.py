"""A unit set's forecasts in a run: the backtest, the dated next-period forecast and, when the
backtest recommends another model for choosing places, that model's ranking.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from geo_crime.core.io_utils import write_table
from geo_crime.forecast import KerasForecaster, evaluate, make_model, predict_next, reproduce_study
from geo_crime.forecast.incidents import expected_incidents, points_per_incident
from geo_crime.forecast.origin import forecast_origin
from geo_crime.forecast.references import is_reference
from geo_crime.publish.privacy import hidden_mask, public_tables, study_groups
from geo_crime.report import study as report_study
from geo_crime.report.forecast import write_forecast_report

if TYPE_CHECKING:
    from geo_crime.cube.panel import Cube
    from geo_crime.pipeline.studies import Run, Study


def forecast_units(
    cube: Cube, label: str, study: Study, run: Run, *, suppressed: pd.Series
) -> tuple[pd.DataFrame, dict, list[Path]]:
    """Backtest and a dated next-period forecast for one cube, as the study's settings ask.

    The full forecast table goes to the study's analysis folder; the public one has no
    prediction for suppressed units. The returned table is the public one.
    """

    settings, seed = study.settings, run.settings.seed
    config = settings.keras_config()
    data_end = study.incidents.tally.last_occurred
    result = evaluate(
        cube,
        models=settings.forecast_models or None,
        n_origins=settings.forecast_origins or None,  # 0: every usable origin
        refit_every=settings.refit_every or None,  # 0: scaled to at most MAX_FITS fits
        config=config,
        tune=settings.tuning(),
        seed=seed,
        name=label,
    )
    if settings.reproduce_study:
        original = reproduce_study(
            cube,
            seed=seed,
            epochs=30 if settings.forecast_config == "fast" else 50,
            ours={"keras": KerasForecaster(config, seed=seed)},
        )
        result.extra[report_study.original_study_title(original.info)] = (
            original.metrics.reset_index()
        )
        result.config["study"] = original.info
    folder = study.public_folder
    files = write_forecast_report(
        result, folder / f"forecast_{label}", k_anonymity=run.settings.k_anonymity
    )
    origin = forecast_origin(cube, data_end=data_end)
    recent = cube.select_periods(slice(0, origin.index + 1))
    # the final model starts from the last backtest network (when the configuration warm-starts)
    warm = result.last_fits.get("keras") if config.warm_start else None
    model = KerasForecaster(config, seed=seed).fit(recent, warm_start=warm)
    table = expected_incidents(predict_next(model, recent), recent)
    table.insert(2, "last_complete_period", str(origin.period.date()))
    table.insert(3, "data_end", str(pd.Timestamp(data_end).date()))
    if "name" in cube.units:  # the unit's place (see units.places.named_units)
        names = cube.units.set_index(cube.units["unit_id"].astype(str))["name"]
        table.insert(1, "place", names.reindex(table["unit_id"].astype(str)).to_numpy())
    # public: every unit at its division's crime mix (its own would give its counts away)
    shown = expected_incidents(
        table, recent, groups=study_groups(cube.units), k_anonymity=run.settings.k_anonymity
    )
    public = public_tables({"forecast": shown}, suppressed)["forecast"]
    files.append(write_table(table, study.analysis_folder / f"next_period_forecast_{label}.csv"))
    files.append(write_table(public, folder / f"forecast_{label}" / "next_period_forecast.csv"))
    ranking = _recommended_ranking(
        result, recent, config, seed, suppressed, folder / f"forecast_{label}"
    )
    if ranking is not None:
        files.append(ranking)
    summary = {
        "origins": [str(o.date()) for o in result.origins],
        "metrics": result.metrics.astype(float).round(4).to_dict(orient="index"),
        "scope": result.scope,
        "judgements": result.judgements(),
        "verdicts": result.verdicts(),
        "keras_point": "median" if config.point_loss == "median" else "mean",
        "notes": result.notes,
        "next_period": str(pd.Timestamp(public["period"].iloc[0]).date()) if len(public) else "",
        "last_complete_period": str(origin.period.date()),
        "complete_share_at_origin": round(origin.share, 4),
        "data_end": str(pd.Timestamp(data_end).date()),
        "why_not_data_end": origin.reason,
        "points_per_incident": round(points_per_incident(recent), 3),
        "ranking_file": ranking.relative_to(run.folder).as_posix() if ranking else "",
    }
    return public, summary, files


def _recommended_ranking(result, recent: Cube, config, seed: int, suppressed, folder: Path):
    """The ranking of the model the backtest recommends to choose where to act (PAI@5%), when
    it is not the published Keras forecast: that model fitted on the same history, its units
    ranked for the next period. Ranks only, no values (a value per unit would be a second
    solvable forecast); suppressed units are listed blank, as in every public table. None when
    Keras is the one to use."""

    judged = (result.judgements().get("metrics") or {}).get("pai_5") or {}
    use = str(judged.get("use") or "")
    if not use or use == "keras" or is_reference(use):
        return None
    model = make_model(use, config=config, seed=seed).fit(recent)
    prediction = np.asarray(model.predict(recent), dtype=float)
    ids = recent.unit_ids.astype(str)
    hidden = hidden_mask(suppressed, ids)
    keep = np.isfinite(prediction) & ~hidden
    rank = pd.Series(pd.NA, index=ids, dtype="Int64")  # blank: suppressed or not forecast
    order = ids[keep][np.argsort(-prediction[keep], kind="stable")]
    rank[order] = np.arange(1, len(order) + 1)
    table = pd.DataFrame({"unit_id": ids})
    if "name" in recent.units:
        table["place"] = recent.units["name"].to_numpy()
    table["suppressed"] = hidden
    table["rank"] = rank.to_numpy()
    top = max(1, int(np.ceil(0.1 * len(order))))
    table["top_10_percent"] = pd.array(
        [pd.NA if pd.isna(r) else bool(r <= top) for r in table["rank"]], dtype="boolean"
    )
    table = table.sort_values("rank", na_position="last", kind="stable")
    return write_table(table, folder / f"next_period_ranking_{use}.csv")
