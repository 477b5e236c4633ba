#!/usr/bin/env python3
"""The scanner's speed yardstick: zxing-cpp (the PyPI wheel) timed on the same frames.

    zxing_yardstick.py DIR [--formats LIST] [--json FILE|-] [--no-try-rotate ...]

Times one zxingcpp.read_barcodes() call per frame, on one core (pin it:
scripts/bench-scan runs it under `taskset -c 0`). The same frames as
`vrs scan --eval DIR`: the files DIR/truth.json lists, in its order, when it is
there; else every JPEG/PNG in DIR (not its subfolders). Like the eval, each frame
is decoded from its file just before it is timed and decoding is not counted; the
colour-to-grey conversion is counted on both sides (the vrs scanner's ms includes
its to_luma8). An unreadable file is reported on stderr and skipped. Prints frames,
median, p95 and mean ms and the frames with a symbol; --json FILE writes them too.
"""

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

# numpy's OpenBLAS starts a pool of idle threads at import (one per other core); zxing-cpp
# itself starts none. Keep the process to one thread, before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np
import zxingcpp
from PIL import Image

# The symbologies vrs-scan reads (crates/vrs-scan/src/barcode.rs), by zxing-cpp 3.x
# names, as the issue lists them. In 3.x "QRCode" and "DataBar" are whole families
# (Micro QR and rMQR; stacked, Expanded and Limited DataBar), wider than vrs reads (QR,
# DataBar Omni and Expanded, no Limited). Measured on fixtures/scan the families cost
# no more than the narrow set (QRCodeModel1,QRCodeModel2,...,DataBarOmni,DataBarExp),
# if anything less, so they do not flatter vrs; --formats takes either.
DEFAULT_FORMATS = "QRCode,Codabar,Code128,DataMatrix,DataBar,DataBarExpanded,DataBarLimited"
IMAGE_EXTS = {".jpg", ".jpeg", ".png"}


def frame_files(folder: Path) -> list[Path]:
    truth = folder / "truth.json"
    if truth.is_file():
        return [folder / e["file"] for e in json.loads(truth.read_text())]
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)


def load_bgr(path: Path) -> np.ndarray:
    # The binding reads a 3-channel array as BGR; give it a contiguous one so the
    # timed call does no Python-side copying.
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def quantile(sorted_ms: list[float], q: float) -> float:
    # Nearest rank, as the eval's p95 is meant: a frame time that happened.
    return sorted_ms[min(len(sorted_ms) - 1, max(0, round(q * (len(sorted_ms) - 1))))]


def threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path, help="folder of JPEG/PNG frames")
    ap.add_argument("--formats", default=DEFAULT_FORMATS,
                    help=f"zxing-cpp format names, comma-separated (default {DEFAULT_FORMATS})")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON ('-': stdout, no plain lines)")
    # zxing-cpp's own search options, on by default as the wheel ships them (the issue
    # names the wheel as the yardstick). vrs searches neither 90° turns, nor inverted,
    # nor downscaled: --no-try-* gives the stricter, like-for-like yardstick.
    for opt in ("rotate", "invert", "downscale"):
        ap.add_argument(f"--try-{opt}", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()

    try:
        formats = zxingcpp.barcode_formats_from_str(args.formats)
    except Exception as e:  # the binding raises ValueError on an unknown name
        print(f"--formats {args.formats!r}: {e}", file=sys.stderr)
        return 2
    opts = dict(formats=formats, try_rotate=args.try_rotate,
                try_invert=args.try_invert, try_downscale=args.try_downscale)
    try:
        files = frame_files(args.dir)
    except (OSError, ValueError, KeyError) as e:
        print(f"{args.dir}: {e}", file=sys.stderr)
        return 2

    ms, sizes, found = [], Counter(), Counter()
    by_size: dict[str, list[float]] = {}
    with_symbol, skipped, warm, max_threads, cpu_ns = 0, 0, False, threads(), 0
    for f in files:
        try:
            img = load_bgr(f)
        except Exception as e:  # missing, truncated, not an image: skip, say so
            print(f"{f}: skipped: {e}", file=sys.stderr)
            skipped += 1
            continue
        if not warm:  # one untimed call: first-call set-up is not a frame's cost
            zxingcpp.read_barcodes(img, **opts)
            warm = True
        c, t = time.process_time_ns(), time.perf_counter_ns()
        symbols = zxingcpp.read_barcodes(img, **opts)
        dt = (time.perf_counter_ns() - t) / 1e6
        cpu_ns += time.process_time_ns() - c
        max_threads = max(max_threads, threads())
        ms.append(dt)
        size = f"{img.shape[1]}x{img.shape[0]}"
        by_size.setdefault(size, []).append(dt)
        with_symbol += bool(symbols)
        found.update(s.format.name for s in symbols)
    if not ms:
        print(f"{args.dir}: no frame could be read", file=sys.stderr)
        return 2

    s = sorted(ms)
    report = {
        "tool": "zxing-cpp",
        "version": _version(),
        "dir": str(args.dir),
        "formats": args.formats,
        "try_rotate": args.try_rotate, "try_invert": args.try_invert, "try_downscale": args.try_downscale,
        "frames": len(ms),
        "skipped": skipped,
        "median_ms": statistics.median(ms),
        "p95_ms": quantile(s, 0.95),
        "max_ms": s[-1],
        "mean_ms": statistics.fmean(ms),
        "frames_with_symbol": with_symbol,
        "symbols": dict(found),
        "by_size": {k: {"frames": len(v), "median_ms": statistics.median(v)} for k, v in sorted(by_size.items())},
        # CPU time over wall time of the timed calls: ~1.0 means one thread did the work.
        # (Under taskset -c 0 it cannot pass 1: run once unpinned to see threads.)
        "cpu_per_wall": cpu_ns / 1e6 / sum(ms),
        "max_threads": max_threads,
    }
    if args.json != "-":
        print(f"zxing-cpp {report['version']}: {args.dir} (formats {args.formats}; "
              f"rotate {args.try_rotate}, invert {args.try_invert}, downscale {args.try_downscale})")
        print(f"frames {report['frames']} (skipped {skipped})")
        print(f"median ms {report['median_ms']:.2f}")
        print(f"p95 ms {report['p95_ms']:.2f}")
        print(f"mean ms {report['mean_ms']:.2f}")
        print(f"frames with a symbol {with_symbol}/{len(ms)} {dict(found)}")
        for k, v in report["by_size"].items():
            print(f"  {k}: {v['frames']} frames, median ms {v['median_ms']:.2f}")
        print(f"cpu/wall {report['cpu_per_wall']:.2f}, threads {max_threads}")
    if args.json:
        text = json.dumps(report, indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("zxing-cpp")
    except Exception:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
