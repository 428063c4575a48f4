"""Hugging Face transformers 4.57's GPT-2 pair, GPT2LMHeadModel (torch) and TFGPT2LMHeadModel (TF on
tf-keras), trained under the harness as they are: no line of either model changed.

The neutral state is the torch model's names and layouts. Its LM head is tied to the token
embedding, so each framework holds that tensor once (torch's ``named_parameters`` lists
``transformer.wte.weight`` only). The TF side maps onto it through ``parameter_maps``: tf-keras
weight paths ("transformer/h_._0/attn/c_attn/weight") to torch's names, and the (1, n) biases of
transformers' TF Conv1D to torch's (n,). Both models take ``input_ids`` and ``attention_mask`` and
return a ModelOutput whose ``logits`` the loss reads. TF needs tf-keras: the family asks for
``TF_USE_LEGACY_KERAS=1`` in its ranks. Needs transformers 4.57 (docs/bring-your-model.md says how
`make setup` installs it beside the project's own environment).
"""

import dataclasses
import math

import numpy as np

from harness.contract.family import Family
from harness.contract.mapping import ROW, ParameterMap
from harness.data.causal_lm import CausalLMTask

CONV1D = ("c_attn", "c_proj", "c_fc")  # transformers' Conv1D: weight (in, out) in both frameworks


@dataclasses.dataclass(frozen=True)
class GPT2PairConfig:
    vocab_size: int = 256
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 32
    block_size: int = 32
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "block_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"GPT2PairConfig.{name} must be a positive integer, received {getattr(self, name)!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPT2PairConfig.n_embd must divide by n_head, received {self.n_embd}, {self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPT2PairConfig.dropout must be in [0, 1), received {self.dropout!r}")

    def gpt2_config(self) -> dict:
        """The keyword arguments of transformers' GPT2Config for this model."""
        return {
            "vocab_size": self.vocab_size,
            "n_positions": self.block_size,
            "n_embd": self.n_embd,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "resid_pdrop": self.dropout,
            "embd_pdrop": self.dropout,
            "attn_pdrop": self.dropout,
            "use_cache": False,  # training computes no key/value cache
        }


def state_shapes(config):
    """GPT2LMHeadModel's own names and shapes (Conv1D weights (in, out))."""
    v, e, t = config.vocab_size, config.n_embd, config.block_size
    shapes = {"transformer.wte.weight": (v, e), "transformer.wpe.weight": (t, e)}
    for i in range(config.n_layer):
        b = f"transformer.h.{i}."
        shapes |= {b + "ln_1.weight": (e,), b + "ln_1.bias": (e,)}
        shapes |= {b + "attn.c_attn.weight": (e, 3 * e), b + "attn.c_attn.bias": (3 * e,)}
        shapes |= {b + "attn.c_proj.weight": (e, e), b + "attn.c_proj.bias": (e,)}
        shapes |= {b + "ln_2.weight": (e,), b + "ln_2.bias": (e,)}
        shapes |= {b + "mlp.c_fc.weight": (e, 4 * e), b + "mlp.c_fc.bias": (4 * e,)}
        shapes |= {b + "mlp.c_proj.weight": (4 * e, e), b + "mlp.c_proj.bias": (e,)}
    return shapes | {"transformer.ln_f.weight": (e,), "transformer.ln_f.bias": (e,)}


def init_state(config, seed):
    """GPT-2's initialisation: N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 n_layer)), norms 1, biases 0."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in state_shapes(config).items():
        if name.endswith("bias"):
            state[name] = np.zeros(shape, np.float32)
        elif len(shape) == 1:
            state[name] = np.ones(shape, np.float32)
        else:
            std = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith("c_proj.weight") else 0.02
            state[name] = rng.normal(0, std, shape).astype(np.float32)
    return state


def tf_name(path):
    """A tf-keras weight path to torch's name: "transformer/h_._0/ln_1/gamma" -> "transformer.h.0.ln_1.weight"."""
    *layers, weight = path.replace("h_._", "h.").split("/")
    return ".".join([*layers, {"gamma": "weight", "beta": "bias", "embeddings": "weight"}.get(weight, weight)])


def tf_layout(name):
    """TF's Conv1D keeps each bias as a (1, n) row; everything else has torch's layout."""
    return ROW if name.endswith(".bias") and name.split(".")[-2] in CONV1D else None


FAMILY = Family(
    name="hf_gpt2",
    config_class=GPT2PairConfig,
    presets={
        "tiny": GPT2PairConfig(),
        "default": GPT2PairConfig(n_layer=4, n_head=4, n_embd=128, block_size=64),
        "gpt2-small": GPT2PairConfig(vocab_size=50257, n_layer=12, n_head=12, n_embd=768, block_size=1024),
    },
    state_shapes=state_shapes,
    init_state=init_state,
    task=lambda config: CausalLMTask(seq_len=config.block_size, named_inputs=True),
    torch_model="hf_gpt2_torch:GPT2LMHead",
    tf_model="hf_gpt2_tf:GPT2LMHead",
    causal_lm=True,
    tokenized_text=True,
    logits_output="logits",
    parameter_maps={"tf": ParameterMap(name=tf_name, layout=tf_layout)},
    environment={"TF_USE_LEGACY_KERAS": "1"},  # transformers 4.57 builds its TF models on tf-keras
    reference_loops=True,  # benchmarks/' minimal loops and peers take its named inputs and ModelOutput
)
