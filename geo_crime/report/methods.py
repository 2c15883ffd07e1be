"""The report's methods, each explained once in the technical appendix.

The study and unit-set sections of a report name their numbers briefly and point here; this
module holds the explanations they used to repeat for every unit set.
"""

from __future__ import annotations

from geo_crime.forecast.incidents import severity_scale_sentence
from geo_crime.publish.places import DOMINANT_SHARE, REPEAT_MIN, REPEAT_OFFENCE_SHARE, REPEAT_SHARE
from geo_crime.publish.privacy import suppression_off


def methods_lines(k_anonymity: int) -> list[str]:
    """The ``## Methods`` section (``k_anonymity``: the run's suppression threshold)."""
    return [
        "## Methods",
        "",
        "- **One analysis window per unit set.** Every statistic, ranking, share, rate, map "
        "tooltip and figure of a unit set uses the same periods: those completely recorded for "
        "every unit of the set (see the coverage section). Each unit set's section names its "
        "window. Only the forecasts read each unit's own completely recorded history, and say so.",
        "- **Severity.** " + severity_scale_sentence(None).replace("How to read severity: e", "E"),
        "- **Rate per resident.** The severity of a unit's incidents in the window, divided by "
        "the number of periods and by its residents (per 1,000), then Empirical Bayes smoothed "
        "so that units with few residents do not top the list by chance; units with fewer than "
        "100 residents keep their rate on the map but are left out of the rankings. Residents "
        "are not the people exposed: places with many visitors and few residents (the airport, "
        "downtown, parks) rank high on any residential rate, which is why the maps open on "
        "severity per km².",
        "- **Hot spots.** Global Moran's I and LISA (permutation inference), Getis-Ord Gi* "
        "(hot and cold spots at 90, 95 and 99% confidence) and emerging hot spots (Gi* per "
        "period, with a Mann-Kendall trend) over the window. Gi* z-scores are shown to one "
        "decimal: exact z-scores of many units could be solved for suppressed values.",
        "- **Top places.** The published units with the most severity over the window, with "
        f"their crime mix (types with at least {k_anonymity} incidents). A place is a repeat "
        f"location when one address (LAPD publishes each incident at a point of its hundred "
        f"block) holds at least {REPEAT_SHARE:.0%} of its incidents and at least {REPEAT_MIN}, "
        f"at least {REPEAT_OFFENCE_SHARE:.0%} of them one offence. Otherwise, when one problem "
        f"(vehicle crime, burglary, theft, robbery, assault, vandalism, public order, fraud) "
        f"holds at least {DOMINANT_SHARE:.0%} of the incidents, the response follows the "
        "problem-oriented policing guides for it; a mixed place calls for a problem-oriented "
        "review (scan, analyse, respond, assess) first.",
        "- **Forecast backtest.** Each model forecasts every origin's next period from the "
        "periods before it (expanding window, incomplete periods excluded), on the same scored "
        "units. MAE and RMSE are in severity points per unit and period; Poisson deviance is a "
        "proper score for counts. PAI@k is the share of next-period severity in the top k% of "
        "the scored area chosen by the model, divided by k%. Coverage 80% is the share of "
        "actual values inside the model's 80% interval (0.80 is right; lower means the "
        "intervals are too narrow). The Keras forecast corrects the best simple baseline on "
        "recent periods and is a median (the typical value, which a low MAE rewards); the "
        "baselines are means. Total bias is the sum of a model's forecasts over the sum of the "
        "actuals, minus one. Two references are scored beside the models and never recommended: "
        "the all-zero forecast (on sparse units it has the lowest MAE, which is why levels are "
        "judged on Poisson deviance) and a clairvoyant long-run rate that uses the future (a "
        "ceiling). Models are compared origin by origin: a paired bootstrap over the origins "
        "(2,000 resamples) gives a 95% interval of each difference, a model wins only where the "
        "interval excludes zero, and where it does not, prefer the simpler model.",
        f"- **Suppression.** A unit with fewer than {k_anonymity} incidents over the window is "
        "suppressed in every public output (with a second unit where one alone would follow "
        "from a total)."
        if not suppression_off(k_anonymity)
        else f"- **Suppression.** None: {suppression_off(k_anonymity)}.",
        "",
    ]


__all__ = ["methods_lines"]
