"""S3 -> GCS copy benchmark: our copy engine vs the google provider's S3ToGCSOperator, in one run.

    .venv/bin/python bench/copy_bench.py                       # 8 x 128 MB Parquet objects, 2 rounds
    .venv/bin/python bench/copy_bench.py --objects 4 --object-mb 32 --rounds 1   # a quick look

It starts a local S3 (moto's server, ``LocalS3``) and fake-gcs-server (``LocalGCS``), writes
``--objects`` Parquet objects of ``--object-mb`` MB each (one binary column of random bytes,
uncompressed: incompressible, like compressed Parquet) into S3 once, then copies them all to GCS with:

* ours: ``airflow_rs2gcs.engine.s3_copy.copy_objects`` (64 MiB ranged GETs read 8 MiB at a time and
  streamed as one PUT into a resumable upload session, 4 objects in flight, size and MD5 checked)
  through the real S3Hook and GCSHook;
* ``S3ToGCSOperator`` (deferrable off, ``replace=True``) run through its ``execute``: it downloads each
  object to a temp file with the S3 key's ``download_fileobj`` and uploads it with ``GCSHook.upload``.

Each contender runs in a fresh child process, alternately, ``--rounds`` times; its time is the best
round, its peak RSS the highest of its rounds (the sampled RSS of the child's process tree, or its own
high-water mark if larger; the S3 and GCS servers are not counted). Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import psutil  # noqa: E402
from sync_bench import TreeSampler  # noqa: E402  (the same RSS sampler as the sync benchmark)

SOURCE = "bench-s3-source"
TARGET = "bench-gcs-target"
PREFIX = "parquet/"
S3_CONN_ID = "rs2gcs_bench_s3"
GCS_CONN_ID = "rs2gcs_gcs"
CHUNK_SIZE = 8 << 20
MAX_IN_FLIGHT = 4
TARGET_SPEEDUP = 3.0
TARGET_PEAK_RSS_MB = 250.0


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _source_keys() -> list[tuple[str, int]]:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client = S3Hook(aws_conn_id=S3_CONN_ID).get_conn()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=SOURCE, Prefix=PREFIX)
    return [(item["Key"], item["Size"]) for page in pages for item in page.get("Contents", [])]


def _child_ours() -> dict[str, Any]:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    from airflow_rs2gcs.engine.s3_copy import ObjectCopy, copy_objects

    baseline = _rss_mb()
    started = time.perf_counter()
    keys = _source_keys()
    copies = [ObjectCopy(SOURCE, key, TARGET, f"ours/{key}") for key, _ in keys]
    copied = copy_objects(
        S3Hook(aws_conn_id=S3_CONN_ID),
        GCSHook(gcp_conn_id=GCS_CONN_ID),
        copies,
        chunk_size=CHUNK_SIZE,
        max_in_flight=MAX_IN_FLIGHT,
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "bytes": sum(c.bytes for c in copied),
        "objects": len(copied),
        "baseline_mb": baseline,
    }


def _child_theirs() -> dict[str, Any]:
    from airflow.providers.google.cloud.transfers.s3_to_gcs import S3ToGCSOperator
    from airflow.sdk import DAG

    with DAG("rs2gcs_copy_bench", schedule=None):
        operator = S3ToGCSOperator(
            task_id="theirs",
            bucket=SOURCE,
            prefix=PREFIX,
            aws_conn_id=S3_CONN_ID,
            gcp_conn_id=GCS_CONN_ID,
            dest_gcs=f"gs://{TARGET}/theirs/",
            replace=True,
            deferrable=False,
        )
    baseline = _rss_mb()
    started = time.perf_counter()
    copied = operator.execute({})  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    size = sum(size for key, size in _source_keys() if key in copied)
    return {"seconds": seconds, "bytes": size, "objects": len(copied), "baseline_mb": baseline}


CHILDREN = {"ours": _child_ours, "theirs": _child_theirs}


def run_child(name: str) -> None:
    """Entry point of a child process: run one contender and print its result as JSON."""
    result = CHILDREN[name]()
    result["own_peak_mb"] = max(_rss_mb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    print("\n" + json.dumps(result), flush=True)


# -- parent: the servers, the objects, the children -----------------------------------------------------
@dataclass
class Measurement:
    """One contender's best round: bytes, seconds, peak RSS of its process tree, RSS after imports."""

    label: str
    bytes: int
    objects: int
    seconds: float
    peak_mb: float
    baseline_mb: float
    server_cpu: dict[str, float]  # CPU seconds each local server spent during the run

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 2**20 / self.seconds


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def measure(name: str, label: str, env: dict[str, str], servers: dict[str, int]) -> Measurement:
    """Run one contender in a child process and measure it (and the CPU the servers spend on it)."""
    cpu_before = {server: _cpu_seconds(pid) for server, pid in servers.items()}
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    with tempfile.TemporaryFile("w+") as output:
        child = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=REPO)
        with TreeSampler(child.pid) as sampler:
            code = child.wait()
        output.seek(0)
        text = output.read()
    if code != 0:
        raise RuntimeError(f"{label} failed (exit {code}):\n{text[-4000:]}")
    result = json.loads(text.strip().splitlines()[-1])
    peak = max(sampler.peak_mb, result["own_peak_mb"])
    cpu = {server: _cpu_seconds(pid) - cpu_before[server] for server, pid in servers.items()}
    return Measurement(
        label, result["bytes"], result["objects"], result["seconds"], peak, result["baseline_mb"], cpu
    )


