"""Hugging Face interop for the ``gpt`` family: a run exported as a ``transformers`` GPT-2 directory
(``GPT2LMHeadModel.from_pretrained`` loads it), and such a directory read back as a starting state
(``--init-from DIR``). numpy and safetensors only: no framework, no hub.

The twin's layout is GPT-2's with every Linear transposed (GPT-2's Conv1D stores (in, out)); the
qkv rows are queries, keys, values with heads contiguous in each, as GPT-2's c_attn columns.
Tied embeddings: GPT-2 keeps one tensor (``transformer.wte.weight``) that its ``lm_head`` shares;
safetensors refuses to save two names for one buffer, so the export writes ``lm_head.weight`` only
when the head is untied, and the import ties a missing head to the embedding.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from harness.contract.family import ExternalFormat
from harness.contract.state import State
from harness.families.gpt.config import GPTConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"  # a sharded save_pretrained
TRANSPOSED = ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")  # Conv1D in GPT-2
GPT2_NAMES = {"attn.qkv": "attn.c_attn", "attn.proj": "attn.c_proj", "mlp.fc": "mlp.c_fc", "mlp.proj": "mlp.c_proj"}
# GPT-2 options the twin has no equivalent for: each must have this value.
REQUIRED = {
    "activation_function": "gelu",  # the exact (erf) GELU; GPT-2's own "gelu_new" is the tanh approximation
    "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False,
    "reorder_and_upcast_attn": False,
    "add_cross_attention": False,
}


def is_hf_directory(path: str | Path) -> bool:
    """A ``save_pretrained`` directory (a config.json), as opposed to a harness run directory."""
    return (Path(path) / CONFIG_FILE).is_file()


def gpt2_config(config: GPTConfig) -> dict:
    """The ``transformers`` GPT2Config (as config.json holds it) of the twin's config."""
    if config.pos_encoding != "learned":
        raise ValueError(
            f"GPT-2 learns its positions; a model with pos_encoding {config.pos_encoding!r} has no GPT-2 form"
        )
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": config.mlp_hidden,
        "layer_norm_epsilon": config.layer_norm_eps,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": 0.0,  # the twin has no dropout on attention probabilities
        "tie_word_embeddings": config.tie_embeddings,
        **REQUIRED,
    }


def config_from_gpt2(values: dict, where: str) -> GPTConfig:
    """The twin's config of a GPT-2 config.json; ``ValueError`` for a model the twin cannot be."""
    if values.get("model_type") != "gpt2":
        raise ValueError(f"{where}: model_type {values.get('model_type')!r}; only 'gpt2' models load into family gpt")
    defaults = {"activation_function": "gelu_new", "scale_attn_weights": True}  # GPT2Config's own defaults
    for key, expected in REQUIRED.items():
        value = values.get(key, defaults.get(key, False))
        if value != expected:
            raise ValueError(f"{where}: {key} is {value!r}; the twin can only be a GPT-2 with {key} {expected!r}")
    n_embd = values["n_embd"]
    return GPTConfig(
        vocab_size=values["vocab_size"],
        n_layer=values["n_layer"],
        n_head=values["n_head"],
        n_embd=n_embd,
        mlp_hidden=values.get("n_inner") or 4 * n_embd,
        block_size=values["n_positions"],
        dropout=values.get("resid_pdrop", 0.0),
        layer_norm_eps=values.get("layer_norm_epsilon", 1e-5),
        tie_embeddings=values.get("tie_word_embeddings", True),
    )


def _gpt2_name(name: str) -> str:
    """``blocks.3.attn.qkv.weight`` -> ``transformer.h.3.attn.c_attn.weight``; ``lm_head.weight`` as is."""
    if name == "lm_head.weight":
        return name
    if name.startswith("blocks."):
        _, layer, rest = name.split(".", 2)
        for ours, theirs in GPT2_NAMES.items():
            rest = rest.replace(ours + ".", theirs + ".")
        return f"transformer.h.{layer}.{rest}"
    return f"transformer.{name}"


