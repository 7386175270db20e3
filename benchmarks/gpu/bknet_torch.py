#!/usr/bin/env python3
"""BKNet (models/bknet.py, configs/default.yaml) ported to PyTorch, timed on a GPU.

Why a port: the GPU machine this project is lent has PyTorch and JAX but no TensorFlow, and
TF 2.16's GPU wheels with their CUDA 12 libraries (~2 GB) are far over what may be carried to
it (64 MiB), its CUDA being 13 anyway. So the project's own Trainer cannot run there; this
standalone script (no project imports: only torch, numpy and, if present, PIL) builds the same
network and measures what the issue asks, as the best available estimate of BKNet on a GPU.

The model, as the TF one of the default config: input 48x48x1; trunk of 4 blocks (32, 64, 128,
256 filters; 2, 2, 2, 3 convolutions 3x3 same padding, each + batch norm (eps 1e-3, momentum
0.9 in Keras' sense) + ReLU; each block a 2x2 max-pool; block dropout 0 = none); flatten in
Keras' (h, w, c) order; per task (smile 2, gender 2, age 5) FC 256 -> ReLU -> dropout 0.5 ->
FC 256 -> ReLU -> dropout 0.5 -> an output layer computed in float32 (models/heads.py);
he_normal (truncated) kernels, glorot_uniform outputs. Training step: the masked per-task
losses of models/losses.py (each task's softmax cross-entropy summed over its own examples
over max(count, 1); tasks summed, the default weighting), backward, Adam at 5e-4 (the
project's optimizer; fused on CUDA). Batches mix the tasks as the default sources do (smile on
a third of each batch, gender and age on the rest; benchmarks/mtl_overhead.py `_batch`).
`--check REF.npz` (from benchmarks/gpu/export_tf_reference.py) loads the TF model's weights
into the port and compares outputs and loss.

FLOPs: this project's rule (benchmarks/precision.py): each Conv2D's and Dense's forward
multiply-accumulates, x 2 (multiply and add) x 3 (forward, backward to inputs, backward to
weights) = the usual 3x-forward convention. 140,650,752 MACs = 0.8439 GFLOP per training
image; batch norm, activations, pooling, the loss and the optimizer are left out.
train_mfu = images/s x 0.8439 GFLOP / the measured matmul FLOP/s of the same dtype
(8192^3, mean of 10 after warm-up): float32 with TF32 off, float32 with TF32 on, bfloat16.

    python3 benchmarks/gpu/bknet_torch.py --out gpu.json     (a GPU: ~3 min on an H100)
    python3 benchmarks/gpu/bknet_torch.py --smoke            (CPU, seconds: checks the script)

Prints one JSON object (the last line of stdout); progress goes to stderr. With --out it is
also written there after every section, so a run cut short keeps what it measured.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing as mp
import os
import platform
import signal
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HEIGHT, WIDTH, CHANNELS = 48, 48, 1
BLOCKS = ((32, 2), (64, 2), (128, 2), (256, 3))  # (filters, convolutions), models/bknet.py
FC_UNITS = 256
TASKS = (("smile", 2), ("gender", 2), ("age", 5))  # configs/default.yaml, in its order
DROPOUT, BN_MOMENTUM, BN_EPS, LEARNING_RATE = 0.5, 0.9, 1e-3, 5e-4

# Of the TF model (tf_keras, models/bknet.py on configs/default.yaml), computed on the CPU with
# the project's venv on 2026-12-06: model.count_params() and the trainable weights' sizes, and
# benchmarks.precision.macs_per_image(model) (benchmarks/gpu/export_tf_reference.py prints all
# three). Keras' total counts batch norm's moving mean and variance (2,432 numbers), which
# PyTorch keeps as buffers: trainable = the port's parameters, total = parameters + those buffers.
TF_PARAMS_TOTAL = 3_736_553
TF_PARAMS_TRAINABLE = 3_734_121
TF_MACS_PER_IMAGE = 140_650_752
TRAIN_FLOPS_PER_IMAGE = 2 * 3 * TF_MACS_PER_IMAGE  # 0.8439 GFLOP, benchmarks/precision.py's rule

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The model

class BKNet(nn.Module):
    """Layers named as the Keras ones (block1_conv1, ..., smile_fc1, smile)."""

    def __init__(self):
        super().__init__()
        layers = {}
        c_in = CHANNELS
        for b, (filters, convs) in enumerate(BLOCKS, start=1):
            for c in range(1, convs + 1):
                layers[f"block{b}_conv{c}"] = nn.Conv2d(c_in, filters, 3, padding=1)
                # Keras momentum m (moving = m * moving + (1 - m) * batch) is PyTorch's 1 - m
                layers[f"block{b}_bn{c}"] = nn.BatchNorm2d(filters, eps=BN_EPS, momentum=1 - BN_MOMENTUM)
                c_in = filters
        size = HEIGHT // 2 ** len(BLOCKS), WIDTH // 2 ** len(BLOCKS)  # 3 x 3: every pool halves an even size
        flat = size[0] * size[1] * c_in
        for task, width in TASKS:
            layers[f"{task}_fc1"] = nn.Linear(flat, FC_UNITS)
            layers[f"{task}_fc2"] = nn.Linear(FC_UNITS, FC_UNITS)
            layers[task] = nn.Linear(FC_UNITS, width)
        self.layers = nn.ModuleDict(layers)
        self._init()

    def _init(self):
        for name, m in self.layers.items():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.zeros_(m.bias)
                if name in dict(TASKS):  # Keras Dense default: glorot_uniform
                    nn.init.xavier_uniform_(m.weight)
                else:  # he_normal: truncated normal, stddev sqrt(2 / fan_in) / 0.8796...
                    fan_in = m.weight[0].numel()
                    std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
                    nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x [batch, 1, 48, 48] (any memory format) -> {task: float32 logits}."""
        L = self.layers
        for b, (_, convs) in enumerate(BLOCKS, start=1):
            for c in range(1, convs + 1):
                x = F.relu(L[f"block{b}_bn{c}"](L[f"block{b}_conv{c}"](x)))
            x = F.max_pool2d(x, 2)
        features = x.permute(0, 2, 3, 1).flatten(1)  # Keras' Flatten order (h, w, c)
        out = {}
        for task, _ in TASKS:
            y = F.dropout(F.relu(L[f"{task}_fc1"](features)), DROPOUT, self.training)
            y = F.dropout(F.relu(L[f"{task}_fc2"](y)), DROPOUT, self.training)
            with torch.autocast(y.device.type, enabled=False):  # the output layer in float32 (models/heads.py)
                out[task] = L[task](y.float())
        return out


