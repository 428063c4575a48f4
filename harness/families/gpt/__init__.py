"""The built-in GPT family: a decoder-only Transformer LM trained on next-token prediction, the
twin of models_torch/model.py and models_tf/model.py; reads and writes Hugging Face GPT-2
directories (``hf.py``)."""

from harness.contract.family import Family
from harness.data.causal_lm import CausalLMTask
from harness.families.gpt import hf
from harness.families.gpt.config import PRESETS, GPTConfig, init_state, sinusoidal_positions, state_shapes

__all__ = ["FAMILY", "PRESETS", "GPTConfig", "init_state", "sinusoidal_positions", "state_shapes"]

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
)
