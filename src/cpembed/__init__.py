"""cpembed: training-free sentence embeddings from decoder-only LLMs, with Contrastive Prompting."""

from .config import BEST_RECIPE, DEFAULT_CP, PAPER_CP, VERSION, CPConfig, Recipe, TPConfig, default_cp, recipe
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
    "BEST_RECIPE",
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
    "Recipe",
    "TPConfig",
    "Template",
    "UnsupportedArchitectureError",
    "default_cp",
    "load_model",
    "preprocess",
    "recipe",
]
