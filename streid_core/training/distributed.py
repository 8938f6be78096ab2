"""Training on several processes (torchrun): process-group setup, DistributedDataParallel,
batch-hard features gathered across ranks, and BatchNorm statistics synchronised on any backend.

Launch: `torchrun --nproc_per_node N -m streid_core baseline ...` (one node) or, on each of M
nodes, `torchrun --nnodes M --node_rank I --nproc_per_node N --master_addr HOST --master_port
PORT -m streid_core baseline ...`. torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them
everything here is a no-op for a single process.

Why a distributed run equals a single process on the same global batches:
- gradients: DDP averages the ranks' gradients, i.e. optimises the mean of the rank losses;
  a classification loss that is a mean over the rank's rows (equal rows per rank) averages to
  the global mean.
- batch-hard triplet: the hardest positive/negative of an anchor can sit on another rank, so
  every rank computes the loss over the *global* batch from features gathered with
  `gather_with_grad` (its own slice keeps its gradient, the others are constants). Rank r then
  holds only the gradient through its own features; scaling that loss by world_size for the
  backward pass makes the DDP average equal the single-process gradient.
- BatchNorm: per-rank batch statistics differ from the global ones; `--sync-bn` replaces every
  BatchNorm by torch's SyncBatchNorm on CUDA. torch's SyncBatchNorm refuses CPU tensors, so on
  the CPU (gloo) `CollectiveBatchNorm` computes the same global statistics with differentiable
  all-reduces.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..errors import StreidError

# Rank 0 evaluates alone while the others wait at a barrier; full test sets on a CPU take long.
_COLLECTIVE_TIMEOUT = timedelta(hours=3)


@dataclass(frozen=True)
class DistContext:
    """Which process this is. The default is a plain single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process writes logs, checkpoints and reports."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise StreidError(f"environment variable {name}={value!r} is not an integer; launch with torchrun") from None


def launched_world_size() -> int:
    """How many processes torchrun started (1 without torchrun), known before joining the
    group: flags that depend on it are checked before any work."""
    return max(1, _env_int("WORLD_SIZE", 1))


def check_batch_split(batch_size: int, world_size: int, flag: str = "-b/--batch-size", unit: str = "triplets") -> None:
    """A global batch must split evenly over the processes (each rank gets the same rows)."""
    if world_size > 1 and batch_size % world_size:
        lower, higher = batch_size // world_size * world_size, (batch_size // world_size + 1) * world_size
        hint = f"{lower} or {higher}" if lower else f"{higher}"
        raise StreidError(f"{flag} {batch_size}: the global batch cannot be split evenly over the {world_size} processes "
                          f"torchrun started ({batch_size / world_size:g} {unit} each); use a multiple of {world_size}, e.g. {hint}")


def init_distributed(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group torchrun describes (gloo on CPU, NCCL on CUDA); pick this
    process's GPU. Single process (no WORLD_SIZE or WORLD_SIZE=1): nothing to join."""
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return DistContext(), device
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise StreidError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s) visible; "
                "set --nproc_per_node to at most the number of GPUs per node"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=_COLLECTIVE_TIMEOUT)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank), device


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.is_distributed:
        dist.barrier()


def mean_over_ranks(values: dict[str, float], ctx: DistContext, device: torch.device) -> dict[str, float]:
    """The mean of each scalar over all processes (identical on every rank)."""
    if not ctx.is_distributed or not values:
        return values
    keys = list(values)  # same order on every rank: every rank runs the same task code
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(keys, (t / ctx.world_size).tolist()))


def all_gather(x: Tensor, ctx: DistContext) -> Tensor:
    """Concatenation of every rank's `x` along dim 0, rank order (no gradient)."""
    if not ctx.is_distributed:
        return x
    parts = [torch.empty_like(x) for _ in range(ctx.world_size)]
    dist.all_gather(parts, x.detach().contiguous())
    return torch.cat(parts)


