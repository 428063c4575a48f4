"""A small Transformer language model written idiomatically in each framework: torch's own layers
(`keras_pair_torch.py`) and Keras 3's (`keras_pair_tf.py`), neither renamed for the other. The
neutral state is torch's names and layouts; the TF side maps onto it through `parameter_maps`:
Keras's paths ("blocks_0/q/kernel") to torch's names, and Dense kernels (in, out) transposed to
Linear weights (out, in). Both models take named inputs (input_ids, attention_mask) and train with
the pair's own loss (cross-entropy plus a z-loss, written in each framework's idiom)."""

import dataclasses

import numpy as np

from harness.contract.family import Family
from harness.contract.mapping import TRANSPOSED, ParameterMap
from harness.data.causal_lm import CausalLMTask

LINEARS = ("q", "k", "v", "o", "up", "down", "head")  # nn.Linear in torch, keras.layers.Dense in Keras


@dataclasses.dataclass(frozen=True)
class PairConfig:
    vocab_size: int = 256
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 32
    block_size: int = 32

    def __post_init__(self):
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "block_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"PairConfig.{name} must be a positive integer, received {getattr(self, name)!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"PairConfig.n_embd must be divisible by n_head, received {self.n_embd}, {self.n_head}")


def state_shapes(config):
    """torch's names and layouts: Embedding (rows, E), LayerNorm (E,), Linear (out, in) and (out,).
    The key projection has no bias: softmax over the keys cancels it, so its gradient is only rounding."""
    v, e, t = config.vocab_size, config.n_embd, config.block_size
    shapes = {"tok.weight": (v, e), "pos.weight": (t, e)}
    for i in range(config.n_layer):
        b = f"blocks.{i}."
        shapes |= {b + "ln_1.weight": (e,), b + "ln_1.bias": (e,)}
        for name in ("q", "k", "v", "o"):
            shapes |= {f"{b}{name}.weight": (e, e)} | ({} if name == "k" else {f"{b}{name}.bias": (e,)})
        shapes |= {b + "ln_2.weight": (e,), b + "ln_2.bias": (e,)}
        shapes |= {
            b + "up.weight": (4 * e, e),
            b + "up.bias": (4 * e,),
            b + "down.weight": (e, 4 * e),
            b + "down.bias": (e,),
        }
    return shapes | {"ln_f.weight": (e,), "ln_f.bias": (e,), "head.weight": (v, e), "head.bias": (v,)}


def init_state(config, seed):
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in state_shapes(config).items():
        if name.endswith("bias"):
            state[name] = np.zeros(shape, np.float32)
        elif len(shape) == 1:  # a LayerNorm's scale
            state[name] = np.ones(shape, np.float32)
        else:
            state[name] = rng.normal(0, 0.02, shape).astype(np.float32)
    return state


def keras_name(path):
    """A Keras weight path to torch's name: "blocks_0/q/kernel" -> "blocks.0.q.weight"."""
    *layers, weight = path.split("/")
    torch_weight = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias", "embeddings": "weight"}
    return ".".join([*(layer.replace("blocks_", "blocks.") for layer in layers), torch_weight[weight]])


def keras_layout(name):
    """Dense kernels are Linear weights transposed; everything else has torch's layout."""
    return TRANSPOSED if name.endswith(".weight") and name.split(".")[-2] in LINEARS else None


FAMILY = Family(
    name="keras_pair",
    config_class=PairConfig,
    presets={"tiny": PairConfig(), "default": PairConfig(n_layer=4, n_embd=64, block_size=64)},
    state_shapes=state_shapes,
    init_state=init_state,
    task=lambda config: CausalLMTask(seq_len=config.block_size, named_inputs=True),
    torch_model="keras_pair_torch:TransformerLM",
    tf_model="keras_pair_tf:TransformerLM",
    causal_lm=True,
    losses={"torch": "keras_pair_torch:loss", "tf": "keras_pair_tf:loss"},
    parameter_maps={"tf": ParameterMap(name=keras_name, layout=keras_layout)},
)
