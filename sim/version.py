"""The version of rescue-sim, in one place: the build reads it, `--version` prints it."""

__version__ = "0.1.0"
