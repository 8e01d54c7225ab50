"""Attention-free convolutional autoencoders with a global skip connection (DC-AE style shortcut).

A light encoder and a heavier decoder; the encoder is deterministic (no KL) and there is no discriminator.
Global skip: `pixel_unshuffle(x, f)` folded to C channels by group-mean is added to the latent, and the
mirror (`repeat_interleave` to 3f² channels, then `pixel_shuffle(z, f)`) is added to the decoder output,
so low-frequency colour bypasses the convolutional bodies. Images are float in [-1, 1], (B, 3, H, W), H and W
multiples of f. Registry: `MODELS["f16c64"]` etc.; `build_model(name)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """f: spatial compression (power of 2); c: latent channels; *_ch: channels per resolution level
    (log2(f) + 1 entries, full resolution first); *_blocks: residual blocks per level."""

    f: int
    c: int
    enc_ch: tuple[int, ...]
    dec_ch: tuple[int, ...]
    enc_blocks: int = 1
    dec_blocks: int = 2

    def __post_init__(self) -> None:
        levels = int(math.log2(self.f))
        if 2**levels != self.f:
            raise ValueError(f"f={self.f} is not a power of 2")
        if len(self.enc_ch) != levels + 1 or len(self.dec_ch) != levels + 1:
            raise ValueError(f"enc_ch/dec_ch need log2(f)+1 = {levels + 1} entries")
        if (3 * self.f * self.f) % self.c:
            raise ValueError(f"3*f^2={3 * self.f**2} is not a multiple of c={self.c} (global skip)")


MODELS: dict[str, ModelConfig] = {
    # The report's four settings; encoder about a quarter of the decoder's cost.
    "f16c64": ModelConfig(16, 64, (64, 128, 256, 256, 512), (128, 256, 512, 512, 512), 1, 2),
    "f16c128": ModelConfig(16, 128, (64, 128, 256, 256, 512), (128, 256, 512, 512, 512), 1, 2),
    "f32c128": ModelConfig(32, 128, (64, 128, 256, 256, 512, 512), (128, 256, 512, 512, 512, 512), 1, 2),
    "f32c192": ModelConfig(32, 192, (64, 128, 256, 256, 512, 512), (128, 256, 512, 512, 512, 512), 1, 2),
    # Tiny variants for tests and CPU smoke runs.
    "tiny-f8c16": ModelConfig(8, 16, (16, 16, 32, 32), (16, 32, 32, 64), 1, 1),
    "tiny-f16c32": ModelConfig(16, 32, (16, 16, 32, 32, 64), (16, 32, 32, 64, 64), 1, 1),
}


def _groups(ch: int) -> int:
    return math.gcd(ch, 32) if ch >= 8 else 1


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


def space_to_channel(x: torch.Tensor, f: int, c: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B, c, H/f, W/f): pixel_unshuffle, then mean over groups of 3f²/c channels."""
    y = F.pixel_unshuffle(x, f)
    b, n, h, w = y.shape
    return y.view(b, c, n // c, h, w).mean(dim=2)


def channel_to_space(z: torch.Tensor, f: int, out_ch: int = 3) -> torch.Tensor:
    """(B, c, h, w) -> (B, out_ch, h*f, w*f): repeat_interleave to out_ch*f² channels, then pixel_shuffle."""
    return F.pixel_shuffle(z.repeat_interleave(out_ch * f * f // z.shape[1], dim=1), f)


def _levels(ch: tuple[int, ...], blocks: int, resample) -> nn.Sequential:
    """Residual blocks per level, with `resample(channels)` layers between levels (down or up)."""
    layers: list[nn.Module] = []
    for i in range(len(ch)):
        cin = ch[max(i - 1, 0)]
        for j in range(blocks):
            layers.append(ResBlock(cin if j == 0 else ch[i], ch[i]))
        if i < len(ch) - 1:
            layers += resample(ch[i])
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        ch = cfg.enc_ch
        self.conv_in = nn.Conv2d(3, ch[0], 3, padding=1)
        self.body = _levels(ch, cfg.enc_blocks, lambda c: [nn.Conv2d(c, c, 3, stride=2, padding=1)])
        self.norm_out = nn.GroupNorm(_groups(ch[-1]), ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], cfg.c, 3, padding=1)  # "last conv" for the adaptive weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.norm_out(self.body(self.conv_in(x)))))


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        ch = cfg.dec_ch[::-1]  # latent resolution first
        self.conv_in = nn.Conv2d(cfg.c, ch[0], 3, padding=1)
        self.body = _levels(ch, cfg.dec_blocks, lambda c: [nn.Upsample(scale_factor=2, mode="nearest"),
                                                            nn.Conv2d(c, c, 3, padding=1)])
        self.norm_out = nn.GroupNorm(_groups(ch[-1]), ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.norm_out(self.body(self.conv_in(z)))))


class Autoencoder(nn.Module):
    """encode: (B,3,H,W) in [-1,1] -> (B,C,H/f,W/f); decode: the inverse. forward returns (recon, latent)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x) + space_to_channel(x, self.cfg.f, self.cfg.c)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z) + channel_to_space(z, self.cfg.f)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z


def build_model(name: str) -> Autoencoder:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    return Autoencoder(MODELS[name])


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@torch.no_grad()
def macs_per_pixel(m: nn.Module, x: torch.Tensor, pixels: int) -> float:
    """Multiply-accumulates of m's convolutions on input x, divided by `pixels` (image pixels)."""
    total = 0

    def hook(mod: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total += out.numel() // out.shape[0] * k

    handles = [mod.register_forward_hook(hook) for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    try:
        m(x)
    finally:
        for h in handles:
            h.remove()
    return total / pixels
