import io

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.utils import polyak_update
from torch import nn

from sb3_equivariant.group import cyclic_group, dihedral_group, flip_group
from sb3_equivariant.nn import EquivariantConv2d, EquivariantLinear, GlobalPool2d, GroupPool, check_equivariance
from sb3_equivariant.representation import (
    ImageAction,
    copies,
    dihedral_action,
    flip_action,
    permutation,
    regular,
    rotation_action,
    signed_permutation,
    trivial,
)

C2, C4, D4 = flip_group(), cyclic_group(4), dihedral_group(4)
ATOL = 1e-5

LINEAR_CASES = {
    "C2 signed->regular": (signed_permutation(C2, None, {1: [-1, -1, -1, -1]}), regular(C2)),
    "C2 regular->perm": (regular(C2), permutation(C2, {1: [1, 0]})),
    "C2 regular->signed": (regular(C2), signed_permutation(C2, None, {1: [-1]})),
    "C2 regular->trivial": (regular(C2), trivial(C2)),
    "C4 regular->regular": (regular(C4), regular(C4)),
    "C4 regular->perm": (regular(C4), permutation(C4, {1: [0, 2, 3, 4, 1]})),
    "C4 image->regular": (ImageAction(rotation_action(), channels=1).as_representation(5, 5), regular(C4)),
    "D4 regular->regular": (regular(D4), regular(D4)),
    "D4 perm->regular": (permutation(D4, {1: [1, 2, 3, 0], 4: [0, 3, 2, 1]}), regular(D4)),
    "D4 regular->signed": (regular(D4), signed_permutation(D4, {1: [1, 0], 4: [0, 1]}, {1: [-1, 1], 4: [-1, 1]})),
}


@pytest.mark.parametrize("basis_kind", ["equivariant"])
@pytest.mark.parametrize("case", LINEAR_CASES, ids=str)
def test_linear_is_equivariant(case: str, basis_kind: str) -> None:
    rep_in, rep_out = LINEAR_CASES[case]
    layer = EquivariantLinear(rep_in, rep_out, in_channels=3, out_channels=5, basis=basis_kind)
    with th.no_grad():
        if layer.bias_coefficients is not None:
            layer.bias_coefficients.normal_()
    x = th.randn(16, 3 * rep_in.dim)
    assert check_equivariance(layer, x, layer.in_field, layer.out_field, atol=ATOL) <= ATOL
    channelled = x.reshape(16, 3, rep_in.dim)
    th.testing.assert_close(layer(channelled).flatten(1), layer(x))


@pytest.mark.parametrize("basis_kind", ["nullspace", "random"])
def test_ablations_break_equivariance(basis_kind: str) -> None:
    rep_in, rep_out = LINEAR_CASES["C4 regular->regular"]
    layer = EquivariantLinear(rep_in, rep_out, 2, 2, basis=basis_kind)
    assert layer.check_equivariance(atol=None) > 1e-2
    assert check_equivariance(layer, layer.example_input(), layer.in_field, layer.out_field) > 1e-2


SPATIAL_CASES = {
    "C2 vflip lifting 4 frames": (flip_action("vertical"), trivial(C2, 4), 1, 8, 4, 0),
    "C2 hflip group conv": (flip_action("horizontal"), regular(C2), 3, 4, 4, 2),
    "C4 lifting stride 2": (rotation_action(), trivial(C4), 1, 7, 2, 0),
    "C4 group conv": (rotation_action(), regular(C4), 3, 5, 1, 0),
    "D4 lifting": (dihedral_action(), trivial(D4), 2, 3, 1, 1),
    "D4 group conv": (dihedral_action(), regular(D4), 2, 3, 2, 1),
    "C2 signed channels": (flip_action("horizontal"), signed_permutation(C2, {1: [1, 0, 2]}, {1: [1, 1, -1]}), 1, 3, 1, 0),
}


@pytest.mark.parametrize("case", SPATIAL_CASES, ids=str)
def test_conv_is_equivariant(case: str) -> None:
    spatial, rep_in, in_channels, kernel, stride, padding = SPATIAL_CASES[case]
    size = 84 if kernel == 8 else kernel + 3 * stride - 2 * padding  # 84: Pong frames with the paper's 8×8/4 filters
    layer = EquivariantConv2d(spatial, in_channels, 3, kernel, stride=stride, padding=padding, rep_in=rep_in)
    with th.no_grad():
        if layer.bias_coefficients is not None:
            layer.bias_coefficients.normal_()
    x = th.randn(2, layer.in_planes, size, size)
    assert layer.check_equivariance(x) <= ATOL


