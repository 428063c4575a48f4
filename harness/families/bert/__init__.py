"""The built-in BERT-style family: a bidirectional Transformer encoder, the twin of
models_torch/bert.py and models_tf/bert.py, pretrained with BERT's masked-LM objective
(``head = "mlm"``), then fine-tuned to classify text (``head = "classify"``)."""

from harness.contract.family import Family
from harness.families.bert.config import CLS_ID, MASK_ID, PAD_ID, PRESETS, BERTConfig, init_state
from harness.families.bert.tasks import LabelledSplit, MaskedLMTask, TopicTask, majority_baseline

__all__ = [
    "CLS_ID",
    "FAMILY",
    "MASK_ID",
    "PAD_ID",
    "PRESETS",
    "BERTConfig",
    "LabelledSplit",
    "MaskedLMTask",
    "TopicTask",
    "init_state",
    "majority_baseline",
    "run_defaults",
    "state_shapes",
    "task",
]


def run_defaults(config: BERTConfig) -> dict[str, dict]:
    """What each head trains best with, measured on the default presets (docs/measurements.md,
    "Why the BERT family's run_defaults"). Masked LM: lr 1e-3 with 100 warm-up steps; at the
    loop's 2e-3 with 30 the loss spikes, and at each spike the torch and TF runs part (fp32 rounding
    amplified), so that their fine-tunes no longer agree. Classify: lr 3e-4, as stable; a fifth of
    the paragraphs (102) held out."""
    if config.head == "mlm":
        return {"train": {"lr": 1e-3, "warmup_steps": 100}}
    return {"train": {"lr": 3e-4}, "data": {"val_fraction": 0.2}}


def task(config: BERTConfig) -> MaskedLMTask | TopicTask:
    if config.head == "mlm":
        return MaskedLMTask(seq_len=config.block_size)
    return TopicTask(block_size=config.block_size, num_labels=config.num_labels)


state_shapes = BERTConfig.state_shapes  # the contract's config -> {name: shape}

FAMILY = Family(
    name="bert",
    config_class=BERTConfig,
    presets=PRESETS,
    state_shapes=state_shapes,
    init_state=init_state,
    task=task,
    torch_model="models_torch.bert:Encoder",
    tf_model="models_tf.bert:Encoder",
    flops_per_token=BERTConfig.flops_per_token,
    run_defaults=run_defaults,
)
