"""The shared ViT's attention and LoMaR's iRPE against direct references."""
import math

import pytest
import torch

from mim_pretrain.models.utils import (IRPEKeyBias, irpe_bucket_ids,
                                       num_irpe_buckets, sincos_pos_embed_2d)
from mim_pretrain.models.vit import (Attention, PatchEmbed, VisionTransformer,
                                     resolve_arch)


def _authors_axis_bucket(d, alpha=1.9, beta=3.8, gamma=15.2):
    """One offset, written straight from the authors' piecewise formula."""
    if abs(d) <= alpha:
        return int(d)
    v = alpha + math.log(abs(d) / alpha) / math.log(gamma / alpha) * (
        beta - alpha)
    v = min(float(round(v)), beta)
    return int(math.copysign(v, d))  # int() truncates toward zero


def _direct_ids(h, w):
    half = 3
    coords = [(r, c) for r in range(h) for c in range(w)]
    n = 1 + len(coords)
    ids = [[49] * n for _ in range(n)]
    for i, (ri, ci) in enumerate(coords):
        for j, (rj, cj) in enumerate(coords):
            rb = _authors_axis_bucket(ri - rj)
            cb = _authors_axis_bucket(ci - cj)
            ids[i + 1][j + 1] = (rb + half) * (2 * half + 1) + (cb + half)
    return torch.tensor(ids)


def test_axis_buckets_are_as_documented():
    assert [_authors_axis_bucket(d) for d in range(-6, 7)] == [
        -3, -3, -3, -2, -2, -1, 0, 1, 2, 2, 3, 3, 3]


@pytest.mark.parametrize('grid', [(7, 7), (14, 14), (5, 9)])
def test_bucket_ids_equal_direct_evaluation(grid):
    ids = irpe_bucket_ids(*grid)
    assert torch.equal(ids, _direct_ids(*grid))
    assert num_irpe_buckets() == 49
    assert ids[0].eq(49).all() and ids[:, 0].eq(49).all()
    assert ids[1:, 1:].max() < 49


def test_bucket_ids_are_translation_invariant():
    """A window's buckets do not depend on where it sits in the grid."""
    big = irpe_bucket_ids(14, 14, num_prefix=0)
    small = irpe_bucket_ids(7, 7, num_prefix=0)
    for top, left in [(0, 0), (3, 5), (7, 7)]:
        idx = torch.tensor([(top + r) * 14 + left + c for r in range(7)
                            for c in range(7)])
        assert torch.equal(big[idx][:, idx], small)


def test_bias_uses_the_unscaled_query():
    torch.manual_seed(0)
    rpe = IRPEKeyBias(head_dim=8)
    rpe.lookup_table_weight.data.normal_()
    q = torch.randn(2, 3, 1 + 12, 8)
    bias = rpe(q, (3, 4))
    ids = irpe_bucket_ids(3, 4)
    w = rpe.lookup_table_weight[0]
    for i, j in [(0, 0), (0, 5), (4, 0), (3, 11), (12, 1)]:
        want = q[:, :, i] @ w[:, ids[i, j]]
        assert torch.allclose(bias[:, :, i, j], want, atol=1e-6)
    with pytest.raises(ValueError, match='tokens for a 3x3 grid'):
        rpe(q, (3, 3))


def test_sdpa_attention_equals_explicit_softmax():
    torch.manual_seed(0)
    attn = Attention(32, num_heads=4, irpe=dict()).eval()
    attn.rpe_k.lookup_table_weight.data.normal_(std=0.5)
    x = torch.randn(3, 1 + 20, 32)
    out = attn(x, (4, 5))
    b, n, c = x.shape
    q, k, v = attn.qkv(x).reshape(b, n, 3, 4, 8).permute(2, 0, 3, 1, 4)
    logits = (q @ k.transpose(-2, -1)) * 8**-0.5 + attn.rpe_k(q, (4, 5))
    ref = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
    assert torch.allclose(out, attn.proj(ref), atol=1e-5)


def test_sincos_matches_mae_layout():
    emb = sincos_pos_embed_2d(16, 3, 5)
    assert emb.shape == (15, 16)
    # token (row 2, col 4): first half encodes the column, second the row
    omega = 1. / 10000**(torch.arange(4, dtype=torch.float64) / 4)
    col = torch.cat([torch.sin(4 * omega), torch.cos(4 * omega)])
    row = torch.cat([torch.sin(2 * omega), torch.cos(2 * omega)])
    assert torch.allclose(emb[2 * 5 + 4].double(), torch.cat([col, row]),
                          atol=1e-6)


def test_patch_embed_sizes():
    pe = PatchEmbed(8, 3, 16)
    tokens, grid = pe(torch.zeros(1, 3, 24, 40))
    assert tokens.shape == (1, 15, 16) and grid == (3, 5)
    with pytest.raises(ValueError, match='not divisible by the patch size'):
        pe(torch.zeros(1, 3, 25, 40))
    padded = PatchEmbed(8, 3, 16, pad=True)
    assert padded(torch.zeros(1, 3, 25, 40))[1] == (4, 5)


def test_arch_resolution_and_errors():
    assert resolve_arch('b') == (768, 12, 12, 4.0)
    with pytest.raises(ValueError, match='unknown ViT arch'):
        resolve_arch('xl')
    with pytest.raises(ValueError, match='needs keys'):
        resolve_arch(dict(embed_dims=64, depth=2))
    with pytest.raises(ValueError, match='not divisible'):
        resolve_arch(dict(embed_dims=64, depth=2, num_heads=5))
    with pytest.raises(ValueError, match='pos_embed must be'):
        VisionTransformer(dict(embed_dims=32, depth=1, num_heads=2),
                          pos_embed='abs')


def test_parameter_names_are_stable():
    vit = VisionTransformer(
        dict(embed_dims=32, depth=2, num_heads=2), patch_size=8,
        irpe=dict(), layer_scale_init=0.1, pos_embed='learned', img_size=32)
    names = set(vit.state_dict())
    for key in ('cls_token', 'pos_embed', 'patch_embed.proj.weight',
                'blocks.1.norm1.weight', 'blocks.1.attn.qkv.weight',
                'blocks.1.attn.proj.bias',
                'blocks.1.attn.rpe_k.lookup_table_weight',
                'blocks.1.ls1.gamma', 'blocks.1.ls2.gamma',
                'blocks.1.norm2.bias', 'blocks.1.mlp.fc1.weight',
                'blocks.1.mlp.fc2.bias', 'norm.weight'):
        assert key in names, key
    assert vit.state_dict()[
        'blocks.0.attn.rpe_k.lookup_table_weight'].shape == (1, 16, 50)