def masked_loss(logits: dict, labels: dict, masks: dict) -> torch.Tensor:
    """models/losses.py: per task sum(w * CE) / max(sum(w), 1); the tasks summed."""
    total = 0.0
    for task, _ in TASKS:
        ce = F.cross_entropy(logits[task].float(), labels[task], reduction="none")
        total = total + (masks[task] * ce).sum() / masks[task].sum().clamp(min=1.0)
    return total


def count_macs(model: BKNet) -> int:
    """benchmarks/precision.py's rule from the layers' output shapes on one image."""
    total = 0
    hooks = []

    def hook(m, inputs, output):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            positions = output.shape[2] * output.shape[3]
            total += positions * m.out_channels * m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        else:
            total += m.in_features * m.out_features

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(hook))
    was = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, CHANNELS, HEIGHT, WIDTH, device=next(model.parameters()).device))
    model.train(was)
    for h in hooks:
        h.remove()
    return total


def check_counts(model: BKNet) -> dict:
    params = sum(p.numel() for p in model.parameters())
    moving = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    macs = count_macs(model)
    assert params == TF_PARAMS_TRAINABLE, f"port has {params} parameters, the TF model {TF_PARAMS_TRAINABLE} trainable"
    assert params + moving == TF_PARAMS_TOTAL, f"port {params + moving} with BN moving stats, TF {TF_PARAMS_TOTAL}"
    assert macs == TF_MACS_PER_IMAGE, f"port {macs} MACs per image, TF model {TF_MACS_PER_IMAGE}"
    return {"params_trainable": params, "params_total_with_bn_moving_stats": params + moving,
            "macs_per_image_forward": macs, "train_flops_per_image": TRAIN_FLOPS_PER_IMAGE,
            "equal_to_tf_model": True}


