"""cpembed: training-free sentence embeddings from decoder-only LLMs, with Contrastive Prompting."""

from .config import DEFAULT_CP, PAPER_CP, VERSION, CPConfig, TPConfig, default_cp
from .encoder import CPEncoder
from .errors import (
    ChecksumError,
    CPEmbedError,
    ModelLoadError,
    ModelNotFoundError,
    ModelNotInstalledError,
    UnsupportedArchitectureError,
)
from .models import BUILTIN_MODELS, DEFAULT_MODEL, LanguageModel, load_model
from .prompts import PROMPTS, Prompt, Template, preprocess

__version__ = VERSION

__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_CP",
    "PAPER_CP",
    "DEFAULT_MODEL",
    "PROMPTS",
    "CPConfig",
    "CPEmbedError",
    "CPEncoder",
    "ChecksumError",
    "LanguageModel",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelNotInstalledError",
    "Prompt",
    "TPConfig",
    "Template",
    "UnsupportedArchitectureError",
    "default_cp",
    "load_model",
    "preprocess",
]