def test_conv_stack_with_pooling_is_invariant() -> None:
    spatial = dihedral_action()
    net = nn.Sequential(
        EquivariantConv2d(spatial, 1, 4, 5, stride=2, rep_in=trivial(D4)),
        nn.ReLU(),
        EquivariantConv2d(spatial, 4, 4, 3),
        nn.ReLU(),
        GroupPool(regular(D4), 4, "max"),
        GlobalPool2d("mean"),
    )
    x = th.randn(3, 1, 21, 21)
    assert check_equivariance(net, x, ImageAction(spatial, channels=1), trivial(D4, 4)) <= ATOL
    spatial_only = nn.Sequential(*list(net)[:4], GlobalPool2d("max"))
    assert check_equivariance(spatial_only, x, ImageAction(spatial, channels=1), copies(regular(D4), 4)) <= ATOL


def test_conv_rejects_inexact_grids_and_wrong_shapes() -> None:
    layer = EquivariantConv2d(flip_action("vertical"), 1, 2, 5, stride=2, rep_in=trivial(C2))
    with pytest.raises(ValueError, match=r"height 20 .* not exactly equivariant"):
        layer(th.randn(1, 1, 20, 21))
    layer(th.randn(1, 1, 21, 20))  # a vertical flip only constrains the height
    with pytest.raises(ValueError, match=r"expects \[B, 1, H, W\]"):
        layer(th.randn(1, 3, 21, 21))
    rot = EquivariantConv2d(rotation_action(), 1, 2, 3, rep_in=trivial(C4))
    with pytest.raises(ValueError, match="square"):
        rot(th.randn(1, 1, 9, 11))
    with pytest.raises(ValueError, match="expects inputs"):
        EquivariantLinear(regular(C4), regular(C4), 2, 2)(th.randn(3, 7))
    with pytest.raises(ValueError, match="no equivariant linear map"):
        EquivariantLinear(trivial(C2), signed_permutation(C2, None, {1: [-1]}))
    with pytest.raises(ValueError, match="permutation representation"):
        GroupPool(signed_permutation(C2, None, {1: [-1]}), 1)


def _layers() -> list[nn.Module]:
    return [
        EquivariantLinear(regular(C4), permutation(C4, {1: [0, 2, 3, 4, 1]}), 4, 3),
        EquivariantConv2d(rotation_action(), 2, 3, 3, rep_in=regular(C4)),
    ]