def load_keras_weights(model: BKNet, ref) -> None:
    """`ref[<layer>/<k>]` in Keras layout -> the port's layers."""
    with torch.no_grad():
        for name, m in model.layers.items():
            count = 4 if isinstance(m, nn.BatchNorm2d) else 2
            w = [torch.from_numpy(np.asarray(ref[f"{name}/{k}"])) for k in range(count)]
            if isinstance(m, nn.Conv2d):  # [kh, kw, in, out] -> [out, in, kh, kw]
                targets = [(m.weight, w[0].permute(3, 2, 0, 1)), (m.bias, w[1])]
            elif isinstance(m, nn.Linear):  # [in, out] -> [out, in]
                targets = [(m.weight, w[0].T), (m.bias, w[1])]
            else:  # gamma, beta, moving mean, moving variance
                targets = list(zip((m.weight, m.bias, m.running_mean, m.running_var), w))
            for target, value in targets:
                target.copy_(value)


def check_against_tf(path: str) -> dict:
    ref = np.load(path)
    model = BKNet()
    counts = check_counts(model)
    assert int(ref["params_total"]) == TF_PARAMS_TOTAL and int(ref["macs"]) == TF_MACS_PER_IMAGE
    load_keras_weights(model, ref)
    model.eval()
    x = torch.from_numpy(ref["input"]).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
    with torch.no_grad():
        logits = model(x)
    out_diff = max(float(np.abs(torch.softmax(logits[t], -1).numpy() - ref[f"out/{t}"]).max()) for t, _ in TASKS)
    labels = {t: torch.from_numpy(ref[f"labels/{t}"]).long() for t, _ in TASKS}
    masks = {t: torch.from_numpy(ref[f"mask/{t}"]) for t, _ in TASKS}
    loss = float(masked_loss(logits, labels, masks))
    result = {**counts, "max_abs_diff_probabilities": out_diff, "loss_port": loss, "loss_tf": float(ref["loss"]),
              "loss_rel_diff": abs(loss - float(ref["loss"])) / abs(float(ref["loss"]))}
    assert out_diff < 1e-4 and result["loss_rel_diff"] < 1e-4, result
    return result


# ---------------------------------------------------------------------------------------------
# Precision switches (PyTorch >= 2.9 has the fp32_precision API; mixing it with allow_tf32 fails)

def set_tf32(on: bool) -> dict:
    mode = "tf32" if on else "ieee"
    try:
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.conv.fp32_precision = mode
        return {"matmul": torch.backends.cuda.matmul.fp32_precision, "conv": torch.backends.cudnn.conv.fp32_precision}
    except AttributeError:
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on
        return {"matmul_allow_tf32": on, "cudnn_allow_tf32": on}


MODES = {  # name: (TF32 on, autocast dtype, matmul peak to divide by)
    "float32": (False, None, "float32"),
    "float32_tf32": (True, None, "float32_tf32"),
    "bf16_autocast": (False, torch.bfloat16, "bfloat16"),
}


class Timer:
    def __init__(self, device: torch.device):
        self.device = device

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def now(self) -> float:
        self.sync()
        return time.perf_counter()


def matmul_peak(device, n: int, reps: int, warm: int) -> dict:
    out = {}
    for name, (tf32, dtype) in {"float32": (False, torch.float32), "float32_tf32": (True, torch.float32),
                                "bfloat16": (False, torch.bfloat16)}.items():
        set_tf32(tf32)
        g = torch.Generator(device=device).manual_seed(0)
        a = torch.randn(n, n, device=device, generator=g).to(dtype)
        b = torch.randn(n, n, device=device, generator=g).to(dtype)
        for _ in range(warm):
            c = a @ b
        times = []
        if device.type == "cuda":
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
            torch.cuda.synchronize()
            for s, e in events:
                s.record()
                c = a @ b
                e.record()
            torch.cuda.synchronize()
            times = [s.elapsed_time(e) / 1e3 for s, e in events]
        else:
            for _ in range(reps):
                t = time.perf_counter()
                c = a @ b
                times.append(time.perf_counter() - t)
        del a, b, c
        flops = 2.0 * n ** 3
        out[name] = {"tflops_mean": flops / (sum(times) / len(times)) / 1e12,
                     "tflops_best": flops / min(times) / 1e12, "n": n, "reps": reps}
        log(f"matmul {name} {n}^3: {out[name]['tflops_mean']:.4g} TFLOP/s (mean of {reps}), "
            f"best {out[name]['tflops_best']:.4g}")
    set_tf32(False)
    return out


