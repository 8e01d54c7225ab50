from __future__ import annotations

import pytest
import torch

from training.models import MODELS, build_model, count_params, macs_per_pixel


@pytest.mark.parametrize("name", list(MODELS))
def test_shapes_and_compression(name):
    cfg = MODELS[name]
    torch.manual_seed(0)
    m = build_model(name).eval()
    side = 32 if cfg.f <= 32 else cfg.f
    x = torch.rand(1, 3, side, 2 * side) * 2 - 1
    with torch.no_grad():
        z = m.encode(x)
        xr = m.decode(z)
    assert z.shape == (1, cfg.c, side // cfg.f, 2 * side // cfg.f)
    assert xr.shape == x.shape
    # compression: pixels*3 / latent values = 3 f^2 / C
    assert x.numel() / z.numel() == 3 * cfg.f**2 / cfg.c


@pytest.mark.parametrize("name", list(MODELS))
def test_encoder_lighter_than_decoder(name):
    m = build_model(name)
    assert count_params(m.encoder) < count_params(m.decoder)
    if name.startswith("tiny"):
        x = torch.rand(1, 3, 32, 32)
        assert macs_per_pixel(m.encoder, x, 32 * 32) < macs_per_pixel(m.decoder, m.encode(x), 32 * 32)


def test_global_skip_carries_information():
    torch.manual_seed(0)
    m = build_model("tiny-f8c16").eval()
    with torch.no_grad():
        m.encoder.conv_out.weight.zero_()
        m.encoder.conv_out.bias.zero_()
        a = torch.rand(1, 3, 32, 32) * 2 - 1
        b = torch.rand(1, 3, 32, 32) * 2 - 1
        assert m.encoder(a).abs().max() == 0  # the body contributes nothing
        za, zb = m.encode(a), m.encode(b)
    assert not torch.allclose(za, zb)
    # the skip is the block mean of pixel_unshuffle: a flat image gives a flat latent of that value
    with torch.no_grad():
        assert torch.allclose(m.encode(torch.full((1, 3, 32, 32), 0.25)), torch.full((1, 16, 4, 4), 0.25))


def test_unknown_model_is_named():
    with pytest.raises(KeyError, match="f99"):
        build_model("f99")
