"""Losses: L1, LPIPS-VGG (plain torch), and VA-VAE's vision-foundation alignment (m_cos + m_dms) with a
DINOv2 teacher. Teachers load from local files only; random stand-ins only when the config allows them.

Obtaining the weights (once, on a machine with network), then point `teachers.*` at the files:
- VGG16 trunk: torchvision's ImageNet `vgg16-397923af.pth` (what `torchvision.models.vgg16(weights=
  "IMAGENET1K_V1")` downloads; keys `features.N.weight|bias`), or the same as .safetensors.
- LPIPS linear heads: `lpips/weights/v0.1/vgg.pth`, shipped inside the `lpips` package's wheel on PyPI
  (`pip download lpips --no-deps`, unzip; keys `linK.model.1.weight`).
- DINOv2: a local copy of `facebook/dinov2-large` (the configs align to block 12 of its 24; any DINOv2
  size works with a `teachers.dinov2_layer` within its depth) saved with the Hugging Face CLI or
  `Dinov2Model.save_pretrained(DIR)` (loaded with `Dinov2Model.from_pretrained(DIR, local_files_only=True)`).
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .safeio import LoadError, check_tensors, first_line, load_weights

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision vgg16 `features` layout; LPIPS taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
_VGG_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_LPIPS_TAPS = (3, 8, 15, 22, 29)
_LPIPS_CH = (64, 128, 256, 512, 512)


class TeacherMissing(RuntimeError):
    """A loss term needs weights that are not configured (and random stand-ins are not allowed)."""


def _load_checked(path: str | Path, want: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors of a weights file whose names start with `prefix` (torchvision's file also holds the
    classifier), refused unless they are exactly `want`'s names, shapes and dtypes."""
    got = {k: v for k, v in load_weights(path).items() if k.startswith(prefix)}
    check_tensors(path, got, want)
    return got


class LPIPS(nn.Module):
    """LPIPS-VGG (v0.1) on images in [-1, 1]; returns the per-image distance (B,). Frozen."""

    def __init__(self, vgg_path: str = "", heads_path: str = "", allow_random: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers)  # names match torchvision: features.0.weight, ...
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _LPIPS_CH)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        if vgg_path and heads_path:
            trunk = {f"features.{k}": v for k, v in self.features.state_dict().items()}
            trunk = _load_checked(vgg_path, trunk, "features.")
            heads = {f"lin{i}.model.1.weight": lin.weight for i, lin in enumerate(self.lins)}
            heads = _load_checked(heads_path, heads, "lin")  # both files are read before either is used
            self.features.load_state_dict({k[len("features."):]: v for k, v in trunk.items()})
            for i, lin in enumerate(self.lins):
                lin.weight.data.copy_(heads[f"lin{i}.model.1.weight"])
        elif allow_random:
            log.warning("LPIPS uses a RANDOM VGG stand-in (teachers.allow_random_teachers=true): tests only")
            for lin in self.lins:
                lin.weight.data.abs_()  # non-negative heads keep the distance >= 0, as trained ones are
        else:
            raise TeacherMissing("LPIPS needs teachers.lpips_vgg and teachers.lpips_heads (local files); "
                                 "see training/losses.py for where to get them")
        self.requires_grad_(False).eval()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h = torch.cat([a, b]).float()
        h = (h - self.shift) / self.scale
        total = torch.zeros(a.shape[0], device=a.device)
        k = 0
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in _LPIPS_TAPS:
                fa, fb = h.chunk(2)
                fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                total = total + self.lins[k]((fa - fb) ** 2).mean(dim=(1, 2, 3))
                k += 1
                if k == len(_LPIPS_TAPS):
                    break
        return total


def dinov2_folder(path: str | Path) -> Path:
    """A local DINOv2 folder (config.json and .safetensors weights), checked before transformers sees it:
    given a path that does not exist, `from_pretrained` takes it for a hub id and goes to the network."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder (weights are local only; see README)", str(p))
    if not (p / "config.json").is_file():
        raise LoadError(f"{p}: no config.json (expected a folder written by save_pretrained; see training/losses.py)")
    if not any(f.is_file() for f in p.glob("*.safetensors")):
        raise LoadError(f"{p}: no .safetensors weights (pickled .bin weights are not loaded: they can run code)")
    return p


def _transformers():
    """The transformers module, set to local files only first (even where a call forgets
    local_files_only): the environment is read when transformers is imported."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers

    return transformers


STAND_INS = ("tiny", "large")


def stand_in_config(name: str, layer: int = 12):
    """The Dinov2Config of a random DINOv2 stand-in (a `transformers.Dinov2Config`).

    tiny: hidden 48, 2 heads, as deep as `layer` (at least 2), so a config written for the real teacher
    runs in tests and smoke runs at almost no cost. large: DINOv2-L's shape (hidden 1024, 24 blocks, 16
    heads, MLP 4096, patch 14, 518 px), so a benchmark pays the real teacher's time and memory without
    its weights. Anything else: ValueError."""
    if name == "tiny":
        kw = {"hidden_size": 48, "num_hidden_layers": max(2, layer), "num_attention_heads": 2, "image_size": 56}
    elif name == "large":
        kw = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "image_size": 518}
    else:
        raise ValueError(f"DINOv2 stand_in {name!r}: use one of {', '.join(STAND_INS)}")
    return _transformers().Dinov2Config(mlp_ratio=4, patch_size=14, **kw)


