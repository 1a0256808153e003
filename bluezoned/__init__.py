"""bluezoned: a proximity-detection daemon for Linux, compatible with Exposure Notifications."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bluezoned")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
