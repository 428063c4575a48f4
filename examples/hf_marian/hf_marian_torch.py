"""The pair's torch side: transformers' MarianMTModel, as it is; twin of hf_marian_tf.py."""

import torch
from transformers import MarianConfig, MarianMTModel


def MarianMT(config, compute_dtype=torch.float32):  # noqa: N802 (the family's model "class")
    if compute_dtype != torch.float32:
        raise ValueError(f"the transformers Marian pair trains in fp32 only, received {compute_dtype}")
    return MarianMTModel(MarianConfig(**config.marian_config(), use_cache=False))
