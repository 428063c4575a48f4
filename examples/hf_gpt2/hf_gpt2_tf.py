"""The pair's TF side: transformers' TFGPT2LMHeadModel on tf-keras, as it is; twin of hf_gpt2_torch.py."""

import numpy as np
import tensorflow as tf
from transformers import GPT2Config, TFGPT2LMHeadModel


def GPT2LMHead(config, compute_dtype=tf.float32):  # noqa: N802 (the family's model "class")
    if compute_dtype != tf.float32:
        raise ValueError(f"the transformers GPT-2 pair trains in fp32 only, received {compute_dtype}")
    model = TFGPT2LMHeadModel(GPT2Config(**config.gpt2_config()))
    tokens = np.zeros((1, config.block_size), np.int32)
    model(input_ids=tokens, attention_mask=np.ones_like(tokens), training=False)  # build its weights
    return model
