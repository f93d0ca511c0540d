"""One training step per sprite family (GAN, VAE, diffusion), behind one small interface the loop drives.

Every random draw comes from the ``torch.Generator`` the loop hands in for that step, so a run resumed from a
checkpoint repeats the same batches and noise.

Tags: a model trained with a vocabulary sees each sprite's multi-hot tags, hidden (all zero) for ``tag_dropout`` of
the sprites, so that a request without words (the category alone) is a conditional it has learnt too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

Wrap = Callable[[nn.Module], nn.Module]


@dataclass(frozen=True)
class Hyper:
    """Optimisation settings shared by the objectives (each uses the ones that concern it)."""

    lr: float = 2e-4
    warmup_steps: int = 0
    d_lr_scale: float = 2.0  # GAN: discriminator learning rate = lr * d_lr_scale
    diversity: float = 1.0  # GAN: weight of the mode-seeking term (0 = off)
    kl_weight: float = 1.0  # VAE: weight of the KL term against the summed L1 reconstruction
    cfg_dropout: float = 0.1  # diffusion: how often class and tags are hidden (classifier-free guidance)
    tag_dropout: float = 0.25  # how often a sprite's tags alone are hidden (requests by category alone)
    diff_augment: bool = False  # GAN: the discriminator sees real and fake sprites through the same random shifts,
    # cut-outs and colour changes (Zhao et al. 2020), so it cannot simply memorise a small training set
    grad_clip: float = 1.0  # 0 = off


def _randn(shape: tuple[int, ...], gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """Noise drawn on the CPU from the step's generator: the same numbers on every device."""
    return torch.randn(shape, generator=gen).to(device)


def drop_tags(tags: torch.Tensor | None, rate: float, gen: torch.Generator) -> torch.Tensor | None:
    """``tags`` with whole rows zeroed at ``rate`` (drawn from the step's generator, so resumes repeat it)."""
    if tags is None or rate <= 0:
        return tags
    keep = (torch.rand(tags.shape[0], generator=gen) >= rate).to(tags.device, tags.dtype)
    return tags * keep[:, None]


def _adam(params, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=betas)


