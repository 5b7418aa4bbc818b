#!/usr/bin/python3
# The models scripts/convert_checkpoint.py knows, as layers/models.cpp builds them (their tensor
# names and shapes, and the structure that tells them apart), and this engine's safetensors files.
"""Model tables and safetensors I/O for scripts/convert_checkpoint.py (no torch needed here).

expected_state(model, channels, classes, height, width) lists the (name, shape) pairs of a
model's state in layers/state.cpp's order (parameters in registration order, then buffers);
infer_model tells the model from a state's names; check_state compares a state with a model;
save_safetensors / read_safetensors write and read the format of engine/safetensors.cpp.
"""
import json
import os
import re
import struct

FORMAT = "macer-engine-checkpoint-1"


class ConvertError(Exception):
    """A refusal: the script prints it as one 'error: ...' line and exits 1."""


# torchvision.models.resnet*: depth -> (Bottleneck blocks?, blocks per stage), as torchvision's
# resnet.py builds them (and layers/models.cpp's TorchvisionResNet).
TORCHVISION_RESNETS = {18: (False, (2, 2, 2, 2)), 34: (False, (3, 4, 6, 3)), 50: (True, (3, 4, 6, 3)),
                       101: (True, (3, 4, 23, 3)), 152: (True, (3, 8, 36, 3))}

SUPPORTED = ("lenet (conv1, conv2, fc1, fc2); the Cifar ResNets resnet<6n+2> such as resnet20 and resnet110 "
             "(conv1 3x3, BasicBlocks in layer1-3; cifar_resnet50 and cifar_resnet152 at those depths); "
             "torchvision's resnet18 and resnet34 (BasicBlocks 2-2-2-2 and 3-4-6-3 in layer1-4), resnet50, "
             "resnet101 and resnet152 (Bottlenecks 3-4-6-3, 3-4-23-3, 3-8-36-3)")


def model_kind(model):
    """('lenet', None) | ('cifar', depth) | ('torchvision', depth) | (None, None) for unknown names."""
    if model == "lenet":
        return "lenet", None
    m = re.fullmatch(r"(cifar_)?resnet(\d{1,4})", model)
    if not m:
        return None, None
    depth = int(m.group(2))
    if not m.group(1) and depth in TORCHVISION_RESNETS:
        return "torchvision", depth
    if depth >= 8 and (depth - 2) % 6 == 0 and depth <= 1000:
        return "cifar", depth
    return None, None


def cifar_name(depth):
    """The registry's name of the Cifar ResNet of this depth: cifar_resnet<d> where torchvision's takes resnet<d>."""
    return ("cifar_resnet%d" if depth in TORCHVISION_RESNETS else "resnet%d") % depth


# ---- the models as layers/models.cpp builds them: ordered (name, shape) ---------------------
def _bn(prefix, c):
    return [(prefix + ".weight", (c,)), (prefix + ".bias", (c,))], \
           [(prefix + ".running_mean", (c,)), (prefix + ".running_var", (c,))]


