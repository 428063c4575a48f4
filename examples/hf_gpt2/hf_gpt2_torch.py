"""The pair's torch side: transformers' GPT2LMHeadModel, as it is; twin of hf_gpt2_tf.py."""

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def GPT2LMHead(config, compute_dtype=torch.float32):  # noqa: N802 (the family's model "class")
    if compute_dtype != torch.float32:
        raise ValueError(f"the transformers GPT-2 pair trains in fp32 only, received {compute_dtype}")
    return GPT2LMHeadModel(GPT2Config(**config.gpt2_config()))
