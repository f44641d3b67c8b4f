"""VAAL: variational adversarial active learning."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from alseg.errors import AlsegError
from alseg.strategies.base import Prediction, TopScoreStrategy
from alseg.strategies.shaping import ScoreShaping

if TYPE_CHECKING:
    from alseg.strategies.context import AcquisitionContext


class VAE(nn.Module):
    """A convolutional VAE on images resized to `side` x `side` (a multiple of 16)."""

    def __init__(self, latent: int, side: int, width: int = 32) -> None:
        super().__init__()
        self.side = side
        channels = [3, width, 2 * width, 4 * width, 8 * width]
        self.encoder = nn.Sequential(
            *[
                layer
                for c_in, c_out in itertools.pairwise(channels)
                for layer in (nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU())
            ],
            nn.Flatten(),
        )
        self.grid = side // 16
        features = channels[-1] * self.grid * self.grid
        self.mu = nn.Linear(features, latent)
        self.logvar = nn.Linear(features, latent)
        self.expand = nn.Linear(latent, features)
        reversed_channels = channels[::-1]
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(reversed_channels):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)]
            layers += [nn.BatchNorm2d(c_out), nn.ReLU()] if c_out != 3 else [nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)
        self.width = channels[-1]

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(self.resize(images))
        return self.mu(hidden), self.logvar(hidden)

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        return F.interpolate(images, size=(self.side, self.side), mode="bilinear", align_corners=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(images)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        hidden = self.expand(z).view(-1, self.width, self.grid, self.grid)
        return self.decoder(hidden), mu, logvar


class Discriminator(nn.Module):
    """Tells labelled (1) from unlabelled (0) latent codes."""

    def __init__(self, latent: int, hidden: int = 512) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Logit of "labelled" per code (B,)."""
        return self.layers(z).squeeze(1)


class Vaal(TopScoreStrategy):
    """A VAE learns a latent space of labelled and unlabelled images together while a
    discriminator learns to tell them apart; the VAE's adversarial term makes it fool the
    discriminator. L_VAE = lambda1 * L_trd + lambda2 * L_adv, with L_trd the reconstruction plus
    `beta` x KL. Queries the images the discriminator rates least likely to be labelled.
    Defaults follow the VAAL paper (lambda1 = lambda2 = 1, beta = 1, Adam at 5e-4, latent 32).
    Both networks are trained afresh each cycle; the segmentation model is not used. The
    discriminator rates the pool in the cycle's one scoring pass (an image statistic).
    """

    needs_model = False
    queries = "images"

    def __init__(
        self,
        name: str,
        latent: int = 32,
        side: int = 64,
        epochs: int = 10,
        batch_size: int = 32,
        lambda1: float = 1.0,
        lambda2: float = 1.0,
        beta: float = 1.0,
        vae_lr: float = 5e-4,
        discriminator_lr: float = 5e-4,
        width: int = 32,
        shaping: ScoreShaping | None = None,
    ) -> None:
        super().__init__(name, shaping=shaping)
        if side % 16 or side < 16 or epochs < 1:
            raise AlsegError(
                f"vaal needs strategy.side a multiple of 16 and strategy.epochs >= 1 (got {side}, {epochs})."
            )
        self.latent, self.side, self.epochs, self.batch_size = latent, side, epochs, batch_size
        self.lambda1, self.lambda2, self.beta = lambda1, lambda2, beta
        self.vae_lr, self.discriminator_lr, self.width = vae_lr, discriminator_lr, width
        self.vae: VAE | None = None
        self.discriminator: Discriminator | None = None

    def prepare(self, context: AcquisitionContext) -> None:
        torch.manual_seed(int(context.rng.integers(2**31)))
        self.vae = VAE(self.latent, self.side, self.width).to(context.device)
        self.discriminator = Discriminator(self.latent).to(context.device)
        labelled = context.state.labelled_images()
        unlabelled = context.state.unlabelled_images()
        vae_optimizer = torch.optim.Adam(self.vae.parameters(), lr=self.vae_lr)
        discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=self.discriminator_lr)
        steps = self.epochs * max(1, len(unlabelled) // self.batch_size)
        for _ in range(steps):
            images_l = _sample(context, labelled, self.batch_size)
            images_u = _sample(context, unlabelled, self.batch_size)
            vae_loss = self._vae_loss(images_l, images_u)
            vae_optimizer.zero_grad()
            vae_loss.backward()
            vae_optimizer.step()
            discriminator_loss = self._discriminator_loss(images_l, images_u)
            discriminator_optimizer.zero_grad()
            discriminator_loss.backward()
            discriminator_optimizer.step()
        self.vae.eval()
        self.discriminator.eval()

    def _vae_loss(self, images_l: torch.Tensor, images_u: torch.Tensor) -> torch.Tensor:
        assert self.vae is not None and self.discriminator is not None
        transductive, codes = torch.zeros((), device=images_l.device), []
        for images in (images_l, images_u):
            reconstruction, mu, logvar = self.vae(images)
            kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())
            transductive = transductive + F.mse_loss(reconstruction, self.vae.resize(images)) + self.beta * kl
            codes.append(mu)
        # The VAE wants both labelled and unlabelled codes to look labelled to the discriminator.
        logits = self.discriminator(torch.cat(codes))
        adversarial = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        return self.lambda1 * transductive + self.lambda2 * adversarial

    def _discriminator_loss(self, images_l: torch.Tensor, images_u: torch.Tensor) -> torch.Tensor:
        assert self.vae is not None and self.discriminator is not None
        with torch.no_grad():
            mu_l, mu_u = self.vae(images_l)[1], self.vae(images_u)[1]
        logits = self.discriminator(torch.cat([mu_l, mu_u]))
        truth = torch.cat([torch.ones(len(mu_l)), torch.zeros(len(mu_u))]).to(logits.device)
        return F.binary_cross_entropy_with_logits(logits, truth)

    def image_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        """score: how unlikely the discriminator finds it that the image is labelled."""
        assert self.vae is not None and self.discriminator is not None
        return {"score": -self.discriminator(self.vae.encode(prediction.images)[0])}


def _sample(context: AcquisitionContext, indices: np.ndarray, size: int) -> torch.Tensor:
    return context.images(context.rng.choice(indices, size=min(size, len(indices)), replace=False))
