"""The PyTorch and TensorFlow twins compute the same function from the same weights (fp32, CPU)."""

import math

import numpy as np
import pytest
import tensorflow as tf
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from harness.contract.state import load_state, save_state
from harness.families.gpt import FAMILY, init_state, state_shapes
from harness.testing.gpt import CONFIGS, batch
from harness.testing.twins import LOGITS_ATOL, LOSS_RTOL, assert_gradients_agree, family_twins
from models_tf import gpt as tf_gpt
from models_tf import ops as tf_ops
from models_torch import gpt as torch_gpt
from models_torch import ops as torch_ops


@pytest.mark.parametrize("name", CONFIGS)
def test_same_weights_give_same_logits_and_loss(name):
    config = CONFIGS[name]
    pt, tfm = family_twins(FAMILY, config)
    x, y = batch(config)
    with torch.no_grad():
        pt_logits = pt(torch.from_numpy(x))
        pt_loss = torch_ops.cross_entropy(pt_logits, torch.from_numpy(y)).item()
    tf_logits = tfm(tf.constant(x), training=False)
    tf_loss = float(tf_ops.cross_entropy(tf_logits, tf.constant(y)))
    assert pt_logits.shape == tuple(tf_logits.shape) == (3, config.block_size, config.vocab_size)
    assert np.max(np.abs(pt_logits.numpy() - tf_logits.numpy())) <= LOGITS_ATOL
    assert abs(pt_loss - tf_loss) / abs(pt_loss) <= LOSS_RTOL
    # The untrained model predicts nearly uniformly: a sanity check on the loss itself.
    assert abs(pt_loss - np.log(config.vocab_size)) < 0.1


@pytest.mark.parametrize("name", CONFIGS)
def test_gradients_agree_for_every_parameter(name):
    config = CONFIGS[name]
    pt, tfm = family_twins(FAMILY, config)
    x, y = batch(config)
    assert_gradients_agree(pt, tfm, state_shapes(config).keys(), x, y)


