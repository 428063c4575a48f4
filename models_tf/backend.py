"""TensorFlow backend: the twin model, AdamW, and Horovod's DistributedGradientTape."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from harness.backend import Backend, StepResult
from harness.config import ModelConfig, RunConfig, TrainConfig
from harness.distributed import Distributed
from harness.state import State, init_state, optimizer_state_names, weight_decay_names
from models_tf.model import TransformerLM, loss_fn

COMPUTE_DTYPES = {"fp32": tf.float32, "bf16": tf.bfloat16, "fp16": tf.float16}
SCALE_GROWTH_INTERVAL = 2000  # fp16: finite steps before the loss scale doubles (GradScaler's default)


def build_model(config: ModelConfig, state: State, precision: str = "fp32") -> TransformerLM:
    model = TransformerLM(config, compute_dtype=COMPUTE_DTYPES[precision])
    model.import_state(state)
    return model


class AdamW(tf.Module):
    """AdamW with torch.optim.AdamW's exact update, on plain tf.Variables.

    Keras 3's AdamW differs from torch's: it adds epsilon to sqrt(v) before bias correction
    (torch: to sqrt(v_hat)), and its slots are Keras variables that Horovod cannot broadcast. This
    mirrors torch's single-tensor kernel: p *= 1 - lr*wd; m = lerp(m, g, 1-b1);
    v = b2 v + (1-b2) g^2; p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps).
    """

    def __init__(self, named: dict[str, tf.Variable], decay: set[str], config: TrainConfig):
        super().__init__()
        self.step = tf.Variable(tf.zeros([1], tf.int64))
        self.exp_avg = {n: tf.Variable(tf.zeros_like(v)) for n, v in named.items()}
        self.exp_avg_sq = {n: tf.Variable(tf.zeros_like(v)) for n, v in named.items()}
        self._decay = {n: config.weight_decay if n in decay else 0.0 for n in named}
        self._beta1, self._beta2, self._eps = config.beta1, config.beta2, config.eps

    def apply(self, grads: dict[str, tf.Tensor], named: dict[str, tf.Variable], lr: tf.Tensor) -> None:
        self.step.assign_add([1])
        t = tf.cast(self.step[0], tf.float32)
        bias_correction1 = 1.0 - self._beta1**t
        bias_correction2_sqrt = tf.sqrt(1.0 - self._beta2**t)
        for name, param in named.items():
            g, m, v = grads[name], self.exp_avg[name], self.exp_avg_sq[name]
            if self._decay[name]:
                param.assign(param * (1.0 - lr * self._decay[name]))
            m.assign(m + (g - m) * (1.0 - self._beta1))
            v.assign(v * self._beta2 + g * g * (1.0 - self._beta2))
            denom = tf.sqrt(v) / bias_correction2_sqrt + self._eps
            param.assign_sub((lr / bias_correction1) * m / denom)

    def variables_in_order(self) -> list[tf.Variable]:
        return [self.step, *self.exp_avg.values(), *self.exp_avg_sq.values()]


class TFBackend(Backend):
    def __init__(self, config: RunConfig, dist: Distributed, init_seed: int):
        super().__init__(config, dist)
        if config.train.deterministic:
            tf.config.experimental.enable_op_determinism()
        # Dropout draws from the global Generator (models_tf/model.py); seed_step resets it in place.
        tf.random.set_global_generator(tf.random.Generator.from_seed(init_seed))
        self.model = build_model(config.model, init_state(config.model, init_seed), config.train.precision)
        self.named = dict(self.model.named_parameters())
        self.optimizer = AdamW(self.named, weight_decay_names(config.model), config.train)
        self._scaling = config.train.precision == "fp16"
        self.loss_scale = tf.Variable(config.train.initial_loss_scale if self._scaling else 1.0)
        self._finite_steps = tf.Variable(0)
        self._train_step = tf.function(self._step, reduce_retracing=True)
        self._eval = tf.function(lambda x, y: loss_fn(self.model(x, training=False), y), reduce_retracing=True)

    def _step(self, inputs: tf.Tensor, targets: tf.Tensor, lr: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """inputs, targets: (k, B, T) micro-batches."""
        hvd, t = self.dist.hvd, self.config.train
        variables = list(self.named.values())
        compression = hvd.Compression.fp16 if t.compression == "fp16" else hvd.Compression.none
        if t.accumulation_steps == 1:
            with tf.GradientTape() as tape:
                loss = loss_fn(self.model(inputs[0], training=True), targets[0])
                scaled_loss = loss * self.loss_scale
            # Horovod: average gradients over ranks; embedding gradients densified for one allreduce.
            tape = hvd.DistributedGradientTape(tape, sparse_as_dense=True, compression=compression)
            grads = tape.gradient(scaled_loss, variables)
        else:
            # k local backward passes (a DistributedGradientTape would allreduce after each one),
            # their gradients summed here, then reduced once: what torch's backward_passes_per_step does.
            loss, grads = tf.zeros([]), [tf.zeros_like(v) for v in variables]
            for i in range(t.accumulation_steps):  # unrolled when traced
                with tf.GradientTape() as tape:
                    micro_loss = loss_fn(self.model(inputs[i], training=True), targets[i]) / t.accumulation_steps
                    scaled_loss = micro_loss * self.loss_scale
                micro_grads = tape.gradient(scaled_loss, variables)
                grads = [g + tf.convert_to_tensor(m) for g, m in zip(grads, micro_grads, strict=True)]
                loss += micro_loss
            # Horovod: one grouped allreduce of the accumulated gradients per optimizer step.
            grads = hvd.grouped_allreduce(grads, op=hvd.Average, compression=compression)
        # Horovod: the logged loss is the mean over ranks, reduced in the same cycle as the gradients.
        mean_loss = hvd.allreduce(loss, op=hvd.Average, name="train_loss")
        if self._scaling:
            grads = [g / self.loss_scale for g in grads]
        grad_norm = tf.linalg.global_norm(grads)
        if t.grad_clip > 0:  # torch's clip_grad_norm_ formula, including its 1e-6
            scale = tf.minimum(1.0, t.grad_clip / (grad_norm + 1e-6))
            grads = [g * scale for g in grads]
        applied = tf.math.is_finite(mean_loss) & tf.math.is_finite(grad_norm)
        if applied:  # a tf.cond: a non-finite step leaves weights and AdamW state untouched
            self.optimizer.apply(dict(zip(self.named, grads, strict=True)), self.named, lr)
        if self._scaling:
            self._update_loss_scale(tf.math.is_finite(grad_norm))
        return mean_loss, grad_norm, applied

    def _update_loss_scale(self, finite: tf.Tensor) -> None:
        """Halve the scale on an overflow; double it after SCALE_GROWTH_INTERVAL finite steps."""
        if finite:
            self._finite_steps.assign_add(1)
            if self._finite_steps >= SCALE_GROWTH_INTERVAL:
                self.loss_scale.assign(self.loss_scale * 2.0)
                self._finite_steps.assign(0)
        else:
            self.loss_scale.assign(self.loss_scale * 0.5)
            self._finite_steps.assign(0)

    def export_model_state(self) -> State:
        return self.model.export_state()

    def import_model_state(self, state: State) -> None:
        self.model.import_state(state)

    def export_optimizer_state(self) -> State:
        opt = self.optimizer
        state = {"step": opt.step.numpy().copy()}
        for name in self.named:
            state[f"exp_avg.{name}"] = opt.exp_avg[name].numpy().copy()
            state[f"exp_avg_sq.{name}"] = opt.exp_avg_sq[name].numpy().copy()
        return {name: state[name] for name in optimizer_state_names(self.config.model)}

    def import_optimizer_state(self, state: State) -> None:
        opt = self.optimizer
        opt.step.assign(state["step"].astype(np.int64))
        for name in self.named:
            opt.exp_avg[name].assign(state[f"exp_avg.{name}"])
            opt.exp_avg_sq[name].assign(state[f"exp_avg_sq.{name}"])

    def broadcast_initial_state(self) -> None:
        hvd = self.dist.hvd
        # Horovod: rank 0's weights and AdamW state (created eagerly above) become every rank's.
        hvd.broadcast_variables(list(self.named.values()) + self.optimizer.variables_in_order(), root_rank=0)

    def seed_step(self, seed: int) -> None:
        tf.random.get_global_generator().reset_from_seed(seed)

    def train_step(self, inputs: np.ndarray, targets: np.ndarray, lr: float) -> StepResult:
        loss, grad_norm, applied = self._train_step(
            tf.constant(inputs), tf.constant(targets), tf.constant(lr, tf.float32)
        )
        return StepResult(float(loss), float(grad_norm), bool(applied), float(self.loss_scale))

    def eval_loss(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        return float(self._eval(tf.constant(inputs), tf.constant(targets)))


def make_backend(config: RunConfig, dist: Distributed, init_seed: int) -> TFBackend:
    return TFBackend(config, dist, init_seed)


def make_predictor(config: ModelConfig, state: State):
    """Tokens (B, T) int64 -> logits (B, T, V) float32, for sampling; no Horovod."""
    model = build_model(config, state)
    return lambda tokens: model(tf.constant(tokens), training=False).numpy()