def make_batch(batch: int, device, channels_last: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, CHANNELS, HEIGHT, WIDTH, generator=g)
    on_first = (torch.arange(batch) % 3 == 0).float()
    labels, masks = {}, {}
    for i, (task, width) in enumerate(TASKS):
        labels[task] = torch.randint(0, width, (batch,), generator=g).to(device)
        masks[task] = (on_first if i == 0 else 1.0 - on_first).to(device)
    x = x.to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, labels, masks


def forward_loss_fn(model, labels, masks):
    def forward_loss(x):
        return masked_loss(model(x), labels, masks)
    return forward_loss


def make_step(model, opt, x, labels, masks, autocast_dtype, compiled=None):
    device_type = x.device.type
    forward_loss = compiled or forward_loss_fn(model, labels, masks)

    def step():
        with torch.autocast(device_type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
            loss = forward_loss(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step


def time_training(step, timer: Timer, batch: int, min_seconds: float, warm_steps: int, blocks: int = 3) -> dict:
    t = timer.now()
    for _ in range(warm_steps):  # cudnn autotuning, allocator, Adam's state
        loss = step()
    timer.sync()
    warm_s = time.perf_counter() - t
    # step time estimate from 5 more steps, then `blocks` blocks of >= min_seconds / blocks each
    t = timer.now()
    for _ in range(5):
        step()
    est = (timer.now() - t) / 5
    n = max(5, math.ceil(min_seconds / blocks / est))
    rates, total_t, total_steps = [], 0.0, 0
    for _ in range(blocks):
        t = timer.now()
        for _ in range(n):
            loss = step()
        dt = timer.now() - t
        rates.append(n * batch / dt)
        total_t += dt
        total_steps += n
    loss = float(loss.detach())
    assert math.isfinite(loss), "training diverged"
    return {"images_per_s": total_steps * batch / total_t, "timed_s": total_t, "steps": total_steps,
            "block_images_per_s": [round(r, 1) for r in rates], "step_ms": 1e3 * total_t / total_steps,
            "warmup_s": warm_s, "last_loss": loss}


def new_model(device, channels_last: bool):
    torch.manual_seed(0)
    model = BKNet().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    fused = device.type == "cuda"
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, eps=1e-7, fused=fused)  # Keras Adam's epsilon
    return model, opt


# ---------------------------------------------------------------------------------------------
# Host input rate: decoding 48x48 images on CPU worker processes

BOX9 = np.ones(9) / 9


def synthetic_faces(n: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth 96x96 gray 'faces' (an ellipse, shading, low-frequency texture, a little noise):
    their 48x48 PNGs come out ~1.3 KB like the project's sample images (GENKI-sized 96x96
    JPEGs made gray and resized: 1,284 bytes on average)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:96] / 95.0
    images = []
    for _ in range(n):
        cx, cy, rx, ry = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6), rng.uniform(0.25, 0.35), rng.uniform(0.3, 0.45)
        face = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
        low = rng.normal(0, 1, (7, 7))
        low = np.kron(low, np.ones((14, 14)))[:96, :96]  # blocky, then smoothed below
        for axis in (0, 1):  # a 9-pixel box blur along each axis
            low = np.apply_along_axis(np.convolve, axis, low, BOX9, "same")
        img = 70 + 60 * xx * rng.uniform(-1, 1) + 40 * low + face * rng.uniform(50, 110)
        for _ in range(3):  # eyes, mouth: dark spots
            sx, sy = rng.uniform(0.3, 0.7), rng.uniform(0.35, 0.75)
            img -= 60 * np.exp(-(((xx - sx) ** 2) + (yy - sy) ** 2) / 0.002)
        img += rng.normal(0, 4, img.shape)
        images.append(np.clip(img, 0, 255).astype(np.uint8))
    return images


def png_gray_sub(a: np.ndarray) -> bytes:
    """A minimal PNG encoder (8-bit gray, 'Sub' filter on every row) for a machine without PIL."""
    h, w = a.shape
    sub = np.diff(a.astype(np.int16), axis=1, prepend=0).astype(np.uint8)
    raw = np.concatenate([np.ones((h, 1), np.uint8), sub], axis=1).tobytes()

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def decode_png_gray_sub(data: bytes) -> np.ndarray:
    """Decodes only png_gray_sub's output: inflate, undo 'Sub' (a running sum mod 256)."""
    w, h = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w + 1)[:, 1:]
    return np.cumsum(rows, axis=1, dtype=np.uint8)


