#!/usr/bin/python3
"""pb-set.py PATH VALUE IMAGE...: in each image, every varint field at PATH (field numbers from
the image's message down, dot-separated: 1.116 is field 116 of each message of field 1) set to
VALUE, each enclosing message's length and the header's length and CRC made to match. Exits 0
if some image changed, else 1 (a test that corrupts images knows it did)."""
import struct
import sys
import zlib


def varint(b, i):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7f) << s
        s += 7
        if x < 0x80:
            return r, i


def enc(v):
    out = bytearray()
    while True:
        x, v = v & 0x7f, v >> 7
        out.append(x | 0x80 if v else x)
        if not v:
            return bytes(out)


def edit(b, path, val):
    out, changed, i = bytearray(), False, 0
    while i < len(b):
        key, j = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            _, end = varint(b, j)
        elif wt == 2:
            ln, k = varint(b, j)
            end = k + ln
        else:
            end = j + (8 if wt == 1 else 4)
        if wt == 2 and len(path) > 1 and num == path[0]:
            inner, c = edit(b[k:end], path[1:], val)
            if c:
                out += enc(key) + enc(len(inner)) + inner
                changed, i = True, end
                continue
        if wt == 0 and len(path) == 1 and num == path[0]:
            out += enc(key) + enc(val)
            changed, i = True, end
            continue
        out += b[i:end]
        i = end
    return bytes(out), changed


def main():
    path, val = [int(x) for x in sys.argv[1].split(".")], int(sys.argv[2])
    done = 0
    for name in sys.argv[3:]:
        data = open(name, "rb").read()
        hdr, n = data[:48], struct.unpack_from("<Q", data, 16)[0]
        payload, changed = edit(data[48:48 + n], path, val)
        if not changed:
            continue
        hdr = hdr[:16] + struct.pack("<QI", len(payload), 0) + hdr[28:]
        crc = zlib.crc32(payload, zlib.crc32(hdr))
        open(name, "wb").write(hdr[:24] + struct.pack("<I", crc) + hdr[28:] + payload)
        done += 1
    sys.exit(0 if done else 1)


main()
