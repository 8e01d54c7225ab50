"""Attention-free convolutional autoencoders with DC-AE style shortcuts (global, local or none).

A light encoder and a heavier decoder; the encoder is deterministic (no KL) and there is no discriminator.
Images are float in [-1, 1], (B, 3, H, W), H and W multiples of f. Registry: `MODELS["f16c64"]` etc.;
`build_model(name, skip="global", decoder_skip=True)`. The shortcuts have no parameters, so every mode
has the same state_dict keys; which one a checkpoint was trained with is in its config (`arch`).

- `skip="global"` (default): `pixel_unshuffle(x, f)` folded to C channels by group-mean is added to the
  latent, so low-frequency colour bypasses the convolutional encoder. `decoder_skip=True` also adds the
  mirror (`repeat_interleave` to 3f² channels, then `pixel_shuffle(z, f)`) to the decoder output. The
  report describes the encoder-side global skip only; the decoder-side mirror is this project's addition,
  kept on by default because the first checkpoints were trained with it.
- `skip="local"`: the report's local skip connections (LSC), DC-AE's residual autoencoding: every stride-2
  downsampling stage of the encoder gets `space_to_channel(h, 2, C)` (pixel-unshuffle, group-mean to the
  same C channels: a 2x2 mean) added to its output, and every upsampling stage of the decoder gets
  `channel_to_space(h, 2, C)` (channel repeat, pixel-shuffle: nearest 2x). No global shortcut.
- `skip="none"`: no shortcut; only the residual blocks' own ones. `decoder_skip` matters only for global.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

SKIPS = ("global", "local", "none")


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
    # The report's four settings. Measured with macs_per_pixel (kMAC per image pixel, encoder / decoder):
    # f16c64 254 / 3683, f16c128 255 / 3684, f32c128 260 / 3701, f32c192 261 / 3701: the encoder costs
    # about 7 % of the decoder (1/14), not a quarter; parameters 7.7-15.4 M / 40-53 M.
    "f16c64": ModelConfig(16, 64, (64, 128, 256, 256, 512), (128, 256, 512, 512, 512), 1, 2),
    "f16c128": ModelConfig(16, 128, (64, 128, 256, 256, 512), (128, 256, 512, 512, 512), 1, 2),
    "f32c128": ModelConfig(32, 128, (64, 128, 256, 256, 512, 512), (128, 256, 512, 512, 512, 512), 1, 2),
    "f32c192": ModelConfig(32, 192, (64, 128, 256, 256, 512, 512), (128, 256, 512, 512, 512, 512), 1, 2),
    # Tiny variants for tests and CPU smoke runs (encoder about 28 % of the decoder's MACs).
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
    """(B, C_in, H, W) -> (B, c, H/f, W/f): pixel_unshuffle, then mean over groups of C_in·f²/c channels."""
    y = F.pixel_unshuffle(x, f)
    b, n, h, w = y.shape
    return y.view(b, c, n // c, h, w).mean(dim=2)


def channel_to_space(z: torch.Tensor, f: int, out_ch: int = 3) -> torch.Tensor:
    """(B, c, h, w) -> (B, out_ch, h*f, w*f): repeat_interleave to out_ch*f² channels, then pixel_shuffle."""
    return F.pixel_shuffle(z.repeat_interleave(out_ch * f * f // z.shape[1], dim=1), f)


def _run(fn: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor, ckpt: bool) -> torch.Tensor:
    """fn(h), under activation checkpointing when asked and gradients are being recorded."""
    return checkpoint(fn, h, use_reentrant=False) if ckpt and torch.is_grad_enabled() else fn(h)


class Levels(nn.Sequential):
    """Residual blocks per level with a resampling stage between levels (`down`: stride-2 conv; else
    nearest 2x + conv). Children are numbered as a plain Sequential's, so state_dict keys do not depend on
    the shortcut mode. local: add the DC-AE shortcut around each resampling stage."""

    def __init__(self, ch: tuple[int, ...], blocks: int, down: bool, local: bool) -> None:
        layers: list[nn.Module] = []
        units: list[tuple[int, int, bool]] = []  # (first child, end child, is a resampling stage)
        for i in range(len(ch)):
            cin = ch[max(i - 1, 0)]
            for j in range(blocks):
                units.append((len(layers), len(layers) + 1, False))
                layers.append(ResBlock(cin if j == 0 else ch[i], ch[i]))
            if i < len(ch) - 1:
                c = ch[i]
                stage = ([nn.Conv2d(c, c, 3, stride=2, padding=1)] if down else
                         [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)])
                units.append((len(layers), len(layers) + len(stage), True))
                layers += stage
        super().__init__(*layers)
        self.units, self.down, self.local = units, down, local

    def unit(self, start: int, end: int, resample: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        """Children start..end-1 as one function (one checkpointed unit), with the shortcut if local."""
        mods = [self[k] for k in range(start, end)]
        shortcut = self.local and resample

        def fn(h: torch.Tensor) -> torch.Tensor:
            out = h
            for m in mods:
                out = m(out)
            if shortcut:
                c = h.shape[1]
                out = out + (space_to_channel(h, 2, c) if self.down else channel_to_space(h, 2, c))
            return out

        return fn

    def forward(self, h: torch.Tensor, ckpt: bool = False) -> torch.Tensor:
        for u in self.units:
            h = _run(self.unit(*u), h, ckpt)
        return h


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig, local: bool = False) -> None:
        super().__init__()
        ch = cfg.enc_ch
        self.checkpointing = False
        self.conv_in = nn.Conv2d(3, ch[0], 3, padding=1)
        self.body = Levels(ch, cfg.enc_blocks, down=True, local=local)
        self.norm_out = nn.GroupNorm(_groups(ch[-1]), ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], cfg.c, 3, padding=1)  # "last conv" for the adaptive weight

    def _out(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.norm_out(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run(self._out, self.body(self.conv_in(x), self.checkpointing), self.checkpointing)


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig, local: bool = False) -> None:
        super().__init__()
        ch = cfg.dec_ch[::-1]  # latent resolution first
        self.checkpointing = False
        self.conv_in = nn.Conv2d(cfg.c, ch[0], 3, padding=1)
        self.body = Levels(ch, cfg.dec_blocks, down=False, local=local)
        self.norm_out = nn.GroupNorm(_groups(ch[-1]), ch[-1])
        self.conv_out = nn.Conv2d(ch[-1], 3, 3, padding=1)

    def _out(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.norm_out(h)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _run(self._out, self.body(self.conv_in(z), self.checkpointing), self.checkpointing)


class Autoencoder(nn.Module):
    """encode: (B,3,H,W) in [-1,1] -> (B,C,H/f,W/f); decode: the inverse. forward returns (recon, latent).
    skip / decoder_skip: see the module docstring."""

    def __init__(self, cfg: ModelConfig, skip: str = "global", decoder_skip: bool = True) -> None:
        super().__init__()
        if skip not in SKIPS:
            raise ValueError(f"skip={skip!r}: expected one of {', '.join(SKIPS)}")
        self.cfg, self.skip, self.decoder_skip = cfg, skip, bool(decoder_skip)
        self.encoder = Encoder(cfg, local=skip == "local")
        self.decoder = Decoder(cfg, local=skip == "local")

    @property
    def arch(self) -> dict[str, str | bool]:
        """The `build_model` keyword arguments that rebuild this architecture (a config's `arch` section)."""
        return {"skip": self.skip, "decoder_skip": self.decoder_skip}

    def set_checkpointing(self, on: bool) -> None:
        """Activation checkpointing of every encoder and decoder block (recomputed in backward)."""
        self.encoder.checkpointing = self.decoder.checkpointing = bool(on)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)
        return z + space_to_channel(x, self.cfg.f, self.cfg.c) if self.skip == "global" else z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        xr = self.decoder(z)
        return xr + channel_to_space(z, self.cfg.f) if self.skip == "global" and self.decoder_skip else xr

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z


def build_model(name: str, skip: str = "global", decoder_skip: bool = True) -> Autoencoder:
    """The registry model `name` with shortcut mode `skip` (global | local | none); `decoder_skip` adds the
    decoder-side mirror of the global skip (this project's addition; ignored unless skip is global)."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    return Autoencoder(MODELS[name], skip, decoder_skip)


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
