"""The PyTorch and TensorFlow twins compute the same function from the same weights (fp32, CPU)."""

import numpy as np
import pytest
import tensorflow as tf
import torch

from harness.config import ModelConfig, model_preset
from harness.state import init_state, load_state, save_state, state_shapes
from models_tf import model as tf_model
from models_torch import model as torch_model

CONFIGS = {
    "tiny": model_preset("tiny"),
    # Odd sizes everywhere, an untied LM head and an odd vocabulary.
    "odd": ModelConfig(
        vocab_size=53, n_layer=3, n_head=3, n_embd=21, mlp_hidden=37, block_size=13, tie_embeddings=False
    ),
    "sinusoidal": ModelConfig(n_layer=2, n_head=3, n_embd=15, mlp_hidden=40, block_size=24, pos_encoding="sinusoidal"),
    # Dropout is part of the config but inactive in inference mode.
    "dropout": ModelConfig(n_layer=2, n_head=4, n_embd=32, mlp_hidden=64, block_size=16, dropout=0.3),
}


def twins(config: ModelConfig, seed: int = 0):
    state = init_state(config, seed)
    pt = torch_model.TransformerLM(config)
    pt.import_state(state)
    pt.eval()
    tfm = tf_model.TransformerLM(config)
    tfm.import_state(state)
    return pt, tfm


def batch(config: ModelConfig, seed: int = 1, batch_size: int = 3, seq_len: int | None = None):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, config.vocab_size, (batch_size, (seq_len or config.block_size) + 1))
    return tokens[:, :-1], tokens[:, 1:]  # inputs, next-token targets


@pytest.mark.parametrize("name", CONFIGS)
def test_same_weights_give_same_logits_and_loss(name):
    config = CONFIGS[name]
    pt, tfm = twins(config)
    x, y = batch(config)
    with torch.no_grad():
        pt_logits = pt(torch.from_numpy(x))
        pt_loss = torch_model.loss_fn(pt_logits, torch.from_numpy(y)).item()
    tf_logits = tfm(tf.constant(x), training=False)
    tf_loss = float(tf_model.loss_fn(tf_logits, tf.constant(y)))
    assert pt_logits.shape == tuple(tf_logits.shape) == (3, config.block_size, config.vocab_size)
    assert np.max(np.abs(pt_logits.numpy() - tf_logits.numpy())) <= 1e-4
    assert abs(pt_loss - tf_loss) / abs(pt_loss) <= 1e-5
    # The untrained model predicts nearly uniformly: a sanity check on the loss itself.
    assert abs(pt_loss - np.log(config.vocab_size)) < 0.1


@pytest.mark.parametrize("name", CONFIGS)
def test_gradients_agree_for_every_parameter(name):
    config = CONFIGS[name]
    pt, tfm = twins(config)
    x, y = batch(config)
    torch_model.loss_fn(pt(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    pt_grads = {n: p.grad.numpy() for n, p in pt.named_parameters()}
    names, variables = zip(*tfm.named_parameters(), strict=True)
    with tf.GradientTape() as tape:
        loss = tf_model.loss_fn(tfm(tf.constant(x), training=False), tf.constant(y))
    tf_grads = dict(zip(names, (tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, variables)), strict=True))
    assert pt_grads.keys() == tf_grads.keys() == state_shapes(config).keys()
    for n, g in pt_grads.items():
        norm = np.linalg.norm(g)
        assert norm > 0, f"{n} has a zero gradient"
        assert np.max(np.abs(g - tf_grads[n])) <= 1e-4 * norm, n


@pytest.mark.parametrize("name", ["tiny", "sinusoidal"])
def test_changing_a_later_token_never_changes_earlier_logits(name):
    config = CONFIGS[name]
    pt, tfm = twins(config)
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
    pt = torch_model.TransformerLM(config)
    pt.import_state(init_state(config, seed=7))
    original = pt.export_state()
    tfm = tf_model.TransformerLM(config)
    tfm.import_state(original)
    save_state(tmp_path / "model.safetensors", tfm.export_state())
    back = torch_model.TransformerLM(config)
    back.import_state(load_state(tmp_path / "model.safetensors"))
    final = back.export_state()
    assert list(final) == list(original) == list(state_shapes(config))
    for n, value in original.items():
        assert value.dtype == final[n].dtype == np.float32
        assert np.array_equal(value, final[n]), n


@pytest.mark.parametrize("name", CONFIGS)
def test_parameter_count_and_names_match_the_config(name):
    config = CONFIGS[name]
    pt, tfm = twins(config)
    assert [n for n, _ in pt.named_parameters()] == [n for n, _ in tfm.named_parameters()]
    assert sum(p.numel() for p in pt.parameters()) == config.num_params()
    assert sum(int(np.prod(v.shape)) for _, v in tfm.named_parameters()) == config.num_params()


def test_flops_per_token_follows_the_palm_formula():
    config = model_preset("default")
    L, H, Q, T = config.n_layer, config.n_head, config.head_size, config.block_size
    assert config.flops_per_token() == 6 * config.num_params() + 12 * L * H * Q * T
    assert 1_000_000 <= config.num_params() <= 5_000_000


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
    pt, tfm = twins(model_preset("tiny"))
    with pytest.raises(ValueError, match=message):
        pt(torch.from_numpy(tokens))
    with pytest.raises(ValueError, match=message):
        tfm(tf.constant(tokens))


def test_out_of_range_ids_are_caught_inside_tf_function_too():
    _, tfm = twins(model_preset("tiny"))
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
        model_preset("tiny").replace(**changes)


def test_a_state_from_another_config_is_refused():
    pt, tfm = twins(model_preset("tiny"))
    other = init_state(model_preset("tiny").replace(n_embd=64), seed=0)
    for model in (pt, tfm):
        with pytest.raises(ValueError, match=r"model state tensor 'wte.weight' is float32\(256, 64\)"):
            model.import_state(other)


@pytest.mark.parametrize(
    ("precision", "torch_dtype", "tf_dtype"),
    [("bf16", torch.bfloat16, tf.bfloat16), ("fp16", torch.float16, tf.float16)],
)
def test_reduced_precision_twins_agree_to_its_rounding_and_differ_from_fp32(precision, torch_dtype, tf_dtype):
    config = CONFIGS["odd"]
    state = init_state(config, 0)
    pt = torch_model.TransformerLM(config, compute_dtype=torch_dtype)
    pt.import_state(state)
    pt.eval()
    tfm = tf_model.TransformerLM(config, compute_dtype=tf_dtype)
    tfm.import_state(state)
    fp32, _ = twins(config)
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
