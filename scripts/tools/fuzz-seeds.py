#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz corpus (Tests/Fuzz/corpus/TARGET/seed-*): one valid input of
each kind the decoders take, so libFuzzer starts from the formats' structure rather than from
nothing. A hand-written msgpack encoder (the venv has no msgpack), numpy for .npy, the engine's
own test ONNX files from libonnx-testdata, and JPEGs written here (flat baseline blocks).

usage: scripts/tools/fuzz-seeds.py CORPUS_DIR
"""
import io, os, struct, sys

def header(n):  # a map's header: fixmap up to 15 entries, else map16
    return bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)

def mp(v):
    if v is None: return b"\xc0"
    if v is True: return b"\xc3"
    if v is False: return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128: return bytes([v])
        if v < 0 and v >= -32: return struct.pack("b", v)
        if 0 <= v < 1 << 8: return b"\xcc" + struct.pack(">B", v)
        if 0 <= v < 1 << 16: return b"\xcd" + struct.pack(">H", v)
        if 0 <= v < 1 << 32: return b"\xce" + struct.pack(">I", v)
        if 0 <= v: return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float): return b"\xca" + struct.pack(">f", v)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xa0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
    if isinstance(v, bytes):
        return (b"\xc4" + bytes([len(v)]) if len(v) < 256 else b"\xc5" + struct.pack(">H", len(v))) + v
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return header(len(v)) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)

def f64(x):  # a float64, as RESULT's qm and cm are sent
    return ("f64", x)

def mp2(v):
    if isinstance(v, tuple) and v[0] == "f64": return b"\xcb" + struct.pack(">d", v[1])
    if isinstance(v, dict): return header(len(v)) + b"".join(mp(k) + mp2(x) for k, x in v.items())
    if isinstance(v, list): return bytes([0x90 | len(v)]) + b"".join(mp2(x) for x in v)
    return mp(v)

def protocol():
    t = 1_764_000_000_000
    return {
        "frame-bottleneck": {"v": 1, "t": "frame", "c": "cam-1", "s": 7, "m": "bf12", "k": "bottleneck", "p": bytes(range(2 * 3 * 3)),
                             "sh": [2, 3, 3], "qs": 0.05, "qz": 128, "dl": t + 250, "ts": t, "lb": 3},
        "frame-jpeg": {"v": 1, "t": "frame", "c": "cam-2", "s": 1, "m": "bf12", "k": "jpeg", "p": b"\xff\xd8\xff\xd9", "dl": t + 250, "ts": t},
        "result": {"v": 1, "t": "result", "c": "cam-1", "s": 7, "ki": [3, 1], "ks": [0.9, 0.05], "qm": f64(1.5), "cm": f64(20.25), "b": 4, "w": "w1"},
        "error": {"v": 1, "t": "error", "s": 7, "c": "cam-1", "e": "BUSY", "m": "queue full", "ra": 120},
        "ready": {"v": 1, "t": "ready", "w": "w1", "ms": ["bf12", "fmnist-c2"], "cr": 16},
        "credit": {"v": 1, "t": "credit", "n": 4},
        "heartbeat": {"v": 1, "t": "heartbeat"},
        "heartbeat-lr": {"v": 1, "t": "heartbeat", "lr": {"c": "cam-1", "wm": 1000, "n": 12, "lo": 3, "lq": f64(60.0), "mi": 1,
                                                          "l50": f64(40.0), "l95": f64(80.0), "l99": f64(95.0)}},
        "disconnect": {"v": 1, "t": "disconnect", "r": "stopping"},
        "stats": {"v": 1, "t": "stats", "ts": t, "qd": 3, "q50": f64(2.0), "q95": f64(9.0), "q99": f64(12.0), "if": 4, "ar": f64(30.0),
                  "co": f64(29.0), "dr": f64(0.5), "wk": [{"w": "w1", "cr": 12, "if": 4}], "lc": 1, "ln": 12, "lm": 1,
                  "l50": f64(40.0), "l95": f64(80.0), "l99": f64(95.0), "ut": f64(0.8)},
        "directive": {"v": 1, "t": "directive", "s": 3, "tf": f64(1.0), "md": "split", "r": "edge busy", "vu": t + 10_000, "es": f64(0.75)},
        "directive-cameras": {"v": 1, "t": "directive", "s": 4, "tc": ["cam-1", "cam-2"], "md": "local", "r": "slo", "vu": t + 10_000},
    }

def jpeg(width, height, components, restart=0):
    """A baseline JPEG of flat 8x8 blocks (DC only) with two tiny Huffman tables: valid for libjpeg,
    small, and with every marker a decoder walks (DQT, SOF0, DHT, DRI, SOS, RSTn)."""
    def segment(marker, body): return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body
    out = b"\xff\xd8"
    out += segment(0xDB, b"\x00" + bytes([8] * 64))                     # one quantisation table, all 8
    out += segment(0xC0, bytes([8]) + struct.pack(">HH", height, width) + bytes([components])
                   + b"".join(bytes([i + 1, 0x11, 0]) for i in range(components)))
    # DC table 0: category 0 -> "0", category 4 -> "10"; AC table 0: EOB -> "0".
    out += segment(0xC4, b"\x00" + bytes([1, 1] + [0] * 14) + bytes([0x00, 0x04]))
    out += segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + bytes([0x00]))
    if restart: out += segment(0xDD, struct.pack(">H", restart))
    out += segment(0xDA, bytes([components]) + b"".join(bytes([i + 1, 0x00]) for i in range(components)) + bytes([0, 63, 0]))
    mcus = ((width + 7) // 8) * ((height + 7) // 8)
    data, bits, previous = bytearray(), "", [0] * components
    def flush(bits):
        bits += "1" * (-len(bits) % 8)
        for i in range(0, len(bits), 8):
            byte = int(bits[i:i + 8], 2)
            data.append(byte)
            if byte == 0xFF: data.append(0)
    for m in range(mcus):
        for c in range(components):
            dc = 8 * ((m + c) % 2)                  # alternate blocks: a difference of +-8 (category 4)
            diff = dc - previous[c]; previous[c] = dc
            if diff == 0: bits += "0"
            else: bits += "10" + (format(diff, "04b") if diff > 0 else format(diff + 15, "04b"))
            bits += "0"                               # EOB
        if restart and m + 1 < mcus and (m + 1) % restart == 0:
            flush(bits); bits = ""; previous = [0] * components
            data.extend([0xFF, 0xD0 + (m // restart) % 8])
    flush(bits)
    return out + bytes(data) + b"\xff\xd9"

def main():
    out = sys.argv[1]
    def write(target, name, data):
        os.makedirs(os.path.join(out, target), exist_ok=True)
        open(os.path.join(out, target, "seed-" + name), "wb").write(data)
    for name, message in protocol().items():
        write("protocol", name, mp2(message))
    import numpy as np
    for name, a in {"f4": np.arange(6, dtype="<f4").reshape(2, 3), "u1": np.arange(4, dtype="u1"), "i8": np.array([[1], [-2]], dtype="<i8"),
                    "scalar": np.array(1.5, dtype="<f4")}.items():
        b = io.BytesIO(); np.save(b, a); write("npy", name, b.getvalue())
    node = "/usr/share/libonnx-testdata/data/node"
    for case in ["test_relu", "test_add", "test_conv_with_strides_padding", "test_gemm_default_no_bias", "test_maxpool_2d_default"]:
        path = os.path.join(node, case, "model.onnx")
        if os.path.exists(path): write("onnx", case[5:], open(path, "rb").read())
    write("jpeg", "gray-8x8", jpeg(8, 8, 1))
    write("jpeg", "ycbcr-16x16", jpeg(16, 16, 3))
    write("jpeg", "ycbcr-24x8-restarts", jpeg(24, 8, 3, restart=1))
    write("scenario", "groups", b"""name: seed
duration: 30s
broker: tcp://127.0.0.1:5555
fail_if: [p99<250ms, unaccounted==0]
rate: 2
groups:
  - name: pis
    cameras: 4
    device: raspberry-pi-4
    mode: split=0.6,offload=0.4
    shape: burst
    burst_on: 2s
    burst_off: 500ms
  - {name: nanos, cameras: 2, rate: 5, shape: ramp, ramp_to: 9, arrivals: poisson}
""")
    write("scenario", "schedule", b"# seconds rate\n0 1\n10, 5\n20\t0 # pause\n")
    write("scenario", "anchors", b"sink: true\ngroups:\n  - &b {cameras: 2, rate: 1, slo_ms: 500}\n  - *b\n")

main()
