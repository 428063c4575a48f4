"""Hugging Face transformers 4.57's Marian pair, MarianMTModel (torch) and TFMarianMTModel (TF on
tf-keras): the encoder–decoder Transformer of Marian-NMT (post-LN, static sinusoidal positions, one
embedding shared by encoder, decoder and LM head), trained from scratch for translation as it is.

The neutral state is the torch model's names and layouts. The TF side maps onto it through
``parameter_maps``: tf-keras weight paths ("model/encoder/layers.0/fc1/kernel") to torch's names,
Dense kernels (in, out) transposed to torch's (out, in). The sinusoidal position tables are no part
of the state (``fixed``): each model computes them, torch keeps them frozen, and tf-keras would
train them. The decoder starts on the end token, not Marian's pad: torch's embedding never trains
its pad row (``padding_idx``) where Keras's does (harness/data/seq2seq.py). Needs transformers 4.57
(docs/bring-your-model.md says how `make setup` installs it beside the project's environment).
"""

import dataclasses

import numpy as np

from harness.contract.family import Family
from harness.contract.mapping import TRANSPOSED, ParameterMap
from harness.data.seq2seq import Seq2SeqTask

POSITIONS = ("model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight")
TF_POSITIONS = ("model/encoder/embed_positions/embeddings", "model/decoder/embed_positions/embeddings")


@dataclasses.dataclass(frozen=True)
class MarianPairConfig:
    vocab_size: int = 300  # follows data.tokenizer
    d_model: int = 32
    encoder_layers: int = 1
    decoder_layers: int = 1
    attention_heads: int = 4
    ffn_dim: int = 64
    max_positions: int = 64  # of each side, its end token included
    dropout: float = 0.0
    pad_token_id: int = 1  # follow data.tokenizer (`harness tokenizer train --pairs`: <pad> 1, </s> 2)
    eos_token_id: int = 2

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "encoder_layers", "decoder_layers", "attention_heads", "ffn_dim"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(
                    f"MarianPairConfig.{name} must be a positive integer, received {getattr(self, name)!r}"
                )
        if self.d_model % self.attention_heads or self.d_model % 2:
            raise ValueError(
                f"MarianPairConfig.d_model must be even and divide by attention_heads, received {self.d_model}, "
                f"{self.attention_heads}"
            )
        if not isinstance(self.max_positions, int) or self.max_positions < 2:
            raise ValueError(f"MarianPairConfig.max_positions must be an integer >= 2, received {self.max_positions!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MarianPairConfig.dropout must be in [0, 1), received {self.dropout!r}")
        for name in ("pad_token_id", "eos_token_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ValueError(
                    f"MarianPairConfig.{name} must be an id below vocab_size {self.vocab_size}, "
                    f"received {getattr(self, name)!r}"
                )

    def marian_config(self) -> dict:
        """The keyword arguments of transformers' MarianConfig for this model."""
        return {
            "vocab_size": self.vocab_size,
            "decoder_vocab_size": self.vocab_size,
            "d_model": self.d_model,
            "encoder_layers": self.encoder_layers,
            "decoder_layers": self.decoder_layers,
            "encoder_attention_heads": self.attention_heads,
            "decoder_attention_heads": self.attention_heads,
            "encoder_ffn_dim": self.ffn_dim,
            "decoder_ffn_dim": self.ffn_dim,
            "max_position_embeddings": self.max_positions,
            "dropout": self.dropout,
            "attention_dropout": self.dropout,
            "activation_dropout": self.dropout,
            "pad_token_id": self.pad_token_id,
            "eos_token_id": self.eos_token_id,
            "decoder_start_token_id": self.eos_token_id,  # see the module docstring
            "forced_eos_token_id": self.eos_token_id,
            "share_encoder_decoder_embeddings": True,
            "tie_word_embeddings": True,
            "scale_embedding": True,
        }