class Objective:
    """Base: owns the optimizers; ``ema_prefix`` names the submodule whose EMA is saved for generation."""

    ema_prefix = ""

    def __init__(self, model: nn.Module, hyper: Hyper, wrap: Wrap) -> None:
        self.model = model
        self.hyper = hyper
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self._base_lr: dict[str, float] = {}

    def ema_target(self) -> nn.Module:
        return self.model.get_submodule(self.ema_prefix.rstrip(".")) if self.ema_prefix else self.model

    def set_step(self, step: int) -> None:
        """Linear learning-rate warm-up (a pure function of the step: nothing to save in checkpoints)."""
        scale = min(1.0, (step + 1) / self.hyper.warmup_steps) if self.hyper.warmup_steps > 0 else 1.0
        for name, optimizer in self.optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = self._base_lr[name] * scale

    def _add_optimizer(self, name: str, optimizer: torch.optim.Optimizer) -> None:
        self.optimizers[name] = optimizer
        self._base_lr[name] = optimizer.param_groups[0]["lr"]

    def _apply(self, name: str, loss: torch.Tensor, module: nn.Module) -> None:
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.hyper.grad_clip > 0:
            nn.utils.clip_grad_norm_(module.parameters(), self.hyper.grad_clip)
        optimizer.step()

    def train_step(
        self, x: torch.Tensor, labels: torch.Tensor, gen: torch.Generator, tags: torch.Tensor | None = None
    ) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def validate(
        self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, gen: torch.Generator,
        tags: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """Losses of ``model`` (the model as it would be saved: EMA weights) on held-out sprites."""
        raise NotImplementedError


def diff_augment(x: torch.Tensor, gen: torch.Generator, shift: int = 3, cutout: int = 8) -> torch.Tensor:
    """Differentiable augmentation for the discriminator: brightness, saturation and contrast jitter, a random
    shift of up to ``shift`` pixels (with transparent fill) and one ``cutout``-sized transparent hole per sprite.
    Alpha is a channel like the others here: a hole is a transparent square, a shift moves the silhouette."""
    n, device = x.shape[0], x.device

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=gen).to(device)

    rgb, alpha = x[:, :3], x[:, 3:]
    rgb = rgb + (uniform(n, 1, 1, 1) - 0.5) * 0.5
    mean = rgb.mean(dim=1, keepdim=True)
    rgb = (rgb - mean) * (uniform(n, 1, 1, 1) * 2) + mean
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * (uniform(n, 1, 1, 1) + 0.5) + mean
    x = torch.cat([rgb, alpha], dim=1)
    size = x.shape[-1]
    padded = F.pad(x, (shift, shift, shift, shift), value=-1.0)
    offsets = torch.randint(0, 2 * shift + 1, (2, n, 1, 1), generator=gen).to(device)
    line = torch.arange(size, device=device)
    rows, cols = offsets[0] + line[None, :, None], offsets[1] + line[None, None, :]  # (n, size, 1), (n, 1, size)
    x = padded[torch.arange(n, device=device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    corners = torch.randint(0, size - cutout + 1, (2, n, 1, 1), generator=gen).to(device)
    inside_y = (line[None, :, None] >= corners[0]) & (line[None, :, None] < corners[0] + cutout)
    inside_x = (line[None, None, :] >= corners[1]) & (line[None, None, :] < corners[1] + cutout)
    keep = (~(inside_y & inside_x)).to(x.dtype)[:, None]
    return x * keep + (keep - 1.0)  # a hole is -1 everywhere: transparent black


class GanObjective(Objective):
    """Hinge loss; one discriminator step then one generator step on the same fake batch.

    Mode seeking (Mao et al. 2019, MSGAN): fakes come in pairs of the same class, and the generator is
    penalised by 1 / (image distance / latent distance) within each pair. Without it the small generator
    collapsed to one sprite per class within a few hundred steps.
    """

    ema_prefix = "generator."

    def __init__(self, model: nn.Module, hyper: Hyper, wrap: Wrap) -> None:
        super().__init__(model, hyper, wrap)
        self.generator = wrap(model.generator)
        self.discriminator = wrap(model.discriminator)
        self._add_optimizer("generator", _adam(model.generator.parameters(), hyper.lr, (0.0, 0.9)))
        self._add_optimizer(
            "discriminator", _adam(model.discriminator.parameters(), hyper.lr * hyper.d_lr_scale, (0.0, 0.9))
        )

    def train_step(
        self, x: torch.Tensor, labels: torch.Tensor, gen: torch.Generator, tags: torch.Tensor | None = None
    ) -> dict[str, float]:
        n, half = x.shape[0], x.shape[0] // 2
        tags = drop_tags(tags, self.hyper.tag_dropout, gen)

        def paired(values: torch.Tensor) -> torch.Tensor:  # fake sprite i pairs with i + half
            return torch.cat([values[:half], values[:half], values[2 * half :]])

        fake_labels = paired(labels)
        fake_tags = paired(tags) if tags is not None else None
        z = _randn((n, self.model.config.z_dim), gen, x.device)
        fake = self.generator(z, fake_labels, fake_tags)
        both_tags = torch.cat([tags, fake_tags]) if tags is not None else None
        seen = torch.cat([x, fake.detach()])
        scores = self.discriminator(self._view(seen, gen), torch.cat([labels, fake_labels]), both_tags)
        real_score, fake_score = scores[:n], scores[n:]
        d_loss = F.relu(1.0 - real_score).mean() + F.relu(1.0 + fake_score).mean()
        self._apply("discriminator", d_loss, self.model.discriminator)
        g_loss = -self.discriminator(self._view(fake, gen), fake_labels, fake_tags).mean()
        losses = {"d": d_loss.item(), "g": g_loss.item(), "d_real": real_score.mean().item()}
        if self.hyper.diversity > 0 and half > 0:
            image_gap = (fake[:half] - fake[half : 2 * half]).abs().flatten(1).mean(1)
            latent_gap = (z[:half] - z[half : 2 * half]).abs().mean(1)
            ratio = (image_gap / latent_gap).mean()
            g_loss = g_loss + self.hyper.diversity / (ratio + 1e-5)
            losses["diversity"] = ratio.item()
        self._apply("generator", g_loss, self.model.generator)
        return losses

    def _view(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return diff_augment(x, gen) if self.hyper.diff_augment else x

    @torch.no_grad()
    def validate(
        self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, gen: torch.Generator,
        tags: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """Hinge loss of the discriminator on held-out real sprites: rising means it memorises the train set."""
        score = model.discriminator(x, labels, tags)
        return {"d_real_hinge": float(F.relu(1.0 - score).mean())}


class VaeObjective(Objective):
    """Negative ELBO with a Laplace likelihood: summed L1 reconstruction + ``kl_weight`` x KL, per pixel."""

    def __init__(self, model: nn.Module, hyper: Hyper, wrap: Wrap) -> None:
        super().__init__(model, hyper, wrap)
        self.net = wrap(model)
        self._add_optimizer("model", _adam(model.parameters(), hyper.lr, (0.9, 0.999)))

    def _losses(self, net: nn.Module, x: torch.Tensor, labels: torch.Tensor, gen: torch.Generator,
                 tags: torch.Tensor | None):
        eps = _randn((x.shape[0], self.model.config.latent_dim), gen, x.device)
        x_hat, mean, logvar = net(x, labels, eps, tags)
        per_value = x[0].numel()
        recon = (x_hat - x).abs().flatten(1).sum(1).mean() / per_value
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean() / per_value
        return recon, kl

    def train_step(
        self, x: torch.Tensor, labels: torch.Tensor, gen: torch.Generator, tags: torch.Tensor | None = None
    ) -> dict[str, float]:
        recon, kl = self._losses(self.net, x, labels, gen, drop_tags(tags, self.hyper.tag_dropout, gen))
        loss = recon + self.hyper.kl_weight * kl
        self._apply("model", loss, self.model)
        return {"loss": loss.item(), "recon": recon.item(), "kl": kl.item()}

    @torch.no_grad()
    def validate(
        self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, gen: torch.Generator,
        tags: torch.Tensor | None = None,
    ) -> dict[str, float]:
        recon, kl = self._losses(model, x, labels, gen, tags)
        return {"loss": float(recon + self.hyper.kl_weight * kl), "recon": float(recon)}


class DiffusionObjective(Objective):
    """v- (or noise-) prediction MSE at uniform timesteps; class and tags are hidden together at ``cfg_dropout`` of
    samples (the unconditional model guidance steers away from), the tags alone at ``tag_dropout``."""

    def __init__(self, model: nn.Module, hyper: Hyper, wrap: Wrap) -> None:
        super().__init__(model, hyper, wrap)
        self.net = wrap(model)
        self.schedule = model.schedule()
        self._add_optimizer("model", _adam(model.parameters(), hyper.lr, (0.9, 0.999)))

    def _loss(self, net: nn.Module, x: torch.Tensor, labels: torch.Tensor, gen: torch.Generator, drop: float,
              tags: torch.Tensor | None):
        n = x.shape[0]
        t = torch.randint(0, self.schedule.timesteps, (n,), generator=gen).to(x.device)
        noise = _randn(tuple(x.shape), gen, x.device)
        hidden = (torch.rand(n, generator=gen) < drop).to(x.device)
        labels = torch.where(hidden, torch.full_like(labels, self.model.null_label), labels)
        target = self.schedule.velocity(x, noise, t) if self.model.prediction == "v" else noise
        noisy = self.schedule.add_noise(x, noise, t)
        if tags is None:
            return F.mse_loss(net(noisy, t, labels), target)
        tags = tags * (~hidden)[:, None].to(tags.dtype)
        return F.mse_loss(net(noisy, t, labels, tags), target)

    def train_step(
        self, x: torch.Tensor, labels: torch.Tensor, gen: torch.Generator, tags: torch.Tensor | None = None
    ) -> dict[str, float]:
        tags = drop_tags(tags, self.hyper.tag_dropout, gen)
        loss = self._loss(self.net, x, labels, gen, self.hyper.cfg_dropout, tags)
        self._apply("model", loss, self.model)
        return {"mse": loss.item()}

    @torch.no_grad()
    def validate(
        self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, gen: torch.Generator,
        tags: torch.Tensor | None = None,
    ) -> dict[str, float]:
        return {"mse": self._loss(model, x, labels, gen, 0.0, tags).item()}


OBJECTIVES: dict[str, type[Objective]] = {"gan": GanObjective, "vae": VaeObjective, "diffusion": DiffusionObjective}
