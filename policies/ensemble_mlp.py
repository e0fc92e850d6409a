"""`EnsembleMLP`: M independent MLPs of one shape, stacked and evaluated as one batched network.

The multi-critic SAC's K x 2 Q-networks (`policies.multi_critic_policy`) run as one
ensemble: a ``torch.baddbmm`` per layer instead of K x 2 networks one after another. It is
a plain torch module with no reinforcement-learning logic, so it lives apart from the
critic and the algorithm and can be tested and benchmarked alone; `make_mlp` builds the
same member as an ordinary ``nn.Sequential`` (the one-by-one reference).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch as th
from torch import nn

__all__ = ["EnsembleMLP", "make_mlp"]


class EnsembleMLP(nn.Module):
    """M independent MLPs of the same shape, evaluated together on a shared input.

    Weights are stacked: the first layer is one ``(in, M * h1)`` matrix, later layers are
    ``(M, h_i, h_{i+1})``; every layer runs as one ``torch.baddbmm`` over the members. Each
    member is initialised like ``nn.Linear`` (uniform in +-1/sqrt(fan_in)), so the ensemble
    is distributed exactly like M separate MLPs.

    :param n_members: M, the number of networks.
    :param in_dim: input size.
    :param out_dim: output size of every member.
    :param net_arch: hidden layer sizes (may be empty: a linear model).
    :param activation_fn: elementwise activation class (e.g. ``nn.ReLU``).
    """

    def __init__(
        self,
        n_members: int,
        in_dim: int,
        out_dim: int,
        net_arch: Sequence[int],
        activation_fn: type[nn.Module] = nn.ReLU,
    ):
        super().__init__()
        if n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {n_members}")
        self.n_members = n_members
        self.dims = [int(in_dim), *(int(h) for h in net_arch), int(out_dim)]
        self.activation = activation_fn()
        m, d = n_members, self.dims
        self.first_weight = nn.Parameter(th.empty(d[0], m * d[1]))
        self.first_bias = nn.Parameter(th.empty(m * d[1]))
        self.weights = nn.ParameterList([nn.Parameter(th.empty(m, d[i], d[i + 1])) for i in range(1, len(d) - 1)])
        self.biases = nn.ParameterList([nn.Parameter(th.empty(m, 1, d[i + 1])) for i in range(1, len(d) - 1)])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise every member like ``nn.Linear``: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        with th.no_grad():
            bound = 1.0 / math.sqrt(self.dims[0])
            self.first_weight.uniform_(-bound, bound)
            self.first_bias.uniform_(-bound, bound)
            for i, (w, b) in enumerate(zip(self.weights, self.biases)):
                bound = 1.0 / math.sqrt(self.dims[i + 1])
                w.uniform_(-bound, bound)
                b.uniform_(-bound, bound)

    def forward(self, x: th.Tensor) -> th.Tensor:
        """Evaluate all members on ``x`` of shape ``(B, in)``; returns ``(M, B, out)``."""
        batch, m, d = x.shape[0], self.n_members, self.dims
        if len(d) == 2:
            return th.addmm(self.first_bias, x, self.first_weight).view(batch, m, d[1]).transpose(0, 1)
        # First layer straight into the (M, B, h1) layout the later layers use: the input is
        # broadcast (stride 0) and each member's (in, h1) block is a strided view of the
        # stacked weight. Producing (B, M*h1) with one GEMM and transposing instead costs a
        # copy of the activation gradient and strided elementwise passes in every backward.
        w0 = self.first_weight.view(d[0], m, d[1]).transpose(0, 1)
        h = self._act_(th.baddbmm(self.first_bias.view(m, 1, d[1]), x.expand(m, batch, d[0]), w0))
        n_layers = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if i < n_layers - 1:
                h = self._act_(th.baddbmm(b, h, w))
            elif w.shape[2] == 1:
                # A batched GEMV through bmm is several times slower on CPU than this
                # multiply-and-sum (measured: 1.2 ms vs 0.36 ms for 6 x (256 x 256 -> 1)).
                h = (h * w.transpose(1, 2)).sum(dim=2, keepdim=True) + b
            else:
                # Thin outputs: bmm is faster with each weight matrix in column-major order.
                h = th.baddbmm(b, h, w.transpose(1, 2).contiguous().transpose(1, 2))
        return h

    def _act_(self, h: th.Tensor) -> th.Tensor:
        # In place for ReLU (baddbmm's backward does not need its output): saves writing a
        # fresh (M, B, h) tensor, which on CPU is memory-bound for large ensembles.
        if type(self.activation) is nn.ReLU:
            return th.relu_(h)
        return self.activation(h)

    def member(self, index: int) -> nn.Sequential:
        """A standalone ``nn.Sequential`` copy of member ``index`` (for tests and export)."""
        d, layers = self.dims, []
        m = self.n_members
        with th.no_grad():
            first = nn.Linear(d[0], d[1])
            w0 = self.first_weight.view(d[0], m, d[1])[:, index, :]
            first.weight.copy_(w0.t())
            first.bias.copy_(self.first_bias.view(m, d[1])[index])
            layers.append(first)
            for w, b in zip(self.weights, self.biases):
                layers.append(type(self.activation)())
                lin = nn.Linear(w.shape[1], w.shape[2])
                lin.weight.copy_(w[index].t())
                lin.bias.copy_(b[index, 0])
                layers.append(lin)
        return nn.Sequential(*layers).to(self.first_weight.device)

    def load_members(self, members: Sequence[nn.Sequential]) -> None:
        """Copy the weights of M ``nn.Sequential`` MLPs (Linear/activation alternating) in."""
        if len(members) != self.n_members:
            raise ValueError(f"expected {self.n_members} members, got {len(members)}")
        m, d = self.n_members, self.dims
        with th.no_grad():
            for idx, seq in enumerate(members):
                linears = [layer for layer in seq if isinstance(layer, nn.Linear)]
                if len(linears) != len(d) - 1:
                    raise ValueError(f"member {idx} has {len(linears)} linear layers, expected {len(d) - 1}")
                self.first_weight.view(d[0], m, d[1])[:, idx, :].copy_(linears[0].weight.t())
                self.first_bias.view(m, d[1])[idx].copy_(linears[0].bias)
                for lin, w, b in zip(linears[1:], self.weights, self.biases):
                    w[idx].copy_(lin.weight.t())
                    b[idx, 0].copy_(lin.bias)


def make_mlp(in_dim: int, out_dim: int, net_arch: Sequence[int], activation_fn: type[nn.Module]) -> nn.Sequential:
    """One plain MLP (Linear and activation alternating): what `EnsembleMLP` holds M of, run one by one."""
    dims = [in_dim, *net_arch]
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), activation_fn()]
    layers.append(nn.Linear(dims[-1], out_dim))
    return nn.Sequential(*layers)
