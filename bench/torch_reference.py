#!/usr/bin/env python3
"""PyTorch reference for bench/macer_bench's whole-step cases, on the same device.

Cases (same names, sizes and statistics as macer_bench):
  step.macer.lenet, step.macer.resnet20, step.macer.resnet110
                                          one MACER training step: noisy copies, forward,
                                          the reference MACER loss of SPEC.md, backward, SGD
  step.gaussian.lenet, step.gaussian.resnet110
                                          the same with Cohen's loss (mean cross-entropy)
  step.smoothadv.lenet, step.smoothadv.resnet110
                                          SmoothAdv: PGD (T = 10, eps 1.0, multi-noise, eval mode,
                                          no weight gradients) as Salman et al.'s code, then the
                                          Gaussian loss on the adversarial copies
  step.consistency.lenet, step.consistency.resnet110
                                          Consistency (Jeong & Shin): cross-entropy + lambda 10 mean
                                          KL(pbar || p_i) + eta 0.5 H(pbar), as their code
  step.smoothmix.lenet, step.smoothmix.resnet110
                                          SmoothMix (Jeong et al.): T = 4 adversary steps of alpha 0.5,
                                          clean and mixed forwards, eta 5, as their code
  certify.lenet, certify.resnet110        noisy forward passes of certification (argmax + counts)
Sizes: GPU B=64, k=16 for steps and batch 1000 for certification; CPU smaller (see SIZES).
Variants (--variant), the modes a PyTorch user switches on:
  fp32           eager, float32, NCHW (the default)
  channels_last  eager, float32, model and inputs in channels_last (NHWC)
  bf16           eager under torch.autocast(bfloat16) (+ channels_last), loss on fp32 logits
  compile        torch.compile(model) under autocast(bfloat16) (+ channels_last)
Prints median/min/max after a warm-up; --json FILE writes the results.
"""
import contextlib
import argparse
import fnmatch
import json
import os
import platform
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# (batch, copies) per case and device; must equal bench/cases_steps.cpp.
SIZES = {
    "cuda": {"step.macer.lenet": (64, 16), "step.macer.resnet20": (64, 16), "step.macer.resnet110": (64, 16),
             "step.gaussian.lenet": (64, 16), "step.gaussian.resnet110": (64, 16),
             "step.smoothadv.lenet": (64, 16), "step.smoothadv.resnet110": (64, 16),
             "step.consistency.lenet": (64, 16), "step.consistency.resnet110": (64, 16),
             "step.smoothmix.lenet": (64, 16), "step.smoothmix.resnet110": (64, 16),
             "certify.lenet": (1000, 1), "certify.resnet110": (1000, 1)},
    "cpu": {"step.macer.lenet": (64, 16), "step.macer.resnet20": (8, 4), "step.macer.resnet110": (8, 4),
            "step.gaussian.lenet": (64, 16), "step.gaussian.resnet110": (8, 4),
            "step.smoothadv.lenet": (64, 16), "step.smoothadv.resnet110": (8, 4),
            "step.consistency.lenet": (64, 16), "step.consistency.resnet110": (8, 4),
            "step.smoothmix.lenet": (64, 16), "step.smoothmix.resnet110": (8, 4),
            "certify.lenet": (1000, 1), "certify.resnet110": (32, 1)},
}