_WORK = {}


def _decode_png48(data: bytes) -> np.ndarray:
    from PIL import Image
    img = Image.open(io.BytesIO(data))
    img.load()
    return (np.asarray(img, np.float32) - 128.0) / 255.0  # the default config's 'centered'


def _decode_png48_nopil(data: bytes) -> np.ndarray:
    return (decode_png_gray_sub(data).astype(np.float32) - 128.0) / 255.0


def _prep_jpeg96(data: bytes) -> np.ndarray:
    from PIL import Image
    img = Image.open(io.BytesIO(data)).convert("L").resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)
    return (np.asarray(img, np.float32) - 128.0) / 255.0


DECODERS = {"png48_decode": _decode_png48, "png48_decode_nopil": _decode_png48_nopil, "jpeg96_prep": _prep_jpeg96}


def _worker(args):
    kind, seconds = args
    fn, items = DECODERS[kind], _WORK[kind]
    start = time.time()
    count = 0
    while True:
        for data in items:
            fn(data)
        count += len(items)
        if time.time() - start >= seconds:
            break
    return start, time.time(), count


def input_rate(seconds: float, worker_counts: list[int]) -> dict:
    """Images/s decoded by `k` worker processes (forked before CUDA starts), each timing
    itself; the rate is all their images over the span from the first start to the last end."""
    try:
        import PIL
        from PIL import Image
        pil = PIL.__version__
    except ImportError:
        pil = None
    faces = synthetic_faces(64)
    if pil:
        def png(a):
            b = io.BytesIO()
            Image.fromarray(a).resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR).save(b, "PNG")
            return b.getvalue()

        def jpeg(a):
            b = io.BytesIO()
            Image.fromarray(a).convert("RGB").save(b, "JPEG", quality=90)
            return b.getvalue()
        _WORK["png48_decode"] = [png(a) for a in faces]
        _WORK["jpeg96_prep"] = [jpeg(a) for a in faces]
        kinds = ["png48_decode", "jpeg96_prep"]
    else:
        _WORK["png48_decode_nopil"] = [png_gray_sub(a[::2, ::2].copy()) for a in faces]
        kinds = ["png48_decode_nopil"]
    out = {"pil": pil, "bytes_mean": {k: float(np.mean([len(d) for d in _WORK[k]])) for k in kinds},
           "seconds_per_run": seconds, "workers": {}}
    ctx = mp.get_context("fork")
    for k in worker_counts:
        with ctx.Pool(k) as pool:
            pool.map(_worker, [(kinds[0], 0.05)] * k)  # processes started and warm
            res = {}
            for kind in kinds:
                spans = pool.map(_worker, [(kind, seconds)] * k)
                span = max(e for _, e, _ in spans) - min(s for s, _, _ in spans)
                res[kind] = sum(c for _, _, c in spans) / span
        out["workers"][k] = res
        log(f"input: {k} worker(s): " + ", ".join(f"{kind} {r:,.0f} images/s" for kind, r in res.items()))
    ones = out["workers"][worker_counts[0]]
    out["per_core"] = {kind: r / worker_counts[0] for kind, r in ones.items()}
    out["all_cores"] = out["workers"][worker_counts[-1]]
    out["all_cores_n"] = worker_counts[-1]
    return out


# ---------------------------------------------------------------------------------------------

class Budget(Exception):
    pass


def _alarm(signum, frame):
    raise Budget("time budget for this part ran out")


