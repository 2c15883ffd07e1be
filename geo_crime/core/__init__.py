"""The ground floor every stage stands on: nothing here imports another stage.

- :mod:`~geo_crime.core.errors`: the one root error and its kinds;
- :mod:`~geo_crime.core.config`: the data folder, shared defaults (``DEFAULT_K``);
- :mod:`~geo_crime.core.schema`: canonical columns, ``ROW_COUNT``, the 21 divisions;
- :mod:`~geo_crime.core.periods`: the one period-length type, :class:`~geo_crime.core.periods.Freq`;
- :mod:`~geo_crime.core.lapd`: the 2024 switch of records systems and which system a row is;
- :mod:`~geo_crime.core.io_utils`: atomic writes and owned output folders;
- :mod:`~geo_crime.core.progress`: progress display;
- :mod:`~geo_crime.core.version`: the package version.
"""