class LeNet(nn.Module):
    def __init__(self, channels=1, size=28, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        s = ((size - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(50 * s * s, 500)
        self.fc2 = nn.Linear(500, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (self.downsample(x) if self.downsample is not None else x))


class CifarResNet(nn.Module):
    def __init__(self, depth=110, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for stage, width in enumerate([16, 32, 64]):
            layer = []
            for b in range(n):
                layer.append(BasicBlock(cin, width, 2 if (b == 0 and stage > 0) else 1))
                cin = width
            blocks.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3 = blocks
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        return self.fc(F.avg_pool2d(h, h.shape[-1]).flatten(1))


def macer_loss(logits, labels, b, k, sigma=0.25, lbd=12.0, beta=16.0, gamma=8.0):
    """The reference formulation of SPEC.md (as MACER's official code)."""
    c = logits.shape[1]
    z = logits.view(b, k, c)
    p = F.softmax(z, dim=2).mean(1)
    cl = F.nll_loss(torch.log(p + 1e-10), labels, reduction="sum")
    q = F.softmax(beta * z, dim=2).mean(1)
    top2, idx = torch.topk(q, 2)
    normal = torch.distributions.Normal(torch.tensor([0.0], device=logits.device),
                                        torch.tensor([1.0], device=logits.device))
    xi = normal.icdf(top2[:, 0]) - normal.icdf(top2[:, 1])
    active = ~torch.isnan(xi) & ~torch.isinf(xi) & (xi <= gamma) & (idx[:, 0] == labels)
    rl = sigma / 2 * (gamma - xi[active]).sum()
    return (cl + lbd * rl) / b


def time_it(fn, device, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop) * 1e-3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def make_model(name, device):
    model = LeNet() if name == "lenet" else CifarResNet(int(name[len("resnet"):]))
    shape = (1, 28, 28) if name == "lenet" else (3, 32, 32)
    return model.to(device), shape


def pgd_attack(model, x, y, noise, b, k, eps, steps):
    """SmoothAdv's multi-noise PGD (SPEC.md): eval mode, input gradient only, the step's k draws."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    delta = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        logits = model((x + delta).repeat_interleave(k, 0) + noise)
        p = F.softmax(logits, dim=1).view(b, k, -1).mean(1)
        loss = F.nll_loss(torch.log(p.clamp(min=1e-20)), y)
        g = torch.autograd.grad(loss, [delta])[0]
        norms = g.view(b, -1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))
        g = g / norms.clamp(min=1e-30)
        delta = (delta.detach() + 2 * eps / steps * g).add(x).clamp(0, 1).sub(x)
        delta = delta.renorm(p=2, dim=0, maxnorm=eps)
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    return (x + delta).detach()


def consistency_loss(logits, y, b, k, lbd=10.0, eta=0.5):
    """Jeong & Shin's loss: CE over the copies + lbd mean KL(pbar || p_i) + eta H(pbar)."""
    ce = F.cross_entropy(logits, y.repeat_interleave(k))
    p = F.softmax(logits, dim=1).view(b, k, -1)
    pbar = p.mean(1)
    kl = (pbar.unsqueeze(1) * (torch.log(pbar.clamp(min=1e-20)).unsqueeze(1) - F.log_softmax(logits, 1).view(b, k, -1)))
    kl = kl.sum(2).mean()
    ent = -(pbar * torch.log(pbar.clamp(min=1e-20))).sum(1).mean()
    return ce + lbd * kl + eta * ent


def smoothmix_step(model, x, y, noise, b, k, steps=4, alpha=0.5, eta=5.0):
    """SmoothMix's adversary (mix_step 0) and loss, as the official train.py."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    adv = x.detach()
    for _ in range(steps):
        adv.requires_grad_(True)
        logits = model(adv.repeat_interleave(k, 0) + noise)
        p = F.softmax(logits, dim=1).view(b, k, -1).mean(1)
        loss = F.nll_loss(torch.log(p.clamp(min=1e-20)), y, reduction="sum")
        g = torch.autograd.grad(loss, [adv])[0]
        g = g / (g.view(b, -1).norm(dim=1).view(-1, *([1] * (x.dim() - 1))) + 1e-8)
        adv = (adv + alpha * g).clamp(0, 1).detach()
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    logits_c = model(x.repeat_interleave(k, 0) + noise)
    pbar = F.softmax(logits_c, 1).view(b, k, -1).mean(1)
    lam = torch.rand(b, device=x.device) / 2
    mixed = (1 - lam).view(-1, *([1] * (x.dim() - 1))) * x + lam.view(-1, *([1] * (x.dim() - 1))) * adv
    target = (1 - lam).view(-1, 1) * pbar + lam.view(-1, 1) / pbar.shape[1]
    logits_m = F.log_softmax(model(mixed.repeat_interleave(k, 0) + noise), 1)
    correct = (pbar.argmax(1) == y).float().repeat_interleave(k)
    kl = F.kl_div(logits_m, target.repeat_interleave(k, 0), reduction="none").sum(1)
    return F.cross_entropy(logits_c, y.repeat_interleave(k)) + eta * (correct * kl).mean()


def apply_variant(model, variant, device):
    """Returns (module to call, input converter, autocast context factory) for a --variant."""
    fmt = torch.channels_last if variant != "fp32" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    to_input = lambda x: x.contiguous(memory_format=fmt)
    if variant in ("bf16", "compile"):
        autocast = lambda: torch.autocast(device_type=device, dtype=torch.bfloat16)
    else:
        autocast = contextlib.nullcontext
    call = torch.compile(model) if variant == "compile" else model
    return call, to_input, autocast


def step_case(name, device, b, k, warmup, repeats, variant="fp32", method="macer"):
    model, shape = make_model(name, device)
    model.train()
    call, to_input, autocast = apply_variant(model, variant, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand((b,) + shape, device=device)
    y = torch.randint(0, 10, (b,), device=device)

    def step():
        noise = 0.25 * torch.randn((b * k,) + shape, device=device)
        if method == "smoothmix":  # the attack and both forwards in fp32 (--variant applies to the others)
            loss = smoothmix_step(model, x, y, noise, b, k)
        else:
            point = pgd_attack(model, x, y, noise, b, k, 1.0, 10) if method == "smoothadv" else x
            with autocast():
                logits = call(to_input(point.repeat_interleave(k, 0) + noise)).float()
            if method == "macer":
                loss = macer_loss(logits, y, b, k)
            elif method == "consistency":
                loss = consistency_loss(logits, y, b, k)
            else:
                loss = F.cross_entropy(logits, y.repeat_interleave(k))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time_it(step, device, warmup, repeats), b * k, "samples"


def certify_case(name, device, batch, warmup, repeats, variant="fp32"):
    model, shape = make_model(name, device)
    model.eval()
    call, to_input, autocast = apply_variant(model, variant, device)
    x = torch.rand(shape, device=device)
    counts = torch.zeros(10, dtype=torch.long, device=device)

    def fwd():
        with torch.no_grad(), autocast():
            noisy = x.unsqueeze(0).expand((batch,) + shape) + 0.25 * torch.randn((batch,) + shape, device=device)
            counts.add_(torch.bincount(call(to_input(noisy)).argmax(1), minlength=10))
    return time_it(fwd, device, warmup, repeats), batch, "fwd"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--filter", action="append", default=[],
                    help="cases whose name contains this or matches this glob, as macer_bench's --filter (repeatable)")
    ap.add_argument("--variant", default="fp32", choices=["fp32", "channels_last", "bf16", "compile"])
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json")
    args = ap.parse_args()
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)  # the engine's OpenBLAS uses every core too
    name_dev = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine()
    print(f"# torch_reference torch {torch.__version__} | {platform.node()} | {name_dev} | "
          f"threads {torch.get_num_threads()} | variant {args.variant} | warm-up {args.warmup}, repeats {args.repeats}")
    print(f"{'case':32s} {'median ms':>10s} {'min ms':>10s} {'max ms':>10s} {'throughput':>16s}")
    results = []
    for case, (b, k) in SIZES[device].items():
        if args.filter and not any(fnmatch.fnmatchcase(case, f) if any(c in f for c in "*?[") else f in case
                                   for f in args.filter):
            continue
        model = case.split(".")[-1]
        if case.startswith("step."):
            method = case.split(".")[1]
            (med, lo, hi), items, unit = step_case(model, device, b, k, args.warmup, args.repeats, args.variant,
                                                   method)
        else:
            (med, lo, hi), items, unit = certify_case(model, device, b, args.warmup, args.repeats, args.variant)
        print(f"{case:32s} {med*1e3:10.3f} {lo*1e3:10.3f} {hi*1e3:10.3f} {items/med:12.0f} {unit}/s", flush=True)
        results.append({"name": case, "median_s": med, "min_s": lo, "max_s": hi, "items": items, "item_unit": unit})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "variant": args.variant, "device": name_dev,
                       "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
