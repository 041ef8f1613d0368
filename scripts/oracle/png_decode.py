#!/usr/bin/env python3
"""Test oracle for BottleFit's PNG encoder, with the standard library only.

For each PNG file given, checks the signature, every chunk's CRC-32, the chunk order
(IHDR first, IDAT contiguous, IEND last) and IHDR (8-bit greyscale, no interlace), inflates
the IDAT stream with zlib, undoes each row's filter (PNG spec section 9) and writes the pixels
to <file>.raw. Prints one line per file: width height and the filter types used.
Exits non-zero with a message on the first problem.
"""
import struct
import sys
import zlib


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("bad signature")
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError("CRC mismatch in %r" % kind)
        chunks.append((kind, body))
        pos += 12 + length
    kinds = [k for k, _ in chunks]
    if kinds[0] != b"IHDR" or kinds[-1] != b"IEND" or b"IDAT" not in kinds:
        raise ValueError("chunk order %r" % kinds)
    width, height, depth, colour, method, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if (depth, colour, method, filtering, interlace) != (8, 0, 0, 0, 0):
        raise ValueError("not 8-bit greyscale: %r" % ((depth, colour, method, filtering, interlace),))
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    if len(raw) != (width + 1) * height:
        raise ValueError("inflated %d bytes, expected %d" % (len(raw), (width + 1) * height))
    pixels, previous, filters = bytearray(), bytearray(width), set()
    for y in range(height):
        kind = raw[y * (width + 1)]
        line = bytearray(raw[y * (width + 1) + 1:(y + 1) * (width + 1)])
        filters.add(kind)
        for x in range(width):
            a = line[x - 1] if x else 0
            b = previous[x]
            c = previous[x - 1] if x else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            elif kind == 4:
                pred = paeth(a, b, c)
            else:
                raise ValueError("filter type %d" % kind)
            line[x] = (line[x] + pred) & 0xFF
        pixels += line
        previous = line
    open(path + ".raw", "wb").write(pixels)
    return width, height, sorted(filters)


for name in sys.argv[1:]:
    try:
        w, h, used = decode(name)
    except Exception as error:  # noqa: BLE001 - the message is the oracle's answer
        sys.exit("%s: %s" % (name, error))
    print(w, h, " ".join(map(str, used)))
