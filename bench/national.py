#!/usr/bin/env python3
"""The national-scale harness: zonerank against what a data team would use instead, in one run.

Run through `bench/national.sh N` (it builds the release binaries and the venv). Steps, each
timed and printed, with the ratio to its peer:

1. generate N enterprises (valid GB 32100 credit codes) in ~400 zones across Henan's 18 cities,
   7 indicators x 2 years, as one long-format observations CSV (not timed);
2. start the three services as separate processes on a fresh PostgreSQL database and a Redis
   key prefix of their own;
3. load the observations: raw `psql \\copy` of the CSV into a keyed table, against
   `zonerank import` of the same CSV;
4. rank the enterprises (`enterprise-per-mu`, the later year): ComputeRanking, against a
   pandas + pymcdm pipeline reading the same rows from PostgreSQL (pivot, the five criteria,
   TOPSIS, ranks). Twice: first with no stored run of the year before (the first year of an
   assessment: the year before is ranked too, for the rank changes), then, after
   ComputeRanking of the year before, as every later year runs (its stored run gives the rank
   changes);
5. GetRanking of the first page, cold (a fresh ranking process) and warm;
6. the peak RSS (VmHWM) of each service.

With --perf DIR, `perf record -F 499 -g` follows each service through the import and the
rankings (DIR/NAME-import.data, DIR/NAME-rank.data), for `perf report -i`.

The database and the Redis keys are dropped at the end unless --keep.
"""

import argparse
import csv
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"

# Henan's 18 prefecture-level divisions (GB/T 2260).
CITIES = [
    ("410100", "郑州市"), ("410200", "开封市"), ("410300", "洛阳市"), ("410400", "平顶山市"),
    ("410500", "安阳市"), ("410600", "鹤壁市"), ("410700", "新乡市"), ("410800", "焦作市"),
    ("410900", "濮阳市"), ("411000", "许昌市"), ("411100", "漯河市"), ("411200", "三门峡市"),
    ("411300", "南阳市"), ("411400", "商丘市"), ("411500", "信阳市"), ("411600", "周口市"),
    ("411700", "驻马店市"), ("419001", "济源市"),
]
ZONES_PER_CITY = 22  # 396 zones
YEARS = ("2022", "2023")
CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
# The indicators enterprise-per-mu reads, in their canonical units.
INDICATORS = [
    ("tax", "万元"), ("value_added", "万元"), ("revenue", "万元"), ("rd_expenditure", "万元"),
    ("employees", "人"), ("energy_consumption", "吨标准煤"), ("land_area", "亩"),
]


def credit_code(region: str, serial: int) -> str:
    """A valid unified social credit code: 9 (industry and commerce) 1 (enterprise), the
    region, a 9-character organisation code from the serial, and the GB 32100 check character."""
    org = ""
    n = serial
    for _ in range(9):
        org = CREDIT_CHARSET[n % 31] + org
        n //= 31
    first17 = "91" + region + org
    total = sum(CREDIT_CHARSET.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS))
    return first17 + CREDIT_CHARSET[(31 - total % 31) % 31]


