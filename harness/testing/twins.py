"""The twin checks both twin test files make: torch and TF logits, loss and gradients of the same
batch, from the same weights, agree within the bounds below; the results it compares, which
benchmarks/twin_agreement.py prints; and a family's two twins from one state."""

import numpy as np
import tensorflow as tf
import torch

from harness.contract.mapping import IDENTITY_MAP
from harness.contract.state import State
from harness.contract.task import map_inputs
from models_tf import ops as tf_ops
from models_torch import ops as torch_ops

# fp32 on CPUs, 10x the worst seen over 10 initial states and batches of every config in
# harness.testing.gpt and .bert (2026-12-02, torch 2.13, TF 2.21; the worst config in brackets).
LOGITS_ATOL = 2e-6  # largest |logit difference|; worst 1.8e-7 (gpt tiny, bert tiny)
LOSS_RTOL = 3e-6  # relative loss difference; worst 2.6e-7 (gpt dropout)
GRADIENT_RTOL = 6e-6  # largest |gradient difference| / that parameter's gradient norm; worst 6.1e-7 (tiny-classify)


def family_twins(family, config, state: State | None = None):
    """``family``'s torch and TF models for ``config``, both holding ``state`` (by default the family's
    initial state of seed 0; the torch one in eval mode)."""
    state = family.init_state(config, 0) if state is None else state
    pt = family.implementation("torch")(config)
    torch_ops.import_state(pt, state, family.parameter_map("torch"))
    pt.eval()
    tfm = family.implementation("tf")(config)
    tf_ops.import_state(tfm, state, family.parameter_map("tf"))
    return pt, tfm


def twin_results(pt, tfm, inputs, targets, weights=None, family=None) -> tuple[tuple, tuple]:
    """Each twin's (logits, loss, {neutral parameter name: gradient}) on the same batch, in numpy:
    torch's, then TF's (TF in inference mode; ``pt`` put in eval mode by the caller). The gradients
    go through ``family``'s parameter maps, as the state does (none: the names are the neutral ones)."""
    maps = {fw: IDENTITY_MAP if family is None else family.parameter_map(fw) for fw in ("torch", "tf")}
    logits_of = (lambda output: output) if family is None else family.logits_of  # noqa: E731
    losses = {"torch": torch_ops.cross_entropy, "tf": tf_ops.cross_entropy}
    if family is not None:
        losses = {fw: family.loss(fw) or loss for fw, loss in losses.items()}
    pt_weights = None if weights is None else torch.from_numpy(weights)
    pt_logits = logits_of(torch_ops.call(pt, map_inputs(torch.from_numpy, inputs)))
    pt_loss = losses["torch"](pt_logits, torch.from_numpy(targets), pt_weights, 0.0)
    pt_loss.backward()
    own_grads = {n: p.grad.numpy() for n, p in pt.named_parameters() if n not in maps["torch"].fixed}
    pt_grads = maps["torch"].to_neutral("the torch model", own_grads, gradients=True)
    tf_names, variables = zip(*tf_ops.named_parameters(tfm), strict=True)
    tf_weights = None if weights is None else tf.constant(weights)
    with tf.GradientTape() as tape:
        tf_logits = logits_of(tf_ops.call(tfm, map_inputs(tf.constant, inputs), training=False))
        tf_loss = losses["tf"](tf_logits, tf.constant(targets), tf_weights, 0.0)
    grads = (tf.convert_to_tensor(g).numpy() for g in tape.gradient(tf_loss, variables))
    tf_grads = maps["tf"].to_neutral("the tf model", dict(zip(tf_names, grads, strict=True)), gradients=True)
    return (pt_logits.detach().numpy(), pt_loss.item(), pt_grads), (np.asarray(tf_logits), float(tf_loss), tf_grads)


def assert_gradients_agree(pt, tfm, names, inputs, targets, weights=None, family=None) -> tuple[tuple, tuple]:
    """``pt`` and ``tfm`` hold the same weights; ``names`` are the family's parameter names. Returns
    ``twin_results``' results, for the caller's checks of the logits and the loss."""
    results = twin_results(pt, tfm, inputs, targets, weights, family)
    (_, _, pt_grads), (_, _, tf_grads) = results
    assert set(pt_grads) == set(tf_grads) == set(names)
    for n, g in pt_grads.items():
        norm = np.linalg.norm(g)
        assert norm > 0, f"{n} has a zero gradient"
        assert np.max(np.abs(g - tf_grads[n])) <= GRADIENT_RTOL * norm, n
    return results