@pytest.mark.parametrize("index", [0, 1])
def test_export_matches(index: int) -> None:
    layer = _layers()[index]
    x = layer.example_input()
    plain = layer.export()
    assert type(plain) in (nn.Linear, nn.Conv2d)
    th.testing.assert_close(plain(x), layer(x), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("index", [0, 1])
def test_state_dict_identical_across_modes_and_strict_roundtrip(index: int) -> None:
    layer = _layers()[index]
    x = layer.example_input()
    layer.eval()
    with th.no_grad():
        y_eval = layer(x)  # fills the eval cache
    eval_state = layer.state_dict()
    layer.train()
    assert list(layer.state_dict()) == list(eval_state) == ["coefficients", "bias_coefficients"]
    for saved_mode, load_mode in [(True, False), (False, True)]:
        layer.train(saved_mode)
        buffer = io.BytesIO()
        th.save(layer.state_dict(), buffer)
        buffer.seek(0)
        clone = _layers()[index].train(load_mode)
        clone.load_state_dict(th.load(buffer), strict=True)
        with th.no_grad():
            th.testing.assert_close(clone(x), y_eval)


def test_eval_cache_is_reused_and_invalidated() -> None:
    layer = _layers()[0].eval()
    x = layer.example_input()
    with th.no_grad():
        y0 = layer(x)
        cached = layer.weight_and_bias()[0]
        assert layer.weight_and_bias()[0] is cached
        layer.coefficients.add_(1.0)  # in-place change (an optimizer step) must invalidate the cache
        y1 = layer(x)
    assert layer.weight_and_bias()[0] is not cached
    assert not th.allclose(y0, y1)
    other = _layers()[0]
    layer.load_state_dict(other.state_dict())
    with th.no_grad():
        th.testing.assert_close(layer(x), other(x))
        # SB3's target-network update writes through `.data` (no version bump): the cache must still follow it.
        target, online = _layers()[0].eval(), _layers()[0]
        online.coefficients.data.normal_()
        target(x)
        polyak_update(online.parameters(), target.parameters(), tau=1.0)
        th.testing.assert_close(target(x), online(x))


def test_gradients_flow_in_train_and_in_eval_with_grad() -> None:
    layer = _layers()[1]
    for training in (True, False):
        layer.train(training)
        layer.zero_grad()
        layer(layer.example_input()).square().sum().backward()
        assert layer.coefficients.grad is not None and layer.coefficients.grad.abs().sum() > 0


@pytest.mark.parametrize("gain", [1.0, 2**0.5])
def test_init_is_variance_preserving(gain: float) -> None:
    layer = EquivariantLinear(regular(D4), regular(D4), 64, 64)
    layer.reset_parameters(gain)
    weight = layer.weight_and_bias()[0].detach()
    expected = gain**2 / layer.fan_in
    assert abs(weight.var().item() / expected - 1.0) < 0.1
    conv = EquivariantConv2d(rotation_action(), 16, 16, 5)
    conv.reset_parameters(gain)
    assert abs(conv.weight_and_bias()[0].detach().var().item() / (gain**2 / conv.fan_in) - 1.0) < 0.1


def test_basis_is_not_a_parameter_and_moves_with_module() -> None:
    layer = _layers()[1]
    names = [n for n, _ in layer.named_parameters()]
    assert names == ["coefficients", "bias_coefficients"]
    layer = layer.double()
    assert all(b.dtype == th.float64 for b in layer.buffers() if b.is_floating_point())
    assert layer(layer.example_input().double()).dtype == th.float64


def test_weight_tying_layers_keep_no_dense_basis() -> None:
    """The equivariant NatureCNN on Pong frames: bases stay sparse (linear in the weight's size), none is cached dense."""
    from sb3_equivariant import symmetrizer

    symmetrizer.clear_cache()
    c2 = flip_group()
    flip = flip_action("vertical")
    convs = [
        EquivariantConv2d(flip, 1, 32, 8, stride=4, rep_in=trivial(c2, 4)),
        EquivariantConv2d(flip, 32, 64, 4, stride=2),
        EquivariantConv2d(flip, 64, 64, 3),
    ]
    flat = ImageAction(flip, copies(regular(c2), 64)).as_representation(7, 7)
    head = EquivariantLinear(flat, regular(c2), 1, 512)
    for layer in [*convs, head]:
        assert layer.weight_basis is None
        weight_entries = layer.block_rep_out.dim * layer.block_rep_in.dim
        buffer_entries = sum(b.numel() for b in layer.buffers())
        assert buffer_entries <= 3 * weight_entries, (layer, buffer_entries, weight_entries)  # owner, scale, bias
        layer.check_equivariance(atol=1e-5)
    assert all(array.size <= 2**20 for array in symmetrizer._CACHE.values())
    small = ImageAction(flip, copies(regular(c2), 3)).as_representation(3, 3)
    sparse = symmetrizer.orbit_basis(small, regular(c2))
    assert sparse is not None
    np.testing.assert_array_equal(sparse.dense(), symmetrizer.equivariant_basis(small, regular(c2)))


def test_conv_rep_in_is_the_channel_representation() -> None:
    channel = trivial(C4, 2)
    layer = EquivariantConv2d(rotation_action(), 3, 4, 3, rep_in=channel)
    assert layer.rep_in == channel and layer.rep_out == regular(C4)
    assert layer.patch_rep == layer.block_rep_in and layer.patch_rep.dim == 2 * 3 * 3
    assert layer.in_planes == 3 * 2 and layer.fan_in == 3 * 2 * 3 * 3
    with pytest.warns(DeprecationWarning, match="use rep_in"):
        assert layer.channel_rep_in == channel


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: EquivariantLinear("regular", regular(C4)), "EquivariantLinear expects a sb3_equivariant Representation.*str"),
        (lambda: EquivariantLinear(regular(C4), C4), "EquivariantLinear expects a sb3_equivariant Representation.*Group"),
        (lambda: EquivariantConv2d(C4, 1, 2, 3), "EquivariantConv2d expects a SpatialAction first.*got Group"),
        (lambda: GroupPool(C4, 2), "GroupPool expects a sb3_equivariant Representation"),
    ],
)
def test_layers_name_the_expected_argument_type(make, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        make()


def test_basis_kind_is_a_deprecated_alias_of_basis() -> None:
    rep_in, rep_out = signed_permutation(C2, None, {1: [-1, -1]}), regular(C2)
    with pytest.warns(DeprecationWarning, match="basis_kind= is deprecated, use basis="):
        old = EquivariantLinear(rep_in, rep_out, 2, 2, basis_kind="nullspace")
    assert old.basis == "nullspace"
    with pytest.warns(DeprecationWarning, match="basis_kind is deprecated"):
        assert old.basis_kind == "nullspace"
    with pytest.raises(TypeError, match="pass basis= only"):
        EquivariantLinear(rep_in, rep_out, 2, 2, basis="random", basis_kind="nullspace")