class DinoTeacher(nn.Module):
    """Features of DINOv2 block `layer` (1..depth), matched to a latent grid (h, w): (B, D, h, w). Frozen.

    resolution: 0 = one patch per latent position (input (h·14, w·14) px); N > 0 = m patches per latent
    position and side, m = max(1, round(N / (14·max(h, w)))), features mean-pooled m x m to (h, w), so an
    f32 latent (8 x 8 at 256 px) can still be aligned to DINO features of a 224 px input.
    stand_in: the shape of the random teacher used without weights when `allow_random` (`stand_in_config`:
    "tiny", the default, or "large", DINOv2-L's shape, for benchmarks)."""

    def __init__(self, path: str = "", layer: int = 12, allow_random: bool = False, resolution: int = 0,
                 stand_in: str = "tiny") -> None:
        super().__init__()
        folder = dinov2_folder(path) if path else None
        cfg = stand_in_config(stand_in, layer)  # checked even when unused: a typo fails at once
        hf = _transformers()

        if folder is not None:
            try:
                self.net = hf.Dinov2Model.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)
            except Exception as e:  # transformers raises many types for a broken folder: name it, in one line
                raise LoadError(f"{folder}: not a loadable DINOv2 folder ({first_line(e)})") from None
        elif allow_random:
            log.warning("alignment uses a RANDOM %s DINOv2 stand-in (teachers.allow_random_teachers=true)", stand_in)
            self.net = hf.Dinov2Model(cfg)
        else:
            raise TeacherMissing("the alignment loss needs teachers.dinov2 (a local DINOv2 folder); "
                                 "see training/losses.py for where to get it")
        depth = self.net.config.num_hidden_layers
        if not 1 <= layer <= depth:  # hidden_states[0] is the patch embedding, [depth] the last block
            where = f" in {folder}" if folder else ""
            raise ValueError(f"teachers.dinov2_layer={layer}: out of range for the DINOv2{where}, of depth "
                             f"{depth} (valid: 1..{depth})")
        if resolution < 0:
            raise ValueError(f"teachers.dino_resolution={resolution}: must be >= 0 px")
        # Blocks after the aligned one never reach the loss: drop them (DINOv2-L at layer 12 runs half its
        # blocks). hidden_states[layer] is the same tensor with or without them.
        self.net.encoder.layer = self.net.encoder.layer[:layer]
        self.layer, self.resolution = layer, resolution
        self.patch = self.net.config.patch_size
        self.dim = self.net.config.hidden_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    @torch.no_grad()
    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        h, w = grid
        m = max(1, round(self.resolution / (self.patch * max(h, w)))) if self.resolution else 1
        x = ((x.float() + 1) / 2 - self.mean) / self.std
        x = F.interpolate(x, size=(h * m * self.patch, w * m * self.patch), mode="bicubic", align_corners=False,
                          antialias=True)
        out = self.net(pixel_values=x, output_hidden_states=True)
        tokens = out.hidden_states[self.layer][:, 1:]  # drop CLS
        feat = tokens.transpose(1, 2).reshape(x.shape[0], self.dim, h * m, w * m)
        return F.avg_pool2d(feat, m) if m > 1 else feat


def alignment_loss(zp: torch.Tensor, feat: torch.Tensor, m_cos: float, m_dist: float,
                   max_positions: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """VA-VAE's (L_mcos, L_mdms) for projected latents zp and teacher features feat, both (B, D, h, w).

    L_mcos = mean ReLU(1 - m_cos - cos(zp_p, f_p)); L_mdms = mean over position pairs of
    ReLU(|cos(zp_p, zp_q) - cos(f_p, f_q)| - m_dist), on at most `max_positions` positions per image
    (a random subset from the global torch RNG, which checkpoints save).
    """
    zp, feat = zp.float(), feat.float()
    l_mcos = F.relu(1 - m_cos - F.cosine_similarity(zp, feat, dim=1)).mean()
    z = F.normalize(zp.flatten(2), dim=1)  # (B, D, N)
    f = F.normalize(feat.flatten(2), dim=1)
    n = z.shape[-1]
    if n > max_positions:
        idx = torch.randperm(n)[:max_positions].to(z.device)
        z, f = z[..., idx], f[..., idx]
    diff = (z.transpose(1, 2) @ z - f.transpose(1, 2) @ f).abs()
    l_mdms = F.relu(diff - m_dist).mean()
    return l_mcos, l_mdms


def adaptive_weight(rec_loss: torch.Tensor, align_loss: torch.Tensor, last_layer: torch.Tensor) -> torch.Tensor:
    """VA-VAE's weight: ||grad rec|| / ||grad align|| at the encoder's last conv (detached, clamped)."""
    g_rec = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_align = torch.autograd.grad(align_loss, last_layer, retain_graph=True)[0]
    return (g_rec.norm() / (g_align.norm() + 1e-4)).clamp(0.0, 1e8).detach()
