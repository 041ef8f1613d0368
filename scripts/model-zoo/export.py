#!/usr/bin/env python3
"""Exports torchvision classifiers to ONNX with random weights (nothing is downloaded).

usage: export.py OUT_DIR [NAME[@OPSET] ...]
Runs under the system Python with Debian's python3-torch and python3-torchvision. Each model
is exported in eval mode, input 1x3x224x224 with a dynamic batch dimension, to
OUT_DIR/NAME.onnx (NAME@17 -> NAME-opset17.onnx); a line per model says what was written.
"""
import os
import sys
import warnings

import torch
import torchvision

warnings.filterwarnings("ignore")

# name -> constructor (torchvision 0.14: weights=None builds the random-weight model)
MODELS = {
    "densenet121": lambda m: m.densenet121(weights=None),
    "densenet169": lambda m: m.densenet169(weights=None),
    "densenet201": lambda m: m.densenet201(weights=None),
    "resnet18": lambda m: m.resnet18(weights=None),
    "resnet152": lambda m: m.resnet152(weights=None),
    "mobilenet_v2": lambda m: m.mobilenet_v2(weights=None),
    "mobilenet_v3_small": lambda m: m.mobilenet_v3_small(weights=None),
    "mobilenet_v3_large": lambda m: m.mobilenet_v3_large(weights=None),
    "efficientnet_b0": lambda m: m.efficientnet_b0(weights=None),
    "shufflenet_v2_x1_0": lambda m: m.shufflenet_v2_x1_0(weights=None),
    "squeezenet1_1": lambda m: m.squeezenet1_1(weights=None),
    "googlenet": lambda m: m.googlenet(weights=None, aux_logits=False, init_weights=True),
    "regnet_y_400mf": lambda m: m.regnet_y_400mf(weights=None),
    "mnasnet1_0": lambda m: m.mnasnet1_0(weights=None),
    "convnext_tiny": lambda m: m.convnext_tiny(weights=None),
    "vgg11_bn": lambda m: m.vgg11_bn(weights=None),
}
DEFAULT_OPSET = 13


def randomize_batch_norms(model, gen):
    # Fresh models have mean 0 / var 1 statistics; random ones make BN folding matter.
    for mod in model.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and mod.track_running_stats:
            c = mod.num_features
            mod.running_mean.copy_(torch.rand(c, generator=gen) * 0.4 - 0.2)
            mod.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
            if mod.affine:
                mod.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
                mod.bias.data.copy_(torch.rand(c, generator=gen) * 0.4 - 0.2)


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(MODELS)
    os.makedirs(out, exist_ok=True)
    for spec in names:
        name, _, opset = spec.partition("@")
        opset = int(opset) if opset else DEFAULT_OPSET
        file = os.path.join(out, name + (f"-opset{opset}" if opset != DEFAULT_OPSET else "") + ".onnx")
        if os.path.exists(file):
            print(f"{spec}: {file} (kept)", flush=True)
            continue
        torch.manual_seed(0)
        model = MODELS[name](torchvision.models).eval()
        randomize_batch_norms(model, torch.Generator().manual_seed(1))
        x = torch.randn(1, 3, 224, 224)
        with torch.no_grad():
            torch.onnx.export(
                model, x, file + ".tmp", opset_version=opset, input_names=["input"], output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, do_constant_folding=True)
        os.replace(file + ".tmp", file)
        print(f"{spec}: {file}", flush=True)


if __name__ == "__main__":
    main()
