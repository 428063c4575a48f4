"""The pair's TF side, a Keras 3 model from Keras's own layers; twin of keras_pair_torch.py."""

import math

import keras
import numpy as np
from keras import ops

Z_LOSS = 1e-4  # the z-loss's weight; keras_pair_torch.py's too


class Block(keras.layers.Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        e, self.n_head = config.n_embd, config.n_head
        self.ln_1 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_1")  # torch's epsilon
        self.q, self.k, self.v, self.o = (
            keras.layers.Dense(e, use_bias=name != "k", name=name) for name in "qkvo"
        )  # no key bias
        self.ln_2 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_2")
        self.up, self.down = keras.layers.Dense(4 * e, name="up"), keras.layers.Dense(e, name="down")

    def call(self, x, allowed):
        B, T, C = ops.shape(x)[0], ops.shape(x)[1], x.shape[-1]
        h = self.ln_1(x)
        q, k, v = (
            ops.transpose(ops.reshape(proj(h), (B, T, self.n_head, C // self.n_head)), (0, 2, 1, 3))
            for proj in (self.q, self.k, self.v)
        )  # (B, nh, T, hs)
        att = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(C // self.n_head)  # (B, nh, T, T)
        att = ops.softmax(ops.where(allowed, att, float("-inf")), axis=-1)
        y = ops.reshape(ops.transpose(ops.matmul(att, v), (0, 2, 1, 3)), (B, T, C))
        x = x + self.o(y)
        return x + self.down(keras.activations.gelu(self.up(self.ln_2(x)), approximate=False))  # torch's erf GELU


class TransformerLM(keras.Model):
    def __init__(self, config, compute_dtype=None):
        super().__init__()
        self.tok = keras.layers.Embedding(config.vocab_size, config.n_embd, name="tok")
        self.pos = keras.layers.Embedding(config.block_size, config.n_embd, name="pos")
        self.blocks = [Block(config, name=f"blocks_{i}") for i in range(config.n_layer)]
        self.ln_f = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_f")
        self.head = keras.layers.Dense(config.vocab_size, name="head")
        tokens = np.zeros((1, config.block_size), np.int32)
        self(tokens, np.ones_like(tokens))  # build the weights: the harness maps them next

    def call(self, input_ids, attention_mask, training=False):
        """input_ids (B, T); attention_mask (B, T), 1 for a token to attend to, 0 for padding."""
        T = ops.shape(input_ids)[1]
        causal = ops.tril(ops.ones((T, T), "bool"))  # (T, T)
        allowed = causal & ops.cast(attention_mask, "bool")[:, None, None, :]  # (B, 1, T, T)
        x = self.tok(input_ids) + self.pos(ops.arange(T))  # (B, T, C)
        for block in self.blocks:
            x = block(x, allowed)
        return self.head(self.ln_f(x))  # (B, T, V)


def loss(logits, targets, weights, label_smoothing):
    """The pair's own loss: cross-entropy plus PaLM's z-loss (Z_LOSS * log(Z)^2, which keeps the
    softmax normaliser near 1), each target weighted by ``weights`` (None: the plain mean)."""
    losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)  # (B, T)
    if label_smoothing:  # torch's rule: mix in the mean over classes of -log p
        uniform = -ops.mean(ops.log_softmax(logits, axis=-1), axis=-1)
        losses = (1.0 - label_smoothing) * losses + label_smoothing * uniform
    losses = losses + Z_LOSS * ops.logsumexp(logits, axis=-1) ** 2
    if weights is None:
        return ops.mean(losses)
    return ops.sum(losses * weights) / ops.sum(weights)
