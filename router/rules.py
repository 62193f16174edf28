"""Routing rules: from the bank's query summaries to log p(task | query) for each question.

Each rule is fitted from `QuerySummary`s alone (no task's text), and is a small class plus a registry
line. Fitted rules are plain tensors (`state`), so a router file holds no code.

    cosine    cosine to each task's mean query (the entry's key), over a temperature
    lda       a shared covariance pooled from the summaries, shrunk toward its mean variance;
              linear scores mu_t' S^-1 q - mu_t' S^-1 mu_t / 2 (Fisher's rule, equal priors)
    qda       each task's own low-rank-plus-diagonal Gaussian: its log-density (Woodbury, no d x d inverse per query)
    linear    a softmax classifier trained on pseudo-queries drawn from every summary's Gaussian
              (feature replay from statistics: the classifier is retrained from summaries as tasks arrive)
    aoa       attention over attention: cosine, lda and qda each give a distribution; a second attention
              weighs them per question by how decided each one is (low entropy)
    fusion    a small learned attention (shared projection, one key per entry) trained task by task, each
              step on that task's pseudo-queries only; reg and orth are its continual variants (an L2
              penalty on drift; updates projected off earlier tasks' query subspaces)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from baas.prompts_bank.errors import BaasError
from baas.router.summary import QuerySummary


class Rule:
    name = ""

    def fit(self, summaries: list[QuerySummary]) -> "Rule":
        raise NotImplementedError

    def log_probs(self, queries: torch.Tensor) -> torch.Tensor:
        """queries [B, d] -> [B, E], rows log-normalised."""
        raise NotImplementedError

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in vars(self).items() if isinstance(v, torch.Tensor)}

    def load(self, state: dict[str, torch.Tensor]) -> "Rule":
        for k, v in state.items():
            setattr(self, k, v)
        return self


class CosineRule(Rule):
    name = "cosine"
    temperature = 0.02  # cosine gaps between task means are a few hundredths

    def fit(self, summaries):
        self.keys = F.normalize(torch.stack([s.mean for s in summaries]), dim=-1)
        return self

    def log_probs(self, queries):
        return (F.normalize(queries, dim=-1) @ self.keys.T / self.temperature).log_softmax(-1)


def _shrunk(cov: torch.Tensor, shrinkage: float) -> torch.Tensor:
    d = cov.shape[0]
    return (1 - shrinkage) * cov + shrinkage * cov.trace() / d * torch.eye(d, dtype=cov.dtype)


class LDARule(Rule):
    name = "lda"
    shrinkage = 0.1

    def fit(self, summaries):
        counts = torch.tensor([s.count for s in summaries], dtype=torch.float64)
        pooled = sum(w * s.covariance().double() for w, s in zip(counts / counts.sum(), summaries))
        means = torch.stack([s.mean for s in summaries]).double()  # [E, d]
        proj = torch.linalg.solve(_shrunk(pooled, self.shrinkage), means.T)  # [d, E]
        self.weight = proj.float()
        self.bias = (-0.5 * (means * proj.T).sum(-1)).float()
        return self

    def log_probs(self, queries):
        return (queries @ self.weight + self.bias).log_softmax(-1)


class QDARule(Rule):
    """Computed in float64: the Woodbury form subtracts large, nearly equal terms."""

    name = "qda"
    shrinkage = 0.1

    def fit(self, summaries):
        self.means = torch.stack([s.mean for s in summaries]).double()
        self.factors = torch.stack([s.factor for s in summaries]).double()  # [E, r, d]
        diag = torch.stack([s.residual for s in summaries]).double()
        # the diagonal shrinks toward each task's mean total variance (trace / d)
        target = (diag.sum(-1) + self.factors.pow(2).sum((1, 2))) / diag.shape[1]
        self.inv_diag = 1.0 / ((1 - self.shrinkage) * diag + self.shrinkage * target[:, None])  # [E, d]
        r = self.factors.shape[1]
        # inner = I + F D^-1 F' per task; C^-1 = D^-1 - D^-1 F' inner^-1 F D^-1 (Woodbury)
        fd = self.factors * self.inv_diag[:, None, :]  # [E, r, d]
        inner = torch.eye(r, dtype=torch.float64) + fd @ self.factors.transpose(1, 2)
        self.inner_inv = torch.linalg.inv(inner).contiguous()
        self.logdet = -self.inv_diag.log().sum(-1) + torch.linalg.slogdet(inner)[1]  # [E]
        return self

    def log_probs(self, queries):
        rows = max(1, 2**23 // self.means.numel())  # questions per chunk: [rows, E, d] stays near 64 MB
        return torch.cat([self._log_probs(q.double()) for q in queries.split(rows)]).float()

    def _log_probs(self, queries):
        x = queries[:, None, :] - self.means[None]  # [B, E, d]
        xd = x * self.inv_diag[None]  # D^-1 x
        proj = torch.einsum("erd,bed->ber", self.factors, xd)  # F D^-1 x  [B, E, r]
        quad = (x * xd).sum(-1) - torch.einsum("ber,ers,bes->be", proj, self.inner_inv, proj)
        return (-0.5 * (quad + self.logdet)).log_softmax(-1)


class LinearRule(Rule):
    name = "linear"
    samples = 512  # pseudo-queries per task
    steps = 300
    weight_decay = 1e-4

    def fit(self, summaries):
        gen = torch.Generator().manual_seed(0)
        x = torch.cat([s.sample(self.samples, gen) for s in summaries])
        y = torch.arange(len(summaries)).repeat_interleave(self.samples)
        self.shift, self.scale = x.mean(0), x.std(0) + 1e-6
        x = (x - self.shift) / self.scale
        layer = torch.nn.Linear(x.shape[1], len(summaries))
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
        opt = torch.optim.LBFGS(layer.parameters(), lr=1, max_iter=self.steps, history_size=20, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(layer(x), y) + self.weight_decay * layer.weight.pow(2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        self.weight, self.bias = layer.weight.detach().T.contiguous(), layer.bias.detach().clone()
        return self

    def log_probs(self, queries):
        return (((queries - self.shift) / self.scale) @ self.weight + self.bias).log_softmax(-1)


class SequentialAttention(Rule):
    """A small learned attention (ATTEMPT-style): score_e(q) = (W q) . k_e + b_e, with a shared projection W
    and one key per entry, trained task by task as the bank grows. Step t sees only pseudo-queries drawn
    from task t's own summary and trains W, k_t and b_t (earlier keys stay frozen). Plain, this forgets
    (nothing holds W where earlier tasks need it); the continual variants hold it:

        reg    an L2 penalty on W's drift from where the previous task left it
        orth   W's updates are projected off the earlier tasks' query subspaces (their means and the
               principal directions their summaries keep), so earlier queries keep their projections
    """

    name = "fusion"
    key_dim = 64
    samples = 256  # pseudo-queries per task
    steps = 100
    lr = 3e-2
    penalty = 0.0
    project = False
    basis_per_task = 8  # directions of a task's subspace that `orth` protects

    def fit(self, summaries):
        g = torch.Generator().manual_seed(0)
        first = summaries[0]
        self.shift = first.mean.clone()
        self.scale = (first.residual.sum() + first.factor.pow(2).sum()).div(first.mean.numel()).sqrt().reshape(1)
        d, e = first.mean.numel(), len(summaries)
        proj = (torch.randn(self.key_dim, d, generator=g) / d**0.5).requires_grad_()
        keys, bias = torch.zeros(e, self.key_dim), torch.zeros(e)
        basis = torch.zeros(d, 0)
        for t, summary in enumerate(summaries):
            x = (summary.sample(self.samples, g) - self.shift) / self.scale
            key, b = keys[t].clone().requires_grad_(), bias[t].clone().requires_grad_()
            anchor = proj.detach().clone()
            opt = torch.optim.Adam([proj, key, b], lr=self.lr)
            target = torch.full((len(x),), t)
            for _ in range(self.steps):
                with torch.enable_grad():
                    all_keys = torch.cat([keys[:t], key[None]])
                    all_bias = torch.cat([bias[:t], b[None]])
                    loss = F.cross_entropy((x @ proj.T) @ all_keys.T + all_bias, target)
                    loss = loss + self.penalty * (proj - anchor).pow(2).sum()
                    opt.zero_grad()
                    loss.backward()
                if self.project and basis.shape[1]:
                    proj.grad -= (proj.grad @ basis) @ basis.T
                opt.step()
            keys[t], bias[t] = key.detach(), b.detach()
            if self.project:
                own = torch.cat([((summary.mean - self.shift) / self.scale)[None], summary.factor[: self.basis_per_task] / self.scale])
                basis = torch.linalg.qr(torch.cat([basis, own.T], 1)).Q[:, : min(d, basis.shape[1] + len(own))]
        self.weight = (proj.detach().T @ keys.T).contiguous()  # [d, E]: one product at routing time
        self.bias = bias
        return self

    def log_probs(self, queries):
        return (((queries - self.shift) / self.scale) @ self.weight + self.bias).log_softmax(-1)


class RegularisedAttention(SequentialAttention):
    name = "reg"
    penalty = 1.0


class OrthogonalAttention(SequentialAttention):
    name = "orth"
    project = True


class AttentionOverAttention(Rule):
    """A second attention over the first-level distributions of the other rules: per question, each
    rule's distribution is weighted by softmax(-entropy / temperature), so the most decided rule leads."""

    name = "aoa"
    members = ("cosine", "lda", "qda")
    temperature = 0.5

    def __init__(self):
        self.rules = [RULES[m]() for m in self.members]

    def fit(self, summaries):
        for rule in self.rules:
            rule.fit(summaries)
        return self

    def log_probs(self, queries):
        first = torch.stack([rule.log_probs(queries) for rule in self.rules], 1)  # [B, R, E]
        entropy = -(first.exp() * first).sum(-1)  # [B, R]
        second = (-entropy / self.temperature).log_softmax(-1)
        return torch.logsumexp(first + second[..., None], dim=1)

    def state(self):
        return {f"{rule.name}.{k}": v for rule in self.rules for k, v in rule.state().items()}

    def load(self, state):
        for rule in self.rules:
            rule.load({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(rule.name + ".")})
        return self


RULES: dict[str, type[Rule]] = {r.name: r for r in (CosineRule, LDARule, QDARule, LinearRule, AttentionOverAttention,
                                                    SequentialAttention, RegularisedAttention, OrthogonalAttention)}


def make_rule(name: str) -> Rule:
    if name not in RULES:
        raise BaasError(f"unknown routing rule '{name}'; expected one of {', '.join(RULES)}")
    return RULES[name]()
