"""The n-gram LM in TensorFlow; twin of ngram_torch.py."""

import tensorflow as tf


class Table(tf.Module):
    def __init__(self, rows, dim):
        super().__init__()
        self.weight = tf.Variable(tf.zeros([rows, dim]))


class Dense(tf.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = tf.Variable(tf.zeros([out_features, in_features]))
        self.bias = tf.Variable(tf.zeros([out_features]))

    def __call__(self, x):
        return tf.matmul(x, self.weight, transpose_b=True) + self.bias


class NGramLM(tf.Module):
    def __init__(self, config, compute_dtype=tf.float32):
        super().__init__()
        self._context = config.context
        self.embed = Table(config.vocab_size, config.n_embd)
        self.hidden = Dense(config.context * config.n_embd, config.hidden)
        self.out = Dense(config.hidden, config.vocab_size)

    def __call__(self, tokens, training=False):
        T = tf.shape(tokens)[1]
        x = tf.gather(self.embed.weight, tokens)  # (B, T, E)
        shifted = [tf.pad(x, [[0, 0], [k, 0], [0, 0]])[:, :T] for k in reversed(range(self._context))]
        return self.out(tf.tanh(self.hidden(tf.concat(shifted, axis=-1))))  # (B, T, V)