@pytest.mark.parametrize("name", ["tiny", "sinusoidal"])
def test_changing_a_later_token_never_changes_earlier_logits(name):
    config = CONFIGS[name]
    pt, tfm = family_twins(FAMILY, config)
    x, _ = batch(config, batch_size=1)
    for t in (0, config.block_size // 2, config.block_size - 2):
        changed = x.copy()
        changed[0, t + 1] = (changed[0, t + 1] + 1) % config.vocab_size
        for run in (lambda a: pt(torch.from_numpy(a)).detach().numpy(), lambda a: tfm(tf.constant(a)).numpy()):
            before, after = run(x), run(changed)
            np.testing.assert_allclose(after[0, : t + 1], before[0, : t + 1], rtol=0, atol=1e-6)
            assert np.max(np.abs(after[0, t + 1 :] - before[0, t + 1 :])) > 1e-4  # the change is visible later


@pytest.mark.parametrize("name", CONFIGS)
def test_state_round_trip_through_both_frameworks_is_bitwise(name, tmp_path):
    config = CONFIGS[name]
    pt = torch_gpt.TransformerLM(config)
    torch_ops.import_state(pt, init_state(config, seed=7))
    original = torch_ops.export_state(pt)
    tfm = tf_gpt.TransformerLM(config)
    tf_ops.import_state(tfm, original)
    save_state(tmp_path / "model.safetensors", tf_ops.export_state(tfm))
    back = torch_gpt.TransformerLM(config)
    torch_ops.import_state(back, load_state(tmp_path / "model.safetensors"))
    final = torch_ops.export_state(back)
    assert list(final) == list(original) == list(state_shapes(config))
    for n, value in original.items():
        assert value.dtype == final[n].dtype == np.float32
        assert np.array_equal(value, final[n]), n


@pytest.mark.parametrize("name", CONFIGS)
def test_parameter_count_and_names_match_the_config(name):
    config = CONFIGS[name]
    pt, tfm = family_twins(FAMILY, config)
    assert [n for n, _ in pt.named_parameters()] == [n for n, _ in tf_ops.named_parameters(tfm)]
    assert sum(p.numel() for p in pt.parameters()) == config.num_params()
    assert sum(int(np.prod(v.shape)) for _, v in tf_ops.named_parameters(tfm)) == config.num_params()


@pytest.mark.parametrize("name", [*CONFIGS, "default"])
def test_flops_per_token_counts_the_matmuls_the_torch_twin_runs(name):
    config = CONFIGS.get(name) or FAMILY.preset(name)
    model, (x, y) = torch_gpt.TransformerLM(config), batch(config)
    # torch's own count of a training step's matmuls, forward and backward. Under the math kernel, attention
    # is matmuls too (the fused CPU kernel goes uncounted): all T x T scores, as PaLM's 12·L·H·Q·T counts them.
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        torch_ops.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    # PaLM's 6N also counts 6 for each parameter that no matmul multiplies by: biases, LayerNorms and the
    # tables only looked up (positions; the token embedding when untied, as tied it is the LM head too).
    looked_up = ["wpe.weight"] if config.tie_embeddings else ["wpe.weight", "wte.weight"]
    added = sum(math.prod(s) for n, s in state_shapes(config).items() if len(s) == 1 or n in looked_up)
    assert counter.get_total_flops() == (config.flops_per_token() - 6 * added) * x.size


def test_gpt2_small_has_the_published_parameter_count():
    # GPT-2 small with its 50,257-id vocabulary: Hugging Face's gpt2 checkpoint holds 124,439,808 parameters.
    assert FAMILY.preset("gpt2-small").replace(vocab_size=50257).num_params() == 124_439_808


BAD_INPUTS = [
    (np.zeros((2, 33), np.int64), "sequence length 33 exceeds the model's block_size 32"),
    (
        np.full((2, 4), 256, np.int64),
        r"token ids must be in \[0, 256\), the model's vocab_size; received ids in \[256, 256\]",
    ),
    (np.full((2, 4), -1, np.int64), r"token ids must be in \[0, 256\).*received ids in \[-1, -1\]"),
    (np.zeros((2, 4), np.float32), "tokens must be an integer tensor, received dtype float32"),
    (np.zeros((4,), np.int64), r"tokens must have shape \(batch, seq_len\), received shape \(4,\)"),
]


@pytest.mark.parametrize(("tokens", "message"), BAD_INPUTS)
def test_bad_input_gets_the_same_message_in_both(tokens, message):
    pt, tfm = family_twins(FAMILY, FAMILY.preset("tiny"))
    with pytest.raises(ValueError, match=message):
        pt(torch.from_numpy(tokens))
    with pytest.raises(ValueError, match=message):
        tfm(tf.constant(tokens))


def test_out_of_range_ids_are_caught_inside_tf_function_too():
    _, tfm = family_twins(FAMILY, FAMILY.preset("tiny"))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"token ids must be in \[0, 256\)"):
        tf.function(tfm)(tf.constant(np.full((1, 4), 300, np.int64)))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_embd": 30, "n_head": 4}, "n_embd must be divisible by n_head, received n_embd=30, n_head=4"),
        ({"n_layer": 0}, "n_layer must be a positive integer, received 0"),
        ({"block_size": 3.5}, "block_size must be a positive integer, received 3.5"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), received 1.0"),
        ({"pos_encoding": "rotary"}, "pos_encoding must be one of .*received 'rotary'"),
    ],
)
def test_config_validation_names_the_received_values(changes, message):
    with pytest.raises(ValueError, match=message):
        FAMILY.preset("tiny").replace(**changes)


def test_a_state_from_another_config_is_refused():
    pt, tfm = family_twins(FAMILY, FAMILY.preset("tiny"))
    other = init_state(FAMILY.preset("tiny").replace(n_embd=64), seed=0)
    for ops, model in ((torch_ops, pt), (tf_ops, tfm)):
        with pytest.raises(ValueError, match=r"model state tensor 'wte.weight' is float32\(256, 64\)"):
            ops.import_state(model, other)


