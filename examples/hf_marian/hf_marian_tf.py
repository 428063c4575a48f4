"""The pair's TF side: transformers' TFMarianMTModel on tf-keras, as it is; twin of hf_marian_torch.py."""

import numpy as np
import tensorflow as tf
from transformers import MarianConfig, TFMarianMTModel


def MarianMT(config, compute_dtype=tf.float32):  # noqa: N802 (the family's model "class")
    if compute_dtype != tf.float32:
        raise ValueError(f"the transformers Marian pair trains in fp32 only, received {compute_dtype}")
    model = TFMarianMTModel(MarianConfig(**config.marian_config(), use_cache=False))
    tokens = np.full((1, 2), config.eos_token_id, np.int32)
    model(input_ids=tokens, attention_mask=np.ones_like(tokens), decoder_input_ids=tokens, training=False)  # build
    return model
