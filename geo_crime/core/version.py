"""The package's version, in one place (the package face and the User-Agent read it)."""

__version__ = "0.1.0"