@pytest.mark.parametrize(
    ("precision", "torch_dtype", "tf_dtype"),
    [("bf16", torch.bfloat16, tf.bfloat16), ("fp16", torch.float16, tf.float16)],
)
def test_reduced_precision_twins_agree_to_its_rounding_and_differ_from_fp32(precision, torch_dtype, tf_dtype):
    config = CONFIGS["odd"]
    state = init_state(config, 0)
    pt = torch_gpt.TransformerLM(config, compute_dtype=torch_dtype)
    torch_ops.import_state(pt, state)
    pt.eval()
    tfm = tf_gpt.TransformerLM(config, compute_dtype=tf_dtype)
    tf_ops.import_state(tfm, state)
    fp32, _ = family_twins(FAMILY, config)
    x, _ = batch(config)
    with torch.no_grad():
        pt_logits = pt(torch.from_numpy(x)).numpy()
        fp32_logits = fp32(torch.from_numpy(x)).numpy()
    tf_logits = tfm(tf.constant(x), training=False).numpy()
    assert pt_logits.dtype == tf_logits.dtype == np.float32  # logits come back in fp32
    rounding = {"bf16": 2**-8, "fp16": 2**-11}[precision]  # unit roundoff of the matmul inputs
    scale = np.max(np.abs(fp32_logits))
    assert np.max(np.abs(pt_logits - fp32_logits)) > 0  # reduced precision really ran
    assert np.max(np.abs(pt_logits - tf_logits)) <= 8 * rounding * scale
    assert np.max(np.abs(pt_logits - fp32_logits)) <= 8 * rounding * scale


@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothing_loss_is_the_same_in_both_and_equals_the_formula(weighted):
    config, epsilon = CONFIGS["odd"], 0.1
    pt, tfm = family_twins(FAMILY, config)
    x, y = batch(config)
    weights = np.random.default_rng(2).random(y.shape).astype(np.float32) if weighted else None
    with torch.no_grad():
        logits = pt(torch.from_numpy(x)) * 30  # sharpened: an untrained model's softmax is nearly uniform
        torch_weights = None if weights is None else torch.from_numpy(weights)
        torch_loss = torch_ops.cross_entropy(logits, torch.from_numpy(y), torch_weights, epsilon).item()
    tf_weights = None if weights is None else tf.constant(weights)
    tf_logits = tfm(tf.constant(x)) * 30
    tf_loss = float(tf_ops.cross_entropy(tf_logits, tf.constant(y), tf_weights, epsilon))
    # By hand, in float64: (1 - eps) * -log p[target] + eps * mean over classes of -log p[c].
    z = logits.numpy().astype(np.float64)
    log_p = z - z.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    per_target = (1 - epsilon) * -np.take_along_axis(log_p, y[..., None], -1)[..., 0] + epsilon * -log_p.mean(-1)
    expected = per_target.mean() if weights is None else (per_target * weights).sum() / weights.sum()
    assert abs(torch_loss - tf_loss) / torch_loss <= 1e-6
    assert abs(torch_loss - expected) / expected <= 1e-6
    unsmoothed = float(tf_ops.cross_entropy(tf_logits, tf.constant(y), tf_weights))
    assert abs(unsmoothed - tf_loss) > 1e-3  # smoothing changed the loss, by far more than the tolerance


def test_dropout_in_training_draws_its_masks_from_the_seed_the_loop_sets_per_step():
    config = CONFIGS["dropout"]
    pt, tfm = family_twins(FAMILY, config)
    x, _ = batch(config)
    with torch.no_grad():
        inference = pt(torch.from_numpy(x)).numpy()  # family_twins() leaves it in eval mode
        pt.train()
        torch_runs = []
        for seed in (5, 5, 6):
            torch.manual_seed(seed)  # what the torch backend's seed_step does
            torch_runs.append(pt(torch.from_numpy(x)).numpy())
    tf_runs = []
    for seed in (5, 5, 6):
        tf.random.get_global_generator().reset_from_seed(tf.constant(seed, tf.int64))  # what the TF step does
        tf_runs.append(tfm(tf.constant(x), training=True).numpy())
    for first, again, other in (torch_runs, tf_runs):
        assert np.array_equal(first, again)  # the same step seed: the same masks
        assert np.max(np.abs(first - other)) > 1e-3  # another step's seed: other masks
        assert np.max(np.abs(first - inference)) > 1e-3  # dropout is on in training, off in inference
