"""One exception hierarchy for the whole package.

Every error a user can cause (a missing file, an unknown schema, a corrupt archive, too few units
for a statistic) is raised as a subclass of :class:`GeoCrimeError`. The command-line interface
catches exactly this class, prints its message on one line and exits non-zero; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class GeoCrimeError(Exception):
    """Base class of every error geo_crime raises on purpose."""


class InputError(GeoCrimeError):
    """An input file is missing, empty, corrupt or unreadable."""


class SchemaError(InputError):
    """An input's columns match no known LAPD schema (or a mapping is incomplete)."""


class DataError(GeoCrimeError):
    """The data is readable but cannot support the requested operation."""


class ConfigError(GeoCrimeError):
    """A setting, option or configuration file is invalid."""


class TooFewUnitsError(DataError):
    """A statistic was asked of fewer spatial units than it needs to be meaningful."""


class ModelError(GeoCrimeError):
    """A model cannot be trained, saved, loaded or used as asked."""


class FetchError(GeoCrimeError):
    """A download failed after all retries, or its rows did not check out (ids, counts)."""


class OutputError(GeoCrimeError):
    """An output cannot be written: a folder in the way, a full or read-only disk, no permission."""


class PrivacyError(DataError):
    """A table cannot be published (victim- or incident-level data, unknown counts)."""
