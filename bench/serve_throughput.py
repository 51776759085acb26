"""Serving throughput: the served judge batching concurrent requests against one-at-a-time model calls.

    python bench/serve_throughput.py --model tiny_mistral --requests 96 --memory-requests 2000   # ~6 min
    python bench/serve_throughput.py --model smollm2_135m --requests 24 --memory-requests 200    # ~25 min

Both sides are the real server (hakim.serve.app behind uvicorn, in its own process, one torch thread) around
the same judge: the model as a trained judge is loaded (4-bit nf4 base + a LoRA adapter, untrained here, which
costs the same), V2 prompts, score mode, rows that fit --max-length whole (bench/common.fit_rows):
- batched: rows of concurrent requests gathered into one model call (max_batch, max_wait_ms: serve.py's defaults);
- one-at-a-time (the baseline): max_batch 1, every request its own model call, in arrival order.
Each side answers 1, 8 and 32 concurrent clients, each client sending single-item /v1/judge requests back to
back; the sides alternate (batched, one-at-a-time, batched, ...) and every number is the median over
repeats. Rows/s counts answered rows; latency is per request, as the client saw it. Resident memory of the
batched server is read (psutil) after a warm-up and again after --memory-requests more requests.

The clients run in this process, on the machine's other core: on 2 CPUs both sides share that cost alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common

CONCURRENCY = (1, 8, 32)
SIDES = {"batched": None, "one-at-a-time": 1}  # max_batch; None: --max-batch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny_mistral", choices=sorted(common.MODELS))
    parser.add_argument("--requests", type=int, default=96, help="requests per concurrency level and side")
    parser.add_argument("--memory-requests", type=int, default=2000, help="requests between the two memory readings")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10)
    parser.add_argument("--batch-size", type=int, default=8, help="rows per forward pass inside a model call")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1, help="the server's torch/OpenMP threads (see common.run_worker)"
    )
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # run one server side
    parser.add_argument("--side-max-batch", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def bench_rows(args) -> tuple[list[dict], str]:
    from hakim.models.loading import load_tokenizer, resolve_model_path
    from hakim.prompting.style import PromptStyle

    tokenizer = load_tokenizer(resolve_model_path(common.model_spec(args.model)))
    rows, origin = common.load_rows(4 * 64, args.seed, args.synthetic)
    return common.fit_rows(rows, tokenizer, PromptStyle("v2", "ms"), args.max_length, 64), origin


def serve_side(args) -> None:
    """One server: the judge built as eval_throughput builds it, behind hakim.serve's app."""
    import logging
    import warnings

    import torch
    import uvicorn

    from hakim.eval.judge import Judge
    from hakim.models.loading import LoraSpec, add_lora, load_base_model, load_tokenizer, resolve_model_path
    from hakim.prompting.style import PromptStyle
    from hakim.serve.app import create_app
    from hakim.serve.settings import ServeSettings

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    def load():
        spec = common.model_spec(args.model)
        path = resolve_model_path(spec)
        lora = LoraSpec(r=16, alpha=16, dropout=0.0, target_modules="all-linear", fused_dropout=False)
        model = add_lora(load_base_model(spec, path), spec, lora)
        return Judge(
            model,
            load_tokenizer(path),
            PromptStyle("v2", "ms"),
            max_length=args.max_length,
            batch_size=args.batch_size,
            name=args.model,
        )

    settings = ServeSettings(
        host="127.0.0.1",
        port=args.serve,
        api_key_env=None,
        served_name=None,
        max_batch=args.side_max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue=4096,
        retry_after_s=1,
        max_body_mb=4,
        max_items=64,
        max_file_rows=10,
        graceful_shutdown_s=30,
    )
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(create_app(load, settings), host="127.0.0.1", port=args.serve, log_level="warning", access_log=False)


class Server:
    def __init__(self, args, max_batch: int):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": str(args.threads),
            "MKL_NUM_THREADS": str(args.threads),
        }
        command = [
            sys.executable,
            __file__,
            "--serve",
            str(self.port),
            "--side-max-batch",
            str(max_batch),
            "--model",
            args.model,
            "--max-wait-ms",
            str(args.max_wait_ms),
            "--batch-size",
            str(args.batch_size),
            "--max-length",
            str(args.max_length),
            "--threads",
            str(args.threads),
            "--seed",
            str(args.seed),
        ]
        self.process = subprocess.Popen(command, cwd=common.ROOT, env=environment)
        import httpx

        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError("the server was not ready within 600 s")

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def stats(self) -> dict:
        import httpx

        return httpx.get(f"{self.url}/readyz", timeout=5).json()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)


