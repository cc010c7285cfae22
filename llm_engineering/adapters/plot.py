"""``loss.png``: a job's training loss per step, with a moving average, and its held-out loss."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["write_loss_plot"]


def write_loss_plot(
    losses: Sequence[float],
    target: Path,
    title: str,
    eval_losses: Sequence[tuple[int, float]] = (),
) -> None:
    """``eval_losses``: (step, held-out loss) points, drawn over the training curve."""
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI backend
    import matplotlib.pyplot as plt

    steps = list(range(1, len(losses) + 1))
    window = max(1, len(losses) // 10)
    smooth = [
        sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
        for i in range(len(losses))
    ]
    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
    axes.plot(steps, losses, color="#9bb7d4", linewidth=1, label="loss")
    if window > 1:
        axes.plot(steps, smooth, color="#1f4e79", linewidth=2, label=f"mean of {window} steps")
    if eval_losses:
        axes.plot(
            [step for step, _ in eval_losses],
            [loss for _, loss in eval_losses],
            color="#c0392b",
            marker="o",
            linewidth=1.5,
            label="held-out loss",
        )
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    partial = target.with_name(target.name + ".partial.png")
    figure.savefig(partial)
    plt.close(figure)
    partial.replace(target)