def parquet_object(megabytes: int) -> bytes:
    """A Parquet file of about ``megabytes`` MB: one binary column of random 1 MiB values, uncompressed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"payload": pa.array([os.urandom(1 << 20) for _ in range(megabytes)], pa.binary())})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="none", row_group_size=16)
    return sink.getvalue()


def _write_objects(count: int, megabytes: int) -> None:
    """Child: write the source objects (multipart uploads, as any large writer makes); print the total."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client = S3Hook(aws_conn_id=S3_CONN_ID).get_conn()
    total = 0
    for index in range(count):
        data = parquet_object(megabytes)
        client.upload_fileobj(io.BytesIO(data), SOURCE, f"{PREFIX}part-{index:04d}.parquet")
        total += len(data)
    print("\n" + json.dumps({"bytes": total}), flush=True)


def write_objects(env: dict[str, str], count: int, megabytes: int) -> int:
    """Write the source objects in a child process, so that the parent's RSS stays small.

    (On Linux a child's ``ru_maxrss`` starts from the parent's RSS at fork, so a big parent would
    inflate every contender's own high-water mark.)
    """
    started = time.perf_counter()
    argv = [sys.executable, str(Path(__file__).resolve()), "--write", str(count), str(megabytes)]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=REPO, check=True)
    total = int(json.loads(result.stdout.strip().splitlines()[-1])["bytes"])
    print(
        f"  wrote {count} objects, {total / 2**20:,.0f} MiB, in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return total


def child_env(s3: Any, gcs: Any, airflow_home: str) -> dict[str, str]:
    """Environment of the children: a throwaway AIRFLOW_HOME, both connections, the GCS emulator."""
    from rs2gcs_devstack.stack import connection_json, env_var_name

    gcp = {"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, "project": gcs.project}}
    return {
        **os.environ,
        env_var_name(S3_CONN_ID): s3.aws_connection_json(),
        env_var_name(GCS_CONN_ID): connection_json(gcp),
        "STORAGE_EMULATOR_HOST": gcs.url,
        "AIRFLOW_HOME": airflow_home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def print_table(total: int, count: int, ours: Measurement, theirs: Measurement) -> None:
    """The results table with the ratio."""
    mib = total / 2**20
    print(f"\ncopy benchmark: {count} Parquet objects, {mib:,.0f} MiB, local S3 (moto) -> fake-gcs-server\n")
    header = f"{'contender':<52} {'objects':>7} {'MiB':>7} {'seconds':>8} {'MiB/s':>7}"
    header += f" {'peak RSS':>9} {'RSS idle':>9}"
    print(header + f" {'vs S3ToGCS':>11}")
    print("-" * (len(header) + 12))
    for m in (ours, theirs):
        print(
            f"{m.label:<52} {m.objects:>7} {m.bytes / 2**20:>7,.0f} {m.seconds:>8.2f} {m.mb_per_second:>7.1f}"
            f" {m.peak_mb:>6.0f} MB {m.baseline_mb:>6.0f} MB {m.mb_per_second / theirs.mb_per_second:>10.2f}x"
        )
    print("(RSS idle: the child's RSS after imports, before the copy starts)")


def check(ok: bool, detail: str) -> bool:
    """Print one target's verdict."""
    print(f"  {'PASS' if ok else 'FAIL'}  {detail}")
    return ok


def main() -> int:
    """Parse arguments, run the benchmark, print the table and the verdicts."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=8, help="number of source objects")
    parser.add_argument("--object-mb", type=int, default=128, help="size of each object in MB")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each contender (alternating)")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--write", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        _write_objects(*args.write)
        return 0
    if args.child:
        run_child(args.child)
        return 0

    from rs2gcs_devstack.gcs import LocalGCS
    from rs2gcs_devstack.s3 import LocalS3

    with contextlib.ExitStack() as stop:
        s3 = stop.enter_context(LocalS3())
        gcs = LocalGCS().start()
        stop.callback(gcs.close)
        home = stop.enter_context(tempfile.TemporaryDirectory(prefix="rs2gcs-copy-bench-"))
        s3.create_bucket(SOURCE)
        gcs.create_bucket(TARGET)
        env = child_env(s3, gcs, home)
        total = write_objects(env, args.objects, args.object_mb)
        runs: dict[str, list[Measurement]] = {"ours": [], "theirs": []}
        labels = {
            "ours": f"ours: s3_copy ({MAX_IN_FLIGHT} in flight, {CHUNK_SIZE >> 20} MiB chunks)",
            "theirs": "S3ToGCSOperator (google provider)",
        }
        for round_ in range(1, args.rounds + 1):
            for name in ("ours", "theirs"):
                m = measure(name, labels[name], env, {"moto S3": s3.pid, "fake-gcs-server": gcs.pid})
                runs[name].append(m)
                speed = f"{m.seconds:6.1f}s {m.mb_per_second:6.1f} MiB/s"
                cpu = ", ".join(f"{server} {seconds:.1f}s" for server, seconds in m.server_cpu.items())
                print(
                    f"  round {round_}: {name:<6} {speed} {m.peak_mb:5.0f} MB (server CPU: {cpu})", flush=True
                )
    best = {}
    for name, measured in runs.items():
        best[name] = min(measured, key=lambda m: m.seconds)
        best[name].peak_mb = max(m.peak_mb for m in measured)
    ours, theirs = best["ours"], best["theirs"]
    print_table(total, args.objects, ours, theirs)
    speedup = ours.mb_per_second / theirs.mb_per_second
    print()
    verdicts = [
        check(
            ours.bytes == total and theirs.bytes == total,
            f"both copied every byte: ours {ours.bytes:,}, theirs {theirs.bytes:,} of {total:,}",
        ),
        check(speedup >= TARGET_SPEEDUP, f"ours >= {TARGET_SPEEDUP:.0f}x S3ToGCSOperator: {speedup:.2f}x"),
        check(
            ours.peak_mb <= TARGET_PEAK_RSS_MB,
            f"ours peak RSS <= {TARGET_PEAK_RSS_MB:.0f} MB: {ours.peak_mb:.0f} MB",
        ),
    ]
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