async def drive(url: str, rows: list[dict], clients: int, requests: int) -> dict:
    """`clients` callers, each sending single-item requests back to back until `requests` were sent in all."""
    import httpx

    latencies, next_row = [], iter(range(requests))

    async def caller(client):
        for index in next_row:
            row = rows[index % len(rows)]
            body = {"items": [{"passage": row["passage"], "claim": row["claim"], "task": row["source"]}]}
            started = time.perf_counter()
            response = await client.post("/v1/judge", json=body)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")

    async with httpx.AsyncClient(base_url=url, timeout=600, limits=httpx.Limits(max_connections=clients)) as client:
        started = time.perf_counter()
        await asyncio.gather(*(caller(client) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rows_per_s": requests / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "seconds": elapsed,
    }


def measure_side(args, side: str, rows: list[dict], memory: bool) -> dict:
    server = Server(args, SIDES[side] or args.max_batch)
    try:
        asyncio.run(drive(server.url, rows, 8, 16))  # warm-up: the first calls repack the 4-bit weights for CPU
        result = {"levels": {}}
        for clients in CONCURRENCY:
            before = server.stats()["model_calls"]
            result["levels"][str(clients)] = {
                **asyncio.run(drive(server.url, rows, clients, args.requests)),
                "model_calls": server.stats()["model_calls"] - before,
            }
            level = result["levels"][str(clients)]
            print(
                f"  {side:13s} {clients:2d} clients: {level['rows_per_s']:7.2f} rows/s, p50 {level['p50_ms']:7.1f} ms, "
                f"p99 {level['p99_ms']:7.1f} ms, {level['model_calls']} model calls",
                flush=True,
            )
        if memory:
            result["rss_before_mb"] = server.rss_mb()
            asyncio.run(drive(server.url, rows, 32, args.memory_requests))
            result["rss_after_mb"] = server.rss_mb()
            result["memory_requests"] = args.memory_requests
            print(
                f"  {side:13s} RSS {result['rss_before_mb']:.0f} MiB → {result['rss_after_mb']:.0f} MiB after "
                f"{args.memory_requests} more requests",
                flush=True,
            )
        result["largest_batch"] = server.stats()["largest_batch"]
    finally:
        server.stop()
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.serve is not None:
        serve_side(args)
        return
    rows, origin = bench_rows(args)
    print(
        f"# {common.machine()}; model {args.model}; single-item requests; max_batch {args.max_batch}, max_wait_ms "
        f"{args.max_wait_ms}, batch_size {args.batch_size}; {args.requests} requests per level; server "
        f"{args.threads} thread(s); data {origin}",
        flush=True,
    )
    runs = {side: [] for side in SIDES}
    for repeat in range(args.repeats):
        for side in SIDES:
            runs[side].append(measure_side(args, side, rows, memory=side == "batched" and repeat == 0))

    def median(side, clients, key):
        return statistics.median(run["levels"][str(clients)][key] for run in runs[side])

    table, summary = [], {"ratios_rows_per_s": {}}
    for clients in CONCURRENCY:
        for side in SIDES:
            table.append(
                [
                    side,
                    clients,
                    f"{median(side, clients, 'rows_per_s'):.2f}",
                    f"{median(side, clients, 'p50_ms'):.0f}",
                    f"{median(side, clients, 'p99_ms'):.0f}",
                ]
            )
        ratio = median("batched", clients, "rows_per_s") / median("one-at-a-time", clients, "rows_per_s")
        summary["ratios_rows_per_s"][str(clients)] = ratio
        table.append(["**batched/one-at-a-time**", clients, f"**{ratio:.2f}×**", "", ""])
    memory = runs["batched"][0]
    summary["memory_growth_mb"] = memory["rss_after_mb"] - memory["rss_before_mb"]
    print(common.table([f"side (median of {args.repeats})", "clients", "rows/s", "p50 ms", "p99 ms"], table))
    print(
        f"batched server RSS: {memory['rss_before_mb']:.0f} MiB after warm-up and the levels, "
        f"{memory['rss_after_mb']:.0f} MiB after {args.memory_requests} more requests "
        f"({summary['memory_growth_mb']:+.1f} MiB)"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"args": vars(args), "machine": common.machine(), "rows": origin, "runs": runs, **summary}, indent=1
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