def generate(n: int, out: Path, seed: int = 7):
    """Writes regions.csv, zones.csv, enterprises.csv and observations.csv under `out`."""
    rng = random.Random(seed)
    with open(out / "regions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["code", "name", "name_en", "level", "parent_code"])
        w.writerow(["410000", "河南省", "Henan", "PROVINCE", ""])
        for code, name in CITIES:
            w.writerow([code, name, "", "CITY", "410000"])
    zones = []
    with open(out / "zones.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "region_code", "kind", "tags", "leading_industries"])
        for code, name in CITIES:
            for z in range(ZONES_PER_CITY):
                zone = f"{code}-Z{z:02d}"
                zones.append((zone, code))
                w.writerow([zone, f"{name}第{z + 1}园区", code, "AGGLOMERATION_ZONE", "", ""])
    with open(out / "enterprises.csv", "w", newline="") as f, open(
        out / "observations.csv", "w", newline=""
    ) as g:
        w = csv.writer(f)
        o = csv.writer(g)
        w.writerow(["credit_code", "name", "zone_id", "industry_code", "above_scale"])
        o.writerow(["entity_kind", "entity_id", "indicator", "period", "value", "unit"])
        for i in range(n):
            zone, city = zones[i % len(zones)]
            code = credit_code(city, i + 1)
            w.writerow([code, f"企业{i + 1}", zone, "C26", "true"])
            land = round(rng.uniform(20, 400), 1)
            scale = rng.lognormvariate(0, 0.8)
            for year in YEARS:
                growth = rng.uniform(0.9, 1.2) if year == YEARS[1] else 1.0
                revenue = round(land * 60 * scale * growth, 2)
                values = {
                    "tax": round(revenue * rng.uniform(0.02, 0.08), 2),
                    "value_added": round(revenue * rng.uniform(0.15, 0.35), 2),
                    "revenue": revenue,
                    "rd_expenditure": round(revenue * rng.uniform(0.0, 0.05), 2),
                    "employees": max(1, int(land * rng.uniform(0.5, 3))),
                    "energy_consumption": round(revenue * rng.uniform(0.05, 0.3), 2),
                    "land_area": land,
                }
                for indicator, unit in INDICATORS:
                    o.writerow(["ENTERPRISE", code, indicator, year, values[indicator], unit])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(admin: str, sql: str, db: str = "postgres") -> str:
    return subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", admin, "-U", "postgres",
         "-d", db, "-c", sql],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def wait_serving(port: int, timeout: float = 60):
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                answer = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(), timeout=2)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the service on port {port} did not become ready")


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def drop_redis_keys(redis: str, prefix: str):
    keys = subprocess.run(["redis-cli", "-u", redis, "--scan", "--pattern", f"{prefix}*"],
                          capture_output=True, text=True).stdout.split()
    for i in range(0, len(keys), 500):
        subprocess.run(["redis-cli", "-u", redis, "DEL", *keys[i:i + 500]], capture_output=True)


def stubs(out: Path):
    """Python stubs of the contract, generated by grpcio-tools (its bundled protoc)."""
    from grpc_tools import protoc
    proto = ROOT / "proto"
    files = [str(p.relative_to(proto)) for p in (proto / "zonerank" / "v1").glob("*.proto")]
    include = Path(protoc.__file__).parent / "_proto"
    code = protoc.main(["protoc", f"-I{proto}", f"-I{include}", f"--python_out={out}",
                        f"--grpc_python_out={out}", *files])
    if code != 0:
        raise SystemExit("protoc failed")
    sys.path.insert(0, str(out))


