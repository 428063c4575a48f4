"""TensorFlow backend: a family's TF model, AdamW, and Horovod's grouped allreduce of its tape's gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from harness.contract.backend import (
    Backend,
    EvalSums,
    StepResult,
    bind,
    gradient_buckets,
    loss_shares,
    step_outcome,
)
from harness.contract.config import RunConfig, TrainConfig
from harness.contract.distributed import Distributed
from harness.contract.family import Family
from harness.contract.state import State, zero_optimizer_state
from harness.contract.task import Batch, Inputs, map_inputs
from models_tf.adamw import AdamW
from models_tf.ops import call, cross_entropy, eval_sums, import_state, named_parameters, read, relayout, write

COMPUTE_DTYPES = {"fp32": tf.float32, "bf16": tf.bfloat16, "fp16": tf.float16}
SCALE_GROWTH_INTERVAL = 2000  # fp16: finite steps before the loss scale doubles (GradScaler's default)


def build_model(family: Family, config: Any, precision: str = "fp32") -> tf.Module:
    """The family's TF model computing in ``precision``; its weights are for the caller to set."""
    return family.implementation("tf")(config, compute_dtype=COMPUTE_DTYPES[precision])


def check_parameter_map(family: Family, config: Any) -> None:
    """Build the family's TF model and bind its parameters to the neutral state, as a backend does:
    ``ValueError`` naming what does not fit."""
    model = build_model(family, config)
    bind(family, "tf", {n: tuple(v.shape) for n, v in named_parameters(model)}, family.state_shapes(config))


def make_adamw(parameters: dict[str, tf.Variable], decay: set[str], train: TrainConfig) -> AdamW:
    """AdamW over ``parameters``, decaying the weights named in ``decay`` only."""
    return AdamW(parameters, decay, train)  # torch.optim.AdamW's arithmetic (models_tf/adamw.py)


