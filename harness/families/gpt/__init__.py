"""The built-in GPT family: a decoder-only Transformer LM trained on next-token prediction, the
twin of models_torch/gpt.py and models_tf/gpt.py; reads and writes Hugging Face GPT-2
directories (``hf.py``)."""

from harness.contract.family import BenchSize, Family
from harness.data.causal_lm import CausalLMTask
from harness.families.gpt import hf
from harness.families.gpt.config import PRESETS, GPTConfig, init_state, sinusoidal_positions

__all__ = ["FAMILY", "PRESETS", "GPTConfig", "init_state", "sinusoidal_positions", "state_shapes"]

state_shapes = GPTConfig.state_shapes  # the contract's config -> {name: shape}

FAMILY = Family(
    name="gpt",
    config_class=GPTConfig,
    presets=PRESETS,
    state_shapes=state_shapes,
    init_state=init_state,
    task=lambda config: CausalLMTask(seq_len=config.block_size),
    torch_model="models_torch.gpt:TransformerLM",
    tf_model="models_tf.gpt:TransformerLM",
    flops_per_token=GPTConfig.flops_per_token,
    causal_lm=True,
    tokenized_text=True,
    formats=(hf.FORMAT,),
    # The size table's larger models take seconds per step on one core: few steps, smaller batches.
    bench_sizes=(BenchSize("medium", 4, 8, 2), BenchSize("gpt2-small", 1, 4, 1)),
    reference_loops=True,
)