def expected_state(model, channels, classes, height, width):
    """[(name, shape)]: parameters in registration order, then buffers, as layers/state.cpp."""
    params, buffers = [], []

    def conv(name, cin, cout, k, bias=False):
        params.append((name + ".weight", (cout, cin, k, k)))
        if bias:
            params.append((name + ".bias", (cout,)))

    def bn(name, c):
        p, b = _bn(name, c)
        params.extend(p)
        buffers.extend(b)

    def linear(name, cin, cout):
        params.extend([(name + ".weight", (cout, cin)), (name + ".bias", (cout,))])

    def block(prefix, cin, width, stride, bottleneck):
        out = width * 4 if bottleneck else width
        if bottleneck:
            conv(prefix + ".conv1", cin, width, 1)
            bn(prefix + ".bn1", width)
            conv(prefix + ".conv2", width, width, 3)
            bn(prefix + ".bn2", width)
            conv(prefix + ".conv3", width, out, 1)
            bn(prefix + ".bn3", out)
        else:
            conv(prefix + ".conv1", cin, width, 3)
            bn(prefix + ".bn1", width)
            conv(prefix + ".conv2", width, width, 3)
            bn(prefix + ".bn2", width)
        if stride != 1 or cin != out:
            conv(prefix + ".downsample.0", cin, out, 1)
            bn(prefix + ".downsample.1", out)
        return out

    kind, depth = model_kind(model)
    if kind == "lenet":
        h, w = ((height - 4) // 2 - 4) // 2, ((width - 4) // 2 - 4) // 2
        conv("conv1", channels, 20, 5, bias=True)
        conv("conv2", 20, 50, 5, bias=True)
        linear("fc1", 50 * h * w, 500)
        linear("fc2", 500, classes)
    elif kind == "torchvision":
        bottleneck, counts = TORCHVISION_RESNETS[depth]
        conv("conv1", channels, 64, 7)
        bn("bn1", 64)
        cin = 64
        for s, blocks in enumerate(counts):
            for b in range(blocks):
                cin = block("layer%d.%d" % (s + 1, b), cin, 64 << s, 2 if b == 0 and s > 0 else 1, bottleneck)
        linear("fc", cin, classes)
    elif kind == "cifar":
        n = (depth - 2) // 6
        conv("conv1", channels, 16, 3)
        bn("bn1", 16)
        cin = 16
        for s in range(3):
            for b in range(n):
                cin = block("layer%d.%d" % (s + 1, b), cin, 16 << s, 2 if b == 0 and s > 0 else 1, False)
        linear("fc", 64, classes)
    else:
        raise ConvertError("unknown model '%s'; known: %s" % (model, SUPPORTED))
    return params + buffers


def infer_model(sd, path):
    """The model whose structure the state's names have: lenet, a Cifar ResNet (layer1-3 of
    BasicBlocks, as many per stage) or one of torchvision's (layer1-4). None when the names are of
    no ResNet or LeNet at all; ConvertError naming the supported family for a ResNet-like
    structure that is none of them."""
    if "fc1.weight" in sd and "fc2.weight" in sd and "conv2.weight" in sd:
        return "lenet"
    counts = []  # blocks per stage: layer1, layer2, ...
    for stage in range(1, 6):
        idx = {int(m.group(1)) for k in sd for m in [re.match(r"layer%d\.(\d+)\." % stage, k)] if m}
        if not idx:
            break
        counts.append(max(idx) + 1)
    if not counts:
        return None
    bottleneck = any(re.match(r"layer\d+\.\d+\.conv3\.weight$", k) for k in sd)
    found = "%s, %s per stage in layer1-%d" % ("Bottlenecks" if bottleneck else "BasicBlocks",
                                               "-".join(map(str, counts)), len(counts))
    if len(counts) == 4:
        for depth, shape in TORCHVISION_RESNETS.items():
            if shape == (bottleneck, tuple(counts)):
                return "resnet%d" % depth
    elif len(counts) == 3 and not bottleneck and len(set(counts)) == 1:
        return cifar_name(6 * counts[0] + 2)
    raise ConvertError("%s: a ResNet with %s is none of the supported models: %s; convert a checkpoint of one of "
                       "these (or pass --model to see which keys differ)" % (path, found, SUPPORTED))


def check_state(sd, expected, path, model):
    """Every expected name present with its shape, nothing else: else one error naming them, and
    the model the keys' structure is (when it is a supported one), or the supported list."""
    names = [n for n, _ in expected]
    missing = [n for n in names if n not in sd]
    unexpected = sorted(k for k in sd if k not in set(names))
    wrong = ["%s %s (model: %s)" % (n, tuple(sd[n].shape), shape) for n, shape in expected
             if n in sd and tuple(sd[n].shape) != tuple(shape)]
    problems = []
    if unexpected:
        problems.append("%d unexpected keys: %s" % (len(unexpected), ", ".join(unexpected[:12]) +
                                                    (", ..." if len(unexpected) > 12 else "")))
    if missing:
        problems.append("%d missing: %s" % (len(missing), ", ".join(missing[:8]) + (", ..." if len(missing) > 8 else "")))
    if wrong:
        problems.append("%d of the wrong shape: %s" % (len(wrong), "; ".join(wrong[:6])))
    if problems:
        try:
            looks = infer_model(sd, path)
        except ConvertError:
            looks = None
        hint = ("; its keys are those of %s: pass --model %s, or leave --model out" % (looks, looks)
                if looks and looks != model else "; supported: " + SUPPORTED)
        raise ConvertError("%s: does not match %s: %s%s" % (path, model, "; ".join(problems), hint))


# ---- writing the safetensors --------------------------------------------------------------
def save_safetensors(path, tensors, metadata):
    """tensors: [(name, float32 numpy array)]; 8-byte LE header length, JSON header, raw data."""
    header = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name, a in tensors:
        raw = a.astype("<f4", copy=False).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for raw in blobs:
                f.write(raw)
    write_whole(path, write)


def write_whole(path, write):
    """Writes `path` whole or not at all: write(PATH.tmp), then renamed over `path`; on an error
    the .tmp is removed and a ConvertError names the file."""
    tmp = path + ".tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise ConvertError("cannot write %s: %s" % (path, e.strerror or e))


# ---- back to PyTorch: --to-pth -------------------------------------------------------------
SAFETENSORS_DTYPES = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8"}  # engine/safetensors.cpp's


def read_safetensors(path):
    """(metadata, {name: numpy array}) of a safetensors file, read with json and struct (no
    safetensors package); ConvertError naming the file and what is wrong."""
    import numpy as np
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConvertError("%s: cannot read it (%s)" % (path, e.strerror or e))
    if data[:2] == b"PK" or data[:1] == b"\x80":
        raise ConvertError("%s is a PyTorch file; --to-pth reads this engine's .safetensors checkpoints (the other "
                           "way: scripts/convert_checkpoint.py %s OUT.safetensors)" % (path, path))
    n = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else None
    if n is None or 8 + n > len(data):
        raise ConvertError("%s: not a safetensors file (its first 8 bytes give no header length within the file)"
                           % path)
    try:
        header = json.loads(data[8:8 + n])
        meta, tensors, body = header.pop("__metadata__", None) or {}, {}, data[8 + n:]
        for name, h in header.items():
            a, b = h["data_offsets"]
            if h["dtype"] not in SAFETENSORS_DTYPES or not 0 <= a <= b <= len(body):
                raise ValueError("tensor %s: dtype %s or data_offsets %s out of the file" % (name, h["dtype"], [a, b]))
            tensors[name] = np.frombuffer(body[a:b], dtype=SAFETENSORS_DTYPES[h["dtype"]]).reshape(h["shape"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ConvertError("%s: not a safetensors file of this engine (%s)" % (path, e))
    return meta, tensors


def pytorch_order(expected):
    """The expected (name, shape) pairs in a PyTorch state_dict's order: module by module in
    registration order (which the parameters follow), each module's parameters before its
    buffers, as Module.state_dict writes them."""
    def module(name):
        return name.rsplit(".", 1)[0]

    rank = {}
    for name, _ in expected:
        rank.setdefault(module(name), len(rank))
    keyed = [(rank[module(n)], n.endswith(("running_mean", "running_var")), i) for i, (n, _) in enumerate(expected)]
    return [expected[i] for _, _, i in sorted(keyed)]