def clip_factor(grads: list[tf.Tensor], train: TrainConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """The factor that scales the gradients to a global norm of at most ``train.grad_clip`` (0: no
    clipping, 1.0), and their global norm before. AdamW.apply scales them in its compiled update:
    a multiply per gradient outside it cost 1.2 of the optimizer's 5.9 ms (default model, one thread)."""
    grad_norm = tf.linalg.global_norm(grads)
    if train.grad_clip <= 0:
        return tf.constant(1.0), grad_norm
    return tf.minimum(1.0, train.grad_clip / (grad_norm + 1e-6)), grad_norm  # torch's clip_grad_norm_, with its 1e-6


class Traced:
    """``fn`` as a tf.function (shapes generalised after a retrace), traced without AutoGraph:
    converting the model's Python source to graph code took 4.1 of the first step's 6.9 s (tiny, one
    rank). A model whose Python control flow depends on tensors (transformers' Marian decoder) fails
    that trace before anything runs, and is traced again with AutoGraph."""

    def __init__(self, fn):
        self._fn = fn
        self._function = tf.function(fn, reduce_retracing=True, autograph=False)

    def __call__(self, *args):
        try:
            return self._function(*args)
        except tf.errors.OperatorNotAllowedInGraphError:
            self._function = tf.function(self._fn, reduce_retracing=True)
            return self._function(*args)


class TFBackend(Backend):
    def __init__(self, family: Family, config: RunConfig, dist: Distributed, init_seed: int):
        super().__init__(family, config, dist)
        t = config.train
        if t.deterministic:
            tf.config.experimental.enable_op_determinism()
        # Dropout draws from the global Generator (models_tf/layers.py); each traced step resets it in
        # place from the seed seed_step leaves (in the graph: an eager reset costs ~1 ms a step).
        tf.random.set_global_generator(tf.random.Generator.from_seed(init_seed))
        self._seed = 0
        self.model = build_model(family, config.model, t.precision)
        self.own_loss = family.loss("tf")  # the family's, or None: cross-entropy
        self.bind_parameters("tf", dict(named_parameters(self.model)), lambda v: tuple(v.shape))
        self.import_model_state(family.init_state(config.model, init_seed))
        self.optimizer = make_adamw(self.parameters, family.decayed(config.model), t)
        # What the step differentiates: the parameters, then the tied copies (fp32 gradients, by index).
        self._variables = [*self.parameters.values(), *(param for param, _, _ in self.copies)]
        self._buckets = gradient_buckets(
            [(i, v.shape.num_elements() * 4) for i, v in enumerate(self._variables)], t.gradient_bucket_mb
        )
        self.import_optimizer_state(zero_optimizer_state(self.shapes))
        self._scaling = t.precision == "fp16"
        self.loss_scale = tf.Variable(t.initial_loss_scale if self._scaling else 1.0)
        self._finite_steps = tf.Variable(0)
        self._train_step = Traced(self._step)
        self._eval = Traced(lambda x, y, w: eval_sums(self._logits(x, training=False), y, w, self.own_loss))
        self._predict = Traced(lambda x: self._logits(x, training=False))

    def _logits(self, inputs: tf.Tensor | dict[str, tf.Tensor], training: bool) -> tf.Tensor:
        return self.family.logits_of(call(self.model, inputs, training))

    def _step(
        self,
        inputs: tf.Tensor | dict[str, tf.Tensor],
        targets: tf.Tensor,
        weights: tf.Tensor | None,
        shares: tf.Tensor,
        lr: tf.Tensor,
        seed: tf.Tensor,
        stop: tf.Tensor,
        alone: bool,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """inputs, targets, weights: k micro-batches on a leading axis; shares: (k,) loss shares;
        seed: () int64, the step's dropout seed; stop: () 1.0 when this rank asks to stop; alone:
        the job has one rank (a Python bool: one trace per value), whose values need no allreduce."""
        hvd, t = self.dist.hvd, self.config.train
        tf.random.get_global_generator().reset_from_seed(seed)  # before any draw: ops on one state run in order
        compression = self.dist.compression(t.compression)

        def micro_loss(i: int) -> tf.Tensor:
            micro_weights = None if weights is None else weights[i]
            logits = self._logits(tf.nest.map_structure(lambda x: x[i], inputs), training=True)
            loss = (self.own_loss or cross_entropy)(logits, targets[i], micro_weights, t.label_smoothing)
            return loss * shares[i]

        # k local backward passes, their gradients summed, then reduced once per optimizer step (what
        # torch's backward_passes_per_step does); embedding gradients densified for one allreduce.
        loss, grads = tf.zeros([]), None
        for i in range(t.accumulation_steps):  # unrolled when traced
            with tf.GradientTape() as tape:
                micro = micro_loss(i)
                scaled_loss = micro * self.loss_scale
            # Zeros for a variable the loss does not reach, as Horovod's torch optimizer sends.
            micro_grads = tape.gradient(
                scaled_loss, self._variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            micro_grads = [tf.convert_to_tensor(g) for g in micro_grads]
            grads = micro_grads if grads is None else [g + m for g, m in zip(grads, micro_grads, strict=True)]
            loss += micro
        # Horovod: average the loss, and any rank's stop request, over ranks in the gradients' cycle:
        # issued once this rank's gradients exist, it is negotiated with them. Issued as soon as the
        # loss existed, the rank ahead spun in MPI through its backward pass until the other's loss
        # came (Horovod's timeline, default model, 2 ranks on 2 cores: 7.7 ms a step; now 13 us).
        # Alone, a rank skips Horovod's cycle: its values are the means.
        loss_and_stop = tf.stack([loss, stop])
        if not alone:
            with tf.control_dependencies(grads):
                loss_and_stop = hvd.allreduce(loss_and_stop, op=hvd.Average, name="train_loss")
            # Horovod: average the gradients over ranks, one grouped allreduce per bucket
            grads = self._reduce_gradients(grads, compression)
        mean_loss, stop = tf.unstack(loss_and_stop)
        grads = self._add_copies(grads)
        if self._scaling:
            grads = [g / self.loss_scale for g in grads]
        clip, grad_norm = clip_factor(grads, t)
        applied = tf.math.is_finite(mean_loss) & tf.math.is_finite(grad_norm)

        def update() -> tf.Tensor:
            self.optimizer.apply(dict(zip(self.parameters, grads, strict=True)), self.parameters, lr, clip)
            for param, name, layout in self.copies:  # a tied copy takes its tensor's update
                param.assign(relayout(self.parameters[name], self.layouts[name], layout))
            return applied

        # A non-finite step leaves weights and AdamW state untouched.
        applied = tf.cond(applied, update, lambda: applied)
        if self._scaling:
            self._update_loss_scale(tf.math.is_finite(grad_norm))
        return mean_loss, grad_norm, applied, stop > 0

    def _reduce_gradients(self, grads: list[tf.Tensor], compression: Any) -> list[tf.Tensor]:
        """Horovod: the rank-averaged gradients, one grouped allreduce per bucket of
        train.gradient_bucket_mb. In the traced step each allreduce starts as soon as its bucket's
        gradients exist, while the backward pass goes on. (DistributedGradientTape's groups key
        variables by name, which a tf.Module's variables share: "Variable:0".)"""
        hvd, reduced = self.dist.hvd, list(grads)
        for bucket in self._buckets:
            averaged = hvd.grouped_allreduce([grads[i] for i in bucket], op=hvd.Average, compression=compression)
            for i, grad in zip(bucket, averaged, strict=True):
                reduced[i] = grad
        return reduced

    def _add_copies(self, grads: list) -> list[tf.Tensor]:
        """The parameters' gradients with each tied copy's (the last ones of ``grads``) added to its tensor's."""
        if not self.copies:
            return grads
        grads = [tf.convert_to_tensor(g) for g in grads]
        own, copied = grads[: len(self.parameters)], grads[len(self.parameters) :]
        index = {name: i for i, name in enumerate(self.parameters)}
        for (_, name, layout), grad in zip(self.copies, copied, strict=True):
            own[index[name]] = own[index[name]] + relayout(grad, layout, self.layouts[name])
        return own

    def _update_loss_scale(self, finite: tf.Tensor) -> None:
        """Halve the scale on an overflow; double it after SCALE_GROWTH_INTERVAL finite steps."""
        steps = tf.where(finite, self._finite_steps + 1, 0)
        grow = steps >= SCALE_GROWTH_INTERVAL
        self.loss_scale.assign(self.loss_scale * tf.where(finite, tf.where(grow, 2.0, 1.0), 0.5))
        self._finite_steps.assign(tf.where(grow, 0, steps))

    def _read(self, param: tf.Variable) -> np.ndarray:
        return read(param)

    def _write(self, param: tf.Variable, value: np.ndarray) -> None:
        write(param, value)

    def _read_optimizer(self) -> tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
        opt = self.optimizer
        moments = {n: (self._read(opt.exp_avg[n]), self._read(opt.exp_avg_sq[n])) for n in self.parameters}
        return int(opt.step.numpy()[0]), moments

    def _write_optimizer(self, step: int, moments: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        opt = self.optimizer
        opt.step.assign([step])
        for name, (exp_avg, exp_avg_sq) in moments.items():
            self._write(opt.exp_avg[name], exp_avg)
            self._write(opt.exp_avg_sq[name], exp_avg_sq)

    def broadcast_initial_state(self) -> None:
        hvd = self.dist.hvd
        # Horovod: rank 0's weights and AdamW state (created eagerly above) become every rank's.
        hvd.broadcast_variables([*self._variables, *self.optimizer.variables_in_order()], root_rank=0)

    def seed_step(self, seed: int) -> None:
        self._seed = seed

    def train_step(self, batch: Batch, lr: float, stop_requested: bool = False) -> StepResult:
        weights = None if batch.weights is None else tf.constant(batch.weights)
        loss, grad_norm, applied, stop = self._train_step(
            map_inputs(tf.constant, batch.inputs),
            tf.constant(batch.targets),
            weights,
            tf.constant(loss_shares(batch)),
            tf.constant(lr, tf.float32),
            tf.constant(self._seed, tf.int64),
            tf.constant(float(stop_requested)),
            self.dist.size == 1,
        )
        loss = float(loss)
        outcome = step_outcome(bool(applied), loss, self._scaling)
        loss_scale = float(self.loss_scale) if self._scaling else 1.0  # reading the variable costs ~0.3 ms a step
        return StepResult(loss, float(grad_norm), outcome, loss_scale, bool(stop))

    def eval_sums(self, batch: Batch) -> EvalSums:
        weights = None if batch.weights is None else tf.constant(batch.weights)
        sums = self._eval(map_inputs(tf.constant, batch.inputs), tf.constant(batch.targets), weights)
        return EvalSums(*(float(x) for x in sums))

    def predict(self, inputs: Inputs) -> np.ndarray:
        return self._predict(map_inputs(tf.constant, inputs)).numpy()


def make_backend(family: Family, config: RunConfig, dist: Distributed, init_seed: int) -> TFBackend:
    return TFBackend(family, config, dist, init_seed)


def make_predictor(family: Family, config: Any, state: State):
    """A batch's inputs (B, ...) -> logits, float32 numpy, for sampling and beam search; no Horovod.
    Traced once for any batch and length (a decoding step costs an eager call's fraction)."""
    model = build_model(family, config)
    import_state(model, state, family.parameter_map("tf"))
    logits = Traced(lambda inputs: family.logits_of(call(model, inputs, training=False)))

    def predict(inputs: Inputs) -> np.ndarray:
        return logits(map_inputs(tf.constant, inputs)).numpy()

    return predict