def state_shapes(config):
    """MarianMTModel's own trained names and shapes (Linear weights (out, in)); its LM head is the shared embedding."""
    d, f = config.d_model, config.ffn_dim
    linear = lambda prefix, n_out, n_in: {prefix + ".weight": (n_out, n_in), prefix + ".bias": (n_out,)}  # noqa: E731
    norm = lambda prefix: {prefix + ".weight": (d,), prefix + ".bias": (d,)}  # noqa: E731

    def attention(prefix):
        return {
            k: v for p in ("k_proj", "v_proj", "q_proj", "out_proj") for k, v in linear(f"{prefix}.{p}", d, d).items()
        }

    shapes = {"model.shared.weight": (config.vocab_size, d)}
    for i in range(config.encoder_layers):
        b = f"model.encoder.layers.{i}."
        shapes |= attention(b + "self_attn") | norm(b + "self_attn_layer_norm")
        shapes |= linear(b + "fc1", f, d) | linear(b + "fc2", d, f) | norm(b + "final_layer_norm")
    for i in range(config.decoder_layers):
        b = f"model.decoder.layers.{i}."
        shapes |= attention(b + "self_attn") | norm(b + "self_attn_layer_norm")
        shapes |= attention(b + "encoder_attn") | norm(b + "encoder_attn_layer_norm")
        shapes |= linear(b + "fc1", f, d) | linear(b + "fc2", d, f) | norm(b + "final_layer_norm")
    return shapes


def init_state(config, seed):
    """Marian's initialisation: N(0, 0.02) matrices and embedding (its pad row 0), norms 1, biases 0."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in state_shapes(config).items():
        if name.endswith("bias"):
            state[name] = np.zeros(shape, np.float32)
        elif len(shape) == 1:
            state[name] = np.ones(shape, np.float32)
        else:
            state[name] = rng.normal(0, 0.02, shape).astype(np.float32)
    state["model.shared.weight"][config.pad_token_id] = 0.0
    return state


def tf_name(path):
    """A tf-keras weight path to torch's name: "model/encoder/layers.0/fc1/kernel" ->
    "model.encoder.layers.0.fc1.weight"."""
    *layers, weight = path.split("/")
    if layers[0] == "model.shared":  # the shared embedding, built in a name scope of its own
        return "model.shared.weight"
    return ".".join([*layers, {"gamma": "weight", "beta": "bias", "kernel": "weight"}.get(weight, weight)])


def tf_layout(name):
    """Dense kernels are (in, out) in Keras, (out, in) in torch; the embedding and vectors alike."""
    return (
        TRANSPOSED if name.endswith(".weight") and name != "model.shared.weight" and "layer_norm" not in name else None
    )


FAMILY = Family(
    name="hf_marian",
    config_class=MarianPairConfig,
    presets={
        "tiny": MarianPairConfig(),
        "default": MarianPairConfig(d_model=128, encoder_layers=2, decoder_layers=2, ffn_dim=512),
        "small": MarianPairConfig(d_model=256, encoder_layers=3, decoder_layers=3, ffn_dim=1024, max_positions=128),
    },
    state_shapes=state_shapes,
    init_state=init_state,
    task=lambda config: Seq2SeqTask(config.max_positions, config.max_positions, start="end"),
    torch_model="hf_marian_torch:MarianMT",
    tf_model="hf_marian_tf:MarianMT",
    tokenized_text=True,
    logits_output="logits",
    parameter_maps={
        "torch": ParameterMap(fixed=POSITIONS),
        "tf": ParameterMap(name=tf_name, layout=tf_layout, fixed=TF_POSITIONS),
    },
    environment={"TF_USE_LEGACY_KERAS": "1"},  # transformers 4.57 builds its TF models on tf-keras
    # The demo's settings (docs/translation.md): a label-smoothed loss, BLEU and chrF on 200 held-out pairs.
    run_defaults=lambda config: {
        "train": {"label_smoothing": 0.1, "batch_size": 32, "lr": 1e-3},
        "eval": {"decode_examples": 200},
    },
)
