"""An n-gram MLP language model family: config, neutral state and task."""

import dataclasses

import numpy as np

from harness.contract.family import Family
from harness.data.causal_lm import CausalLMTask


@dataclasses.dataclass(frozen=True)
class NGramConfig:
    vocab_size: int = 256
    context: int = 3  # tokens each position sees: itself and the context - 1 before it
    n_embd: int = 16
    hidden: int = 64
    block_size: int = 32

    def __post_init__(self):
        for name in ("vocab_size", "context", "n_embd", "hidden", "block_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"NGramConfig.{name} must be a positive integer, received {getattr(self, name)!r}")


def state_shapes(config):
    """embed (V, E); hidden (H, context * E), (H,); out (V, H), (V,): Linear weights are (out, in)."""
    v, e, h = config.vocab_size, config.n_embd, config.hidden
    return {
        "embed.weight": (v, e),
        "hidden.weight": (h, config.context * e),
        "hidden.bias": (h,),
        "out.weight": (v, h),
        "out.bias": (v,),
    }


def init_state(config, seed):
    rng = np.random.default_rng(seed)
    return {
        name: (np.zeros(shape) if name.endswith("bias") else rng.normal(0, 0.1, shape)).astype(np.float32)
        for name, shape in state_shapes(config).items()
    }


FAMILY = Family(
    name="ngram",
    config_class=NGramConfig,
    presets={"tiny": NGramConfig(), "default": NGramConfig(n_embd=32, hidden=128, block_size=64)},
    state_shapes=state_shapes,
    init_state=init_state,
    task=lambda config: CausalLMTask(seq_len=config.block_size),
    torch_model="ngram_torch:NGramLM",
    tf_model="ngram_tf:NGramLM",
    causal_lm=True,
)
