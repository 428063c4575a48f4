"""The TF backend's optimizer: torch.optim.AdamW's update on plain tf.Variables (torch's backend uses torch's own)."""

from __future__ import annotations

import tensorflow as tf

from harness.contract.config import TrainConfig
from models_tf import kernels


class AdamW(tf.Module):
    """AdamW with torch.optim.AdamW's exact update, on plain tf.Variables.

    Keras 3's AdamW differs from torch's: it adds epsilon to sqrt(v) before bias correction
    (torch: to sqrt(v_hat)), and its slots are Keras variables that Horovod cannot broadcast. This
    mirrors torch's update (its single-tensor kernel's order; the torch backend runs the fused kernel,
    the same formula, within the AdamW twin test's ulp bounds): p *= 1 - lr*wd; m = lerp(m, g, 1-b1);
    v = b2 v + (1-b2) g^2; p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps).
    """

    def __init__(self, named: dict[str, tf.Variable], decay: set[str], config: TrainConfig):
        super().__init__()
        self.step = tf.Variable(tf.zeros([1], tf.int64))
        self.exp_avg = {n: tf.Variable(tf.zeros_like(v)) for n, v in named.items()}
        self.exp_avg_sq = {n: tf.Variable(tf.zeros_like(v)) for n, v in named.items()}
        self._decay = {n: config.weight_decay if n in decay else 0.0 for n in named}
        self._beta1, self._beta2, self._eps = config.beta1, config.beta2, config.eps

    @kernels.fused  # every parameter's update in one compiled function
    def apply(
        self, grads: dict[str, tf.Tensor], named: dict[str, tf.Variable], lr: tf.Tensor, scale: tf.Tensor | float = 1.0
    ) -> None:
        """One update of ``named`` from ``grads`` times ``scale`` (gradient clipping's factor)."""
        self.step.assign_add([1])
        t = tf.cast(self.step[0], tf.float32)
        bias_correction1 = 1.0 - self._beta1**t
        bias_correction2_sqrt = tf.sqrt(1.0 - self._beta2**t)
        for name, param in named.items():
            g, m, v = grads[name] * scale, self.exp_avg[name], self.exp_avg_sq[name]
            if self._decay[name]:
                param.assign(param * (1.0 - lr * self._decay[name]))
            m.assign(m + (g - m) * (1.0 - self._beta1))
            v.assign(v * self._beta2 + g * g * (1.0 - self._beta2))
            param.assign_sub((lr / bias_correction1) * m / self.denominator(v, bias_correction2_sqrt))

    def denominator(self, v: tf.Variable, bias_correction2_sqrt: tf.Tensor) -> tf.Tensor:
        """sqrt(v_hat) + eps, torch's: epsilon after the bias correction (where Keras's differs)."""
        return tf.sqrt(v) / bias_correction2_sqrt + self._eps

    def variables_in_order(self) -> list[tf.Variable]:
        return [self.step, *self.exp_avg.values(), *self.exp_avg_sq.values()]
