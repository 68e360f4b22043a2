"""A small discriminative CNN for scikit-learn's 8x8 digits: the baseline the generative classifier is compared with.

Trained on the same fixed train split as the bundled diffusion model (`genfast.models.digits_data`), seeded and
deterministic, in a few seconds on two CPU cores. Inputs are float images ``[N, 8, 8]`` in [0, 1], as
`load_split` returns them and as `genfast.distort.apply` produces them.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

IMAGE_SIZE = 8
N_CLASSES = 10


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions, a 2x2 max-pool and two linear layers (about 40k parameters)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width // 2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width // 2, width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(width * (IMAGE_SIZE // 2) ** 2, 64), nn.ReLU(), nn.Linear(64, N_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, 10]`` of images ``[N, 1, 8, 8]`` in [0, 1]."""
        return self.head(self.features(x))


def _as_batch(images: np.ndarray, name: str = "images") -> torch.Tensor:
    """Check float images ``[N, 8, 8]`` in [0, 1] and return them as float32 ``[N, 1, 8, 8]``."""
    array = np.asarray(images)
    if array.ndim != 3 or array.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"{name} must have shape [N, 8, 8], got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{name} must be a float array in [0, 1], got dtype {array.dtype}")
    if array.size and (not np.all(np.isfinite(array)) or array.min() < 0.0 or array.max() > 1.0):
        raise ValueError(f"{name} values must be finite and lie in [0, 1]")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).unsqueeze(1)


def train_cnn(images: np.ndarray, labels: np.ndarray, *, steps: int = 1500, batch_size: int = 64,
              lr: float = 2e-3, seed: int = 0) -> DigitsCNN:
    """Train a `DigitsCNN` with Adam on (images, labels) for `steps` minibatches; the same seed gives the same weights.

    Minibatches are drawn by a seeded generator (reshuffled every epoch); the learning rate decays on a cosine.
    """
    x = _as_batch(images)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    if y.ndim != 1 or len(y) != len(x) or len(y) == 0:
        raise ValueError(f"labels must be a non-empty 1-d array with one label per image, got shape {tuple(y.shape)} "
                         f"for {len(x)} images")
    if y.min() < 0 or y.max() >= N_CLASSES:
        raise ValueError(f"labels must lie in 0..{N_CLASSES - 1}, got {int(y.min())}..{int(y.max())}")
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitsCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(x), generator=generator)
    position = 0
    model.train()
    for _ in range(steps):
        if position + batch_size > len(order):
            order, position = torch.randperm(len(x), generator=generator), 0
        index = order[position:position + batch_size]
        position += batch_size
        optimiser.zero_grad()
        loss_fn(model(x[index]), y[index]).backward()
        optimiser.step()
        schedule.step()
    model.eval()
    return model


@torch.no_grad()
def predict(model: DigitsCNN, images: np.ndarray) -> np.ndarray:
    """Predicted labels (int64 ``[N]``) of float images ``[N, 8, 8]`` in [0, 1]."""
    x = _as_batch(images)
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    return model(x).argmax(dim=1).numpy().astype(np.int64)