def _transposed(name: str) -> bool:
    return name.endswith(".weight") and any(f".{part}." in f".{name}" for part in TRANSPOSED)


def to_gpt2_state(state: State, config: GPTConfig) -> dict[str, np.ndarray]:
    """The twin's neutral state under GPT-2's names and layouts (no lm_head.weight when tied)."""
    gpt2_config(config)  # refuses what GPT-2 cannot hold
    return {
        _gpt2_name(name): np.ascontiguousarray(value.T if _transposed(name) else value) for name, value in state.items()
    }


def from_gpt2_state(tensors: dict[str, np.ndarray], config: GPTConfig, where: str) -> State:
    """GPT-2 tensors (``transformer.``-prefixed or not) as the twin's neutral state, float32."""
    plain = {name.removeprefix("transformer."): value for name, value in tensors.items()}
    state = {}
    for name, shape in config.state_shapes().items():
        theirs = _gpt2_name(name).removeprefix("transformer.")
        if theirs not in plain:
            raise ValueError(f"{where}: no tensor {theirs!r} (the GPT-2 form of {name})")
        value = plain[theirs].T if _transposed(name) else plain[theirs]
        if value.shape != shape:
            raise ValueError(f"{where}: {theirs} has shape {plain[theirs].shape}, expected {shape} (transposed)")
        state[name] = np.ascontiguousarray(value, dtype=np.float32)
    return state


def export_hf(state: State, config: GPTConfig, out: Path, tokenizer_file: Path | None) -> list[str]:
    """Write config.json, model.safetensors (and the tokenizer) into the new directory ``out``;
    returns the file names."""
    values = gpt2_config(config)
    tensors = to_gpt2_state(state, config)
    out.mkdir(parents=True)
    (out / CONFIG_FILE).write_text(json.dumps(values, indent=2) + "\n")
    save_file(tensors, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    written = [CONFIG_FILE, WEIGHTS_FILE]
    if tokenizer_file is not None:
        shutil.copyfile(tokenizer_file, out / tokenizer_file.name)  # the checkpoint's copy, named by its kind
        written.append(tokenizer_file.name)
    return written


def read_hf_config(directory: str | Path) -> GPTConfig:
    """The twin's config of a ``save_pretrained`` GPT-2 directory."""
    where = f"--init-from {directory}"
    try:
        values = json.loads((Path(directory) / CONFIG_FILE).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{where}: {CONFIG_FILE} cannot be read: {err}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{where}: {CONFIG_FILE} is not a JSON object")
    try:
        return config_from_gpt2(values, where)
    except (KeyError, TypeError) as err:
        raise ValueError(f"{where}: {CONFIG_FILE} lacks or mistypes {err}") from None


def read_hf(directory: str | Path) -> tuple[GPTConfig, State]:
    """The twin's config and neutral state of a ``save_pretrained`` GPT-2 directory."""
    directory = Path(directory)
    where = f"--init-from {directory}"
    config = read_hf_config(directory)
    if (directory / WEIGHTS_FILE).is_file():
        files = [directory / WEIGHTS_FILE]
    elif (directory / WEIGHTS_INDEX).is_file():
        shards = json.loads((directory / WEIGHTS_INDEX).read_text())["weight_map"].values()
        files = [directory / name for name in sorted(set(shards))]
    else:
        raise ValueError(f"{where}: no {WEIGHTS_FILE} (save the model with safe_serialization)")
    tensors = {}
    for path in files:
        tensors.update(load_file(str(path)))
    return config, from_gpt2_state(tensors, config, where)


FORMAT = ExternalFormat(
    key="hf",
    description="Hugging Face GPT-2",
    recognizes=is_hf_directory,
    read_config=read_hf_config,
    read_state=read_hf,
    export=export_hf,
)
