from __future__ import annotations

import pytest
import torch

from training.losses import LPIPS, DinoTeacher, TeacherMissing, adaptive_weight, alignment_loss


def test_alignment_zero_when_equal_with_zero_margins():
    f = torch.randn(2, 24, 4, 4)
    mcos, mdms = alignment_loss(f.clone(), f, m_cos=0.0, m_dist=0.0)
    assert mcos.abs() < 1e-6 and mdms.abs() < 1e-6


def test_alignment_positive_otherwise_and_margins_loosen():
    torch.manual_seed(0)
    f, zp = torch.randn(2, 24, 4, 4), torch.randn(2, 24, 4, 4)
    mcos, mdms = alignment_loss(zp, f, 0.0, 0.0)
    assert mcos > 0 and mdms > 0
    loose = alignment_loss(zp, f, 0.5, 0.5)
    assert loose[0] < mcos and loose[1] < mdms


def test_alignment_subsamples_positions():
    torch.manual_seed(0)
    f, zp = torch.randn(1, 8, 16, 16), torch.randn(1, 8, 16, 16)
    mcos, mdms = alignment_loss(zp, f, 0.0, 0.0, max_positions=32)
    assert torch.isfinite(mdms) and mdms > 0


def test_adaptive_weight_is_grad_norm_ratio():
    w = torch.nn.Parameter(torch.ones(3))
    a, b = (w * 2).sum(), (w * 4).sum()
    assert torch.isclose(adaptive_weight(a, b, w), torch.tensor(0.5), atol=1e-3)


def test_teachers_refuse_without_weights():
    with pytest.raises(TeacherMissing, match="lpips_vgg"):
        LPIPS()
    with pytest.raises(TeacherMissing, match="dinov2"):
        DinoTeacher()


def test_lpips_random_standin_and_torchvision_names(tmp_path):
    torch.manual_seed(0)
    lp = LPIPS(allow_random=True)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert lp(x, x).abs().max() < 1e-6
    assert (lp(x, x.flip(-1)) > 0).all()
    # files in the published layouts load by name
    torch.save({f"features.{k}": v for k, v in lp.features.state_dict().items()}, tmp_path / "vgg16.pth")
    torch.save({f"lin{i}.model.1.weight": lin.weight for i, lin in enumerate(lp.lins)}, tmp_path / "vgg.pth")
    lp2 = LPIPS(str(tmp_path / "vgg16.pth"), str(tmp_path / "vgg.pth"))
    assert torch.allclose(lp2(x, x.flip(-1)), lp(x, x.flip(-1)))


def test_dino_teacher_grid_matches_latent():
    torch.manual_seed(0)
    t = DinoTeacher(layer=1, allow_random=True)
    feat = t(torch.rand(2, 3, 64, 48) * 2 - 1, (8, 6))
    assert feat.shape == (2, t.dim, 8, 6)


def test_the_teacher_runs_only_the_blocks_up_to_the_aligned_one():
    """Blocks after `layer` never reach the loss: they are dropped, and the features are exactly those of
    the whole network's hidden_states[layer]."""
    import transformers

    from training.losses import stand_in_config

    torch.manual_seed(0)
    full = transformers.Dinov2Model(stand_in_config("tiny", 6)).eval()
    t = DinoTeacher(layer=3, allow_random=True)
    assert len(t.net.encoder.layer) == 3
    t.net.load_state_dict({k: v for k, v in full.state_dict().items()
                           if not any(f"encoder.layer.{i}." in k for i in (3, 4, 5))})
    x = torch.rand(2, 3, 56, 56) * 2 - 1
    with torch.no_grad():
        want = full(pixel_values=((x + 1) / 2 - t.mean) / t.std, output_hidden_states=True).hidden_states[3]
        got = t(x, (4, 4))
    assert torch.equal(got, want[:, 1:].transpose(1, 2).reshape(2, t.dim, 4, 4))
