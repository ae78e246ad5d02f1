"""Veracity: offline deepfake forensics and media provenance.

Importing the package loads no model and touches no file; see :func:`veracity.pipeline.analyze`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("veracity")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