def peer_pipeline(dsn: str, table: str, year: str):
    """What a data team writes instead: read the rows, pivot, the five criteria of
    enterprise-per-mu, TOPSIS with the same weights, ranks."""
    import numpy as np
    import pandas as pd
    import psycopg
    from pymcdm import methods, normalizations
    from pymcdm.helpers import rankdata

    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT entity_id, indicator, value FROM {table} WHERE period = %s", (year,))
        rows = cur.fetchall()
    frame = pd.DataFrame(rows, columns=["entity_id", "indicator", "value"])
    wide = frame.pivot(index="entity_id", columns="indicator", values="value").astype(float)
    criteria = pd.DataFrame({
        "tax_per_mu": wide["tax"] / wide["land_area"],
        "value_added_per_mu": wide["value_added"] / wide["land_area"],
        "labor_productivity": wide["value_added"] / wide["employees"],
        "rd_intensity": 100 * wide["rd_expenditure"] / wide["revenue"],
        "energy_intensity": wide["energy_consumption"] / wide["value_added"],
    })
    criteria = criteria.fillna(criteria.mean())
    matrix = criteria.to_numpy()
    weights = np.array([0.4, 0.2, 0.15, 0.1, 0.15])
    types = np.array([1, 1, 1, 1, -1])
    scores = methods.TOPSIS(normalization_function=normalizations.vector_normalization)(
        matrix, weights, types)
    ranks = rankdata(scores, reverse=True)
    return len(ranks)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500_000)
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--import-only", action="store_true",
                        help="stop after the import and its peer (and report peak RSS)")
    parser.add_argument("--perf", type=Path, default=None,
                        help="record a perf profile of each service per step into this folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="zonerank-national-"))
    print(f"N = {args.n:,} enterprises, {ZONES_PER_CITY * len(CITIES)} zones, "
          f"{len(INDICATORS)} indicators x {len(YEARS)} years; files in {work}")
    started = time.perf_counter()
    generate(args.n, work)
    rows = args.n * len(INDICATORS) * len(YEARS)
    print(f"generated {rows:,} observation rows in {time.perf_counter() - started:.1f} s")
    stubs(work)
    import grpc
    from zonerank.v1 import ranking_service_pb2 as ranking_pb2
    from zonerank.v1 import ranking_service_pb2_grpc as ranking_grpc

    db = f"zonerank_national_{os.getpid()}"
    psql(args.pg_host, f"CREATE DATABASE {db}")
    url = f"postgres://postgres@{args.pg_host}:5432/{db}"
    dsn = f"host={args.pg_host} user=postgres dbname={db}"
    prefix = f"zonerank-national-{os.getpid()}:"
    env = dict(os.environ, DATABASE_URL=url, REDIS_URL=args.redis, ZONERANK_REDIS_PREFIX=prefix,
               ZONERANK_LOG_FORMAT="text", RUST_LOG="warn",
               # The budgets a national deployment raises (README, "Budgets"): the whole
               # country as one cohort, its metric tables, and one import of the whole file.
               ZONERANK_MAX_RANKING_ENTITIES=str(max(200_000, args.n)),
               ZONERANK_MAX_METRIC_CELLS=str(max(1_000_000, 20 * args.n)),
               ZONERANK_MAX_REQUEST_SECS="1800", ZONERANK_MAX_CALL_SECS="600")
    subprocess.run([RELEASE / "zonerank", "migrate"], env=env, check=True)
    procs = {}
    ports = {name: free_port() for name in ("ingestion", "metrics", "ranking")}
    logs = {}

    def start(name, extra=()):
        logs[name] = open(work / f"{name}.log", "a")
        procs[name] = subprocess.Popen(
            [RELEASE / f"zonerank-{name}", "--listen", f"127.0.0.1:{ports[name]}", *extra],
            env=env, stdout=logs[name], stderr=subprocess.STDOUT)
        wait_serving(ports[name])

    results = []

    def profiled(step):
        """perf record of each service until the returned function is called."""
        if args.perf is None:
            return lambda: None
        args.perf.mkdir(parents=True, exist_ok=True)
        recorders = [subprocess.Popen(
            ["perf", "record", "-F", "499", "-g", "-p", str(p.pid), "-o",
             str(args.perf / f"{name}-{step}.data")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name, p in procs.items()]
        time.sleep(1)

        def stop():
            for r in recorders:
                r.send_signal(signal.SIGINT)
            for r in recorders:
                r.wait(timeout=60)
        return stop

    def report(step, ours, peer=None, peer_name=""):
        line = f"{step}: zonerank {ours}"
        if peer is not None:
            line += f"; {peer_name} {peer}"
        print(line, flush=True)
        results.append(line)

    try:
        start("ingestion")
        start("metrics")
        start("ranking", ["--metrics-addr", f"http://127.0.0.1:{ports['metrics']}"])
        server = f"http://127.0.0.1:{ports['ingestion']}"

        def import_files(*files):
            subprocess.run([RELEASE / "zonerank", "import", *map(str, files), "--server", server],
                           check=True, stdout=subprocess.DEVNULL)

        t = time.perf_counter()
        import_files(work / "regions.csv", work / "zones.csv")
        t_ref = time.perf_counter() - t
        t = time.perf_counter()
        import_files(work / "enterprises.csv")
        t_ent = time.perf_counter() - t
        print(f"reference data: regions + zones {t_ref:.1f} s, {args.n:,} enterprises "
              f"{t_ent:.1f} s ({args.n / t_ent:,.0f}/s)")

        # Raw COPY of the same CSV into a keyed table, the floor for any loader.
        psql(args.pg_host, "CREATE TABLE raw_observations (entity_kind text, entity_id text, "
             "indicator text, period text, value double precision, unit text, "
             "PRIMARY KEY (entity_kind, entity_id, indicator, period))", db)
        t = time.perf_counter()
        subprocess.run(["psql", "-X", "-q", "-h", args.pg_host, "-U", "postgres", "-d", db, "-c",
                        f"\\copy raw_observations FROM '{work / 'observations.csv'}' CSV HEADER"],
                       check=True)
        t_copy = time.perf_counter() - t
        stop_perf = profiled("import")
        t = time.perf_counter()
        import_files(work / "observations.csv")
        t_import = time.perf_counter() - t
        stop_perf()
        report("load observations", f"import {t_import:.1f} s ({rows / t_import:,.0f} rows/s)",
               f"{t_copy:.1f} s ({rows / t_copy:,.0f} rows/s); zonerank = "
               f"{100 * t_copy / t_import:.0f}% of COPY", "raw \\copy")

        if args.import_only:
            hwm = {name: vm_hwm_mib(p.pid) for name, p in procs.items()}
            report("peak RSS (VmHWM) after import",
                   ", ".join(f"{k} {v:,.0f} MiB" for k, v in hwm.items()))
            return
        year = YEARS[-1]
        channel = grpc.insecure_channel(
            f"127.0.0.1:{ports['ranking']}",
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
        ranking = ranking_grpc.RankingServiceStub(channel)
        def compute(period):
            t = time.perf_counter()
            computed = ranking.ComputeRanking(
                ranking_pb2.ComputeRankingRequest(scheme_id="enterprise-per-mu", period=period),
                timeout=1800)
            return time.perf_counter() - t, computed.run.entity_count

        stop_perf = profiled("rank")
        t_first, count = compute(year)
        t = time.perf_counter()
        ranked = peer_pipeline(dsn, "raw_observations", year)
        t_peer = time.perf_counter() - t
        report("rank enterprise-per-mu, no stored run of the year before",
               f"ComputeRanking {t_first:.2f} s ({count:,} ranked)",
               f"{t_peer:.2f} s ({ranked:,} ranked); zonerank / peer = {t_first / t_peer:.2f}x "
               f"(target <= 0.5x)", "pandas + pymcdm")
        t_before, _ = compute(YEARS[-2])
        t_rank, count = compute(year)
        stop_perf()
        report("rank enterprise-per-mu, the year before's run stored",
               f"ComputeRanking {t_rank:.2f} s ({count:,} ranked; {YEARS[-2]} took "
               f"{t_before:.2f} s)",
               f"{t_peer:.2f} s; zonerank / peer = {t_rank / t_peer:.2f}x (target <= 0.5x)",
               "pandas + pymcdm")

        hwm = {name: vm_hwm_mib(p.pid) for name, p in procs.items()}
        report("peak RSS (VmHWM) after import and ComputeRanking",
               ", ".join(f"{k} {v:,.0f} MiB" for k, v in hwm.items()) + " (target <= 1,024 MiB "
               "each, ingestion <= 300 MiB)")

        # GetRanking of the first page: cold (a fresh ranking process, the run's cache keys
        # gone from Redis), then warm.
        procs["ranking"].send_signal(signal.SIGTERM)
        procs["ranking"].wait(timeout=60)
        drop_redis_keys(args.redis, prefix)
        start("ranking", ["--metrics-addr", f"http://127.0.0.1:{ports['metrics']}"])
        page = ranking_pb2.GetRankingRequest(scheme_id="enterprise-per-mu", period=year,
                                             page_size=50)
        t = time.perf_counter()
        ranking.GetRanking(page, timeout=600)
        t_cold = time.perf_counter() - t
        warm = []
        for _ in range(200):
            t = time.perf_counter()
            ranking.GetRanking(page, timeout=60)
            warm.append(time.perf_counter() - t)
        warm.sort()
        report("GetRanking first page",
               f"cold {1000 * t_cold:.1f} ms, warm median {1000 * warm[len(warm) // 2]:.2f} ms, "
               f"p99 {1000 * warm[int(len(warm) * 0.99) - 1]:.2f} ms")
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if not args.keep:
            psql(args.pg_host, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            drop_redis_keys(args.redis, prefix)
    print("\nsummary")
    for line in results:
        print("  " + line)


if __name__ == "__main__":
    main()