def device_info(device) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "device_type": device.type}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(device=torch.cuda.get_device_name(device), capability=f"{p.major}.{p.minor}",
                    memory_gib=round(p.total_memory / 2 ** 30, 1), sms=p.multi_processor_count,
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    else:
        info.update(device=platform.processor() or platform.machine(), threads=torch.get_num_threads())
    return info


def summarize(result: dict, batches: list[int]) -> dict:
    """The headline figures: per mode and batch the better layout's rate and MFU; train_mfu (the best
    batch's); the host decode rate over the training rate at the smallest and largest batch."""
    train, layouts = result["train"], ("nchw", "channels_last")
    summary: dict = {"train_flops_per_image": TRAIN_FLOPS_PER_IMAGE, "flops_rule": "2 x 3 x forward MACs "
                     "(benchmarks/precision.py; = 3x forward FLOPs)"}
    for mode in MODES:
        per_batch = {}
        for batch in batches:
            done = [lay for lay in layouts if "images_per_s" in train.get(mode, {}).get(lay, {}).get(str(batch), {})]
            if not done:
                continue
            best = max(done, key=lambda lay: train[mode][lay][str(batch)]["images_per_s"])
            r = train[mode][best][str(batch)]
            per_batch[str(batch)] = {"images_per_s": round(r["images_per_s"], 1), "layout": best,
                                     "mfu": round(r["mfu"], 4)}
        summary[mode] = per_batch
    summary["train_mfu"] = {mode: max(v["mfu"] for v in summary[mode].values()) for mode in MODES if summary[mode]}
    inp = result.get("input", {})
    if "all_cores" in inp:
        ratio = {}
        for kind, rate in inp["all_cores"].items():
            ratio[kind] = {mode: {b: round(rate / summary[mode][b]["images_per_s"], 2)
                                  for b in (str(batches[0]), str(batches[-1])) if b in summary[mode]}
                           for mode in MODES}
        summary["input_vs_model_rate"] = ratio
        summary["input_all_cores"] = {k: round(v, 0) for k, v in inp["all_cores"].items()}
        summary["input_per_core"] = {k: round(v, 0) for k, v in inp["per_core"].items()}
    for key, r in result.get("compile", {}).items():
        if isinstance(r, dict) and "images_per_s" in r:
            r = {"images_per_s": round(r["images_per_s"], 1), "vs_eager": round(r["vs_eager"], 3),
                 "mfu": round(r["mfu"], 4), "compile_s": round(r["compile_s"], 1)}
        summary.setdefault("compiled", {})[key] = r
    return summary


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, CPU allowed: checks the script runs")
    ap.add_argument("--out", help="write the JSON here too (after every section)")
    ap.add_argument("--check", metavar="REF.npz", help="compare with the TF model (export_tf_reference.py) and exit")
    ap.add_argument("--batches", default=None, help="comma-separated (default 32,256,1024; smoke 4,16)")
    ap.add_argument("--seconds", type=float, default=None, help="timed seconds per configuration (default 2.4)")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--compile", action="store_true", help="try torch.compile even in --smoke")
    ap.add_argument("--budget", type=float, default=330.0, help="seconds after which optional parts are skipped")
    ap.add_argument("--compile-timeout", type=float, default=150.0, help="seconds for one torch.compile try")
    args = ap.parse_args(argv)

    if args.check:
        result = check_against_tf(args.check)
        print(json.dumps(result))
        return result

    smoke = args.smoke
    batches = [int(b) for b in (args.batches or ("4,16" if smoke else "32,256,1024")).split(",")]
    seconds = args.seconds or (0.3 if smoke else 2.4)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    result: dict = {"benchmark": "bknet_torch_port", "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                    "smoke": smoke, "argv": sys.argv[1:]}

    def save():
        result["elapsed_s"] = round(time.perf_counter() - T0, 1)
        if args.out:
            tmp = args.out + ".tmp"
            with open(tmp, "w") as f:
                json.dump(result, f, indent=1)
            os.replace(tmp, args.out)

    # 1. The host's decode rate, before CUDA starts (the workers are forked)
    counts = sorted({1, max(1, cpus // 2), cpus}) if not smoke else sorted({1, min(2, cpus)})
    try:
        result["input"] = input_rate(0.3 if smoke else 2.0, counts)
    except Exception as e:  # noqa: BLE001 - a figure missing is reported, the GPU part still runs
        result["input"] = {"error": repr(e)}
        log(f"input rate failed: {e!r}")
    save()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not smoke:
        log("no CUDA device: use --smoke on a CPU")
    torch.backends.cudnn.benchmark = True
    result["device"] = device_info(device)
    log(f"device: {result['device']}")
    model, _ = new_model(device, False)
    result["model"] = check_counts(model)
    del model
    log(f"port: {result['model']}")
    save()

    # 2. Matmul peaks
    n, reps, warm = (256, 3, 1) if smoke else (8192, 10, 3)
    result["matmul_peak"] = matmul_peak(device, n, reps, warm)
    save()

    # 3. Training rates
    timer = Timer(device)
    train: dict = {}
    result["train"] = train
    layouts = {"nchw": False, "channels_last": True}
    for mode, (tf32, dtype, _) in MODES.items():
        for layout, cl in layouts.items():
            for batch in batches:
                set_tf32(tf32)
                try:
                    model, opt = new_model(device, cl)
                    x, labels, masks = make_batch(batch, device, cl)
                    step = make_step(model, opt, x, labels, masks, dtype)
                    r = time_training(step, timer, batch, seconds, 3 if smoke else 15)
                    peak = result["matmul_peak"][MODES[mode][2]]["tflops_mean"] * 1e12
                    r["train_tflops"] = r["images_per_s"] * TRAIN_FLOPS_PER_IMAGE / 1e12
                    r["mfu"] = r["images_per_s"] * TRAIN_FLOPS_PER_IMAGE / peak
                    log(f"train {mode:14s} {layout:13s} batch {batch:5d}: {r['images_per_s']:11,.0f} images/s "
                        f"({r['step_ms']:.2f} ms/step, MFU {r['mfu']:.4f}, loss {r['last_loss']:.3f})")
                except Exception as e:  # noqa: BLE001 - one configuration failing leaves the others
                    r = {"error": repr(e)[:500]}
                    log(f"train {mode} {layout} batch {batch} failed: {e!r}"[:500])
                train.setdefault(mode, {}).setdefault(layout, {})[str(batch)] = r
                model = opt = x = step = None
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                save()
    set_tf32(False)
    result["summary"] = summarize(result, batches)
    save()

    # 4. torch.compile (optional): the forward + loss compiled, bf16, the better layout at the largest batch
    comp: dict = {}
    result["compile"] = comp
    want_compile = (device.type == "cuda" and not args.no_compile) or args.compile
    if not want_compile:
        comp["skipped"] = "not on CUDA (use --compile to force)" if device.type != "cuda" else "--no-compile"
    else:
        big = str(batches[-1])
        best_layout = max(layouts, key=lambda lay: train["bf16_autocast"][lay][big].get("images_per_s", 0.0))
        for batch, cmode in ((batches[-1], "default"), (batches[0], "reduce-overhead")):
            key = f"bf16_autocast/{best_layout}/{batch}/{cmode}"
            left = args.budget - (time.perf_counter() - T0)
            if left < 60:
                comp[key] = {"skipped": f"only {left:.0f} s of the {args.budget:.0f} s budget left"}
                continue
            old = signal.signal(signal.SIGALRM, _alarm)
            signal.alarm(int(min(args.compile_timeout, left - 20)))
            try:
                torch._dynamo.reset()
                model, opt = new_model(device, layouts[best_layout])
                x, labels, masks = make_batch(batch, device, layouts[best_layout])
                fn = torch.compile(forward_loss_fn(model, labels, masks), mode=cmode, dynamic=False)
                step = make_step(model, opt, x, labels, masks, torch.bfloat16, compiled=fn)
                t = time.perf_counter()
                step()
                step()
                timer.sync()
                compile_s = time.perf_counter() - t
                r = time_training(step, timer, batch, seconds, 10)
                r["compile_s"] = compile_s
                peak = result["matmul_peak"]["bfloat16"]["tflops_mean"] * 1e12
                r["mfu"] = r["images_per_s"] * TRAIN_FLOPS_PER_IMAGE / peak
                eager = train["bf16_autocast"][best_layout][str(batch)].get("images_per_s", float("nan"))
                r["vs_eager"] = r["images_per_s"] / eager
                comp[key] = r
                log(f"compiled {key}: {r['images_per_s']:,.0f} images/s ({r['vs_eager']:.2f}x eager), "
                    f"compile {compile_s:.0f} s")
            except (Exception, Budget) as e:  # noqa: BLE001 - optional: its failure is a result
                comp[key] = {"error": repr(e)[:500]}
                log(f"compile {key} failed: {e!r}"[:500])
            finally:
                signal.alarm(0)
                signal.signal(signal.SIGALRM, old)
            save()

    # 5. Matmul again (did clocks or heat move?), and the summary
    if not smoke:
        result["matmul_peak_again"] = matmul_peak(device, n, reps, warm)
    result["summary"] = summarize(result, batches)
    save()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
