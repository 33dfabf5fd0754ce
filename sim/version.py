"""The package version, from the installed distribution metadata."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("portsim")
except PackageNotFoundError:  # running from a source tree without installing
    VERSION = "0.1.0"
