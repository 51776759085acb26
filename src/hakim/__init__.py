"""Hakim: fine-tuned Malaysian LLM judges (is a claim consistent with a document?)."""

from importlib.resources import files

from omegaconf import OmegaConf

__version__ = "0.1.0"

# ${hakim_sample:NAME} in configs: a file of the sample bundled inside the package.
OmegaConf.register_new_resolver("hakim_sample", lambda name: str(files("hakim.data") / "sample" / name), replace=True)