def gather_with_grad(x: Tensor, ctx: DistContext) -> Tensor:
    """Like `all_gather`, but this rank's own slice is `x` itself, so gradients flow into it.
    Every rank must pass the same number of rows."""
    if not ctx.is_distributed:
        return x
    parts = [torch.empty_like(x) for _ in range(ctx.world_size)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[ctx.rank] = x
    return torch.cat(parts)


def gather_thirds_with_grad(x: Tensor, ctx: DistContext) -> Tensor:
    """`x` laid out [anchors; positives; negatives] on every rank -> the global batch in the same
    layout: each third gathered on its own (rank order inside), this rank's rows keeping their
    gradient. Concatenating whole rank batches would interleave the thirds and break the
    triplets (the ST triplet loss mines anchors among the first two thirds)."""
    if not ctx.is_distributed:
        return x
    if x.shape[0] % 3:
        raise ValueError(f"a triplet batch holds [anchors; positives; negatives]; got {x.shape[0]} rows")
    return torch.cat([gather_with_grad(part.contiguous(), ctx) for part in x.chunk(3)])


def all_gather_thirds(x: Tensor, ctx: DistContext) -> Tensor:
    """`gather_thirds_with_grad` without gradients (labels)."""
    if not ctx.is_distributed:
        return x
    return torch.cat([all_gather(part.contiguous(), ctx) for part in x.chunk(3)])


def rank_failure(exc: BaseException, ctx: DistContext) -> str:
    """One line for the error that stops this rank: which rank, and the cause's first line.
    torchrun then stops the other ranks and names this one as the first failure."""
    lines = str(exc).strip().splitlines()
    cause = lines[0] if lines else type(exc).__name__
    if any(sign in cause for sign in _PEER_GONE):  # a collective whose peer died first
        return f"rank {ctx.rank} of {ctx.world_size} stopped: another rank failed (its own line names the cause)"
    if not isinstance(exc, StreidError):
        cause = f"{type(exc).__name__}: {cause}"
    return f"rank {ctx.rank} of {ctx.world_size} failed: {cause}"


# What gloo and NCCL say in a collective whose peer process has gone.
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "NCCL communicator was aborted")


class _AllReduceSum(torch.autograd.Function):
    """y = sum over ranks of x. Every rank's loss depends on y, so the gradient reaching x is
    the sum of all ranks' gradients at y: the backward is an all-reduce as well."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: ARG004 - autograd signature
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: ARG004
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CollectiveBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm (1d or 2d) whose training statistics are those of the whole global batch.

    Works on every device and backend (gloo included) because it only uses all-reduce; the
    statistics are computed in float32 in two passes (mean, then centred squares) as
    F.batch_norm does. Evaluation and single-process training are plain BatchNorm.
    Parameter and buffer names are BatchNorm's, so checkpoints load into either.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() not in (2, 3, 4, 5):
            raise ValueError(f"expected 2D-5D input, got {input.dim()}D")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        local_count = torch.tensor([x.numel() / x.shape[1]], device=x.device, dtype=torch.float32)
        sums = _AllReduceSum.apply(torch.cat([xf.sum(dims), local_count]))
        count = sums[-1].detach()
        mean = sums[:-1] / count
        centred = xf - mean.view(shape)
        var = _AllReduceSum.apply(centred.pow(2).sum(dims)) / count
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (count / (count - 1).clamp(min=1))
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased.detach(), alpha=factor)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm1d/2d -> synchronised BatchNorm (torch's on CUDA, CollectiveBatchNorm
    elsewhere), keeping parameters, statistics and requires_grad flags."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        synced = CollectiveBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                     module.track_running_stats, device=module.running_mean.device
                                     if module.running_mean is not None else None)
        synced.load_state_dict(module.state_dict())
        if module.affine:
            synced.weight.requires_grad_(module.weight.requires_grad)
            synced.bias.requires_grad_(module.bias.requires_grad)
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        setattr(module, name, convert_sync_batchnorm(child, device))
    return module


def wrap_ddp(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `module` in a distributed run, `module` itself otherwise."""
    if not ctx.is_distributed:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)
