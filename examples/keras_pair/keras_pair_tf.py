"""The pair's TF side, a Keras 3 model from Keras's own layers; twin of keras_pair_torch.py."""

import math

import keras
import numpy as np
from keras import ops


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

    def call(self, x):
        B, T, C = ops.shape(x)[0], ops.shape(x)[1], x.shape[-1]
        h = self.ln_1(x)
        q, k, v = (
            ops.transpose(ops.reshape(proj(h), (B, T, self.n_head, C // self.n_head)), (0, 2, 1, 3))
            for proj in (self.q, self.k, self.v)
        )  # (B, nh, T, hs)
        att = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(C // self.n_head)  # (B, nh, T, T)
        causal = ops.tril(ops.ones((T, T), "bool"))
        att = ops.softmax(ops.where(causal, att, float("-inf")), axis=-1)
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
        self(np.zeros((1, config.block_size), np.int32))  # build the weights: the harness maps them next

    def call(self, tokens, training=False):
        x = self.tok(tokens) + self.pos(ops.arange(ops.shape(tokens)[1]))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))  # (B, T, V)
