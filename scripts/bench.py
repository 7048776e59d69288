"""Benchmark the migration against the naive baseline, the raw put floor and rclone, on one endpoint.

    python scripts/bench.py [--transcripts 2000] [--latency-ms 0] [--width 16] [--courses 0] [--only abcd]

Starts moto's S3 server as a separate process (and, with --latency-ms, a proxy in
its own process that holds every request for that long), builds a synthetic
contentstore with realistic sizes in each measuring process, and times:

  (a) this tool's migrate, end to end: extract + reconcile + promote + verify;
  (b) the original migration's way: one transcript at a time, GridFS get then put_object;
  (c) the raw floor: the same bytes put from a thread pool of the same width, nothing else;
  (d) rclone copy --transfers WIDTH of the same transcripts exported to a folder (if installed).

Each runs in its own process; its peak RSS is measured from the moment the synthetic
contentstore is built (which lives in that process), so it is what the run itself adds;
for (d) that is the exporting process, not rclone. S3 requests are counted with a
botocore event hook. The CPU time of the measuring process (of rclone, for (d)) and of
moto's server shows which side of a run was the busy one. Compare the ratios of one
run, not absolute times across machines. With --courses N it also runs a batch of N
small courses and reports courses/min for the first and the last 100.
"""

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
COURSE = "course-v1:Bench+Transcripts+2026"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing answered on port {port}")


def sizes(n, seed=42):
    """Return ``n`` transcript sizes: mostly 1-20 KB, some over 100 KB, a few over one GridFS chunk."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        roll = rng.random()
        out.append(rng.randint(300_000, 600_000) if roll < 0.005 else
                   rng.randint(100_000, 200_000) if roll < 0.05 else rng.randint(1_000, 20_000))
    return out


def transcript(i, size, rng):
    """Return (name, bytes): SJSON mostly, SRT for one in ten, as contentstores hold them."""
    from etl.demo.sample import sjson, srt

    cue = 2500
    count = max(1, size // 60)
    cues = [(k * cue, k * cue + cue - 100, f"line {k} of video {i} " + "x" * rng.randint(5, 30)) for k in range(count)]
    if i % 10 == 9:
        return f"{i:08x}-0000-4000-8000-{i:012x}-en.srt", srt(cues)
    return f"subs_video{i:05d}.srt.sjson", sjson(cues)


def build(db, n, course=COURSE, seed=42):
    """Fill ``db`` with one course of ``n`` transcripts; return {name: bytes} (not timed)."""
    rng = random.Random(seed)
    out = dict(transcript(i, size, rng) for i, size in enumerate(sizes(n, seed)))
    fill(db, ((course, name, body, "application/json" if name.endswith("sjson") else "text/plain")
              for name, body in out.items()))
    return out


def fill(db, assets, batch=50):
    """Save (course, name, bytes, content type) assets into ``db`` as Studio does, ``batch`` at a time.

    Each batch goes through GridFS into a scratch database and its documents are
    copied over unchanged: mongomock scans a whole collection on every GridFS
    write, so saving straight into a large contentstore would take quadratic time.
    """
    from etl.demo.sample import save_asset

    def flush(scratch):
        for name in ("fs.files", "fs.chunks"):
            docs = list(scratch[name].find())
            if docs:
                db[name].insert_many(docs)

    scratch = None
    for i, (course, name, body, content_type) in enumerate(assets):
        if i % batch == 0:
            if scratch is not None:
                flush(scratch)
            scratch = contentstore()
        save_asset(scratch, course, name, body, content_type)
    if scratch is not None:
        flush(scratch)


def contentstore():
    import mongomock
    import mongomock.gridfs

    mongomock.gridfs.enable_gridfs_integration()
    return mongomock.MongoClient()["edxapp"]


def vm(field):
    """Return a /proc/self/status memory figure in kB."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


def reset_peak():
    """Reset the peak RSS to the current RSS, so the peak measured next is the operation's own."""
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return vm("VmRSS")


def counted_client(endpoint, width):
    """Return a boto3 client like the tool's, plus a dict counting its HTTP requests."""
    import etl

    cfg = etl.Config(bucket="counting", s3_endpoint_url=endpoint, s3_concurrency=width)
    client, counter = cfg.s3, {"requests": 0}

    def count(**_):
        counter["requests"] += 1

    client.meta.events.register("before-send.s3", count)
    return client, counter


def tool_config(endpoint, width, bucket, db):
    """Return a Config as the tool's runs use it, on a new bucket, and its client's request counter (at 0).

    The store probe runs here, once, as it does once per process in a run; its requests go to
    ``counter["probe"]``, not to any course.
    """
    import etl
    from etl.store.probe import probe

    client, counter = counted_client(endpoint, width)
    client.create_bucket(Bucket=bucket)
    cfg = etl.Config(bucket=bucket, s3_endpoint_url=endpoint, contentstore=db, s3_client=client,
                     s3_concurrency=width, manifest_dir=None, progress=False)
    counter["requests"] = 0
    probe(cfg)
    counter["probe"], counter["requests"] = counter["requests"], 0
    return cfg, counter


def measure(which, endpoint, n, width, bucket):
    """Run one measurement in this process; return a dict of its figures."""
    import etl
    import etl.cli.memory

    etl.cli.memory.tune()  # as the CLI does

    db = contentstore()
    data = build(db, n)
    cfg, counter = tool_config(endpoint, width, bucket, db)
    client = cfg.s3
    base = reset_peak()  # the synthetic contentstore lives in this process; count only what the run adds
    clock = children_cpu if which == "d" else time.process_time  # (d)'s work is rclone's
    started, reading, cpu = time.perf_counter(), 0.0, clock()
    if which == "a":
        summary = etl.migrate(cfg, [COURSE], workers=1, retries=0)
        assert summary.ok and summary.transcripts == n, summary.text()
        assert bool(summary.courses.loc[0, "ready"])
    elif which == "b":
        import gridfs

        fs = gridfs.GridFS(db, "fs")
        for doc in db["fs.files"].find({"content_son.run": "2026"}, {"_id": 1, "content_son": 1}):
            t = time.perf_counter()
            body = fs.get(doc["_id"]).read()
            reading += time.perf_counter() - t
            client.put_object(Bucket=bucket, Key=f"naive/{doc['content_son']['name']}", Body=body)
    elif which == "c":
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(width) as pool:
            list(pool.map(lambda item: client.put_object(Bucket=bucket, Key=f"raw/{item[0]}", Body=item[1]),
                          data.items()))
    elif which == "d":
        folder = tempfile.mkdtemp(prefix="bench-export-")
        for name, body in data.items():
            with open(os.path.join(folder, name), "wb") as fh:
                fh.write(body)
        started, cpu = time.perf_counter(), clock()
        subprocess.run(["rclone", "copy", folder, f"bench:{bucket}/rclone", "--transfers", str(width),
                        "--s3-provider", "Other", "--s3-endpoint", endpoint, "--s3-access-key-id", "bench",
                        "--s3-secret-access-key", "bench", "--s3-region", "us-east-1",
                        "--no-check-dest", "--s3-no-check-bucket", "--quiet", "--config", "/dev/null"],
                       check=True, env={**{k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"},
                                        "RCLONE_CONFIG_BENCH_TYPE": "s3"})  # a CA bundle means nothing on http
        shutil.rmtree(folder)
    seconds, cpu = time.perf_counter() - started, clock() - cpu
    return {"which": which, "transcripts": n, "seconds": seconds, "per_second": n / seconds,
            "requests": counter["requests"] if which != "d" else None, "rss_mb": (vm("VmHWM") - base) / 1024,
            "reading": reading, "cpu": cpu}


def measure_memory(endpoint, n, width, bucket):
    """Run (a) under tracemalloc; return the peak bytes held by what etl's own lines allocated, sampled through the run.

    Only the innermost frame is kept, so an allocation counts when a line of
    etl's code made it, not when etl called a library (botocore, pyarrow, the
    stand-in contentstore) that made it.
    """
    import threading
    import tracemalloc

    import etl
    import etl.cli.memory

    etl.cli.memory.tune()
    db = contentstore()
    build(db, n)
    cfg, _ = tool_config(endpoint, width, bucket, db)
    own = [tracemalloc.Filter(True, os.path.join(ROOT, "etl", "*"))]
    peak, done = {"own": 0}, threading.Event()

    def sample():  # sampling takes the GIL for a while, so it waits twice as long as a sample took
        while True:
            started = time.perf_counter()
            snapshot = tracemalloc.take_snapshot().filter_traces(own)
            peak["own"] = max(peak["own"], sum(stat.size for stat in snapshot.statistics("filename")))
            del snapshot
            if done.wait(max(0.1, 2 * (time.perf_counter() - started))):
                return

    tracemalloc.start(1)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    summary = etl.migrate(cfg, [COURSE], workers=1, retries=0)
    done.set()
    sampler.join()
    tracemalloc.stop()
    assert summary.ok and summary.transcripts == n, summary.text()
    return {"transcripts": n, "own_bytes": peak["own"]}


def children_cpu():
    """Return the CPU seconds used by this process's finished children (rclone, for (d))."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def server_cpu(pid):
    """Return the CPU seconds process ``pid`` has used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def small_courses(db, courses):
    """Fill ``db`` with ``courses`` small courses of 1 to 5 transcripts; return their ids (the same every time)."""
    from etl.demo.sample import sjson

    ids = [f"course-v1:Bench+C{i:04d}+2026" for i in range(courses)]
    fill(db, ((course, f"subs_v{j}.srt.sjson", sjson([(0, 900, f"course {i} video {j}")] * 20), "application/json")
              for i, course in enumerate(ids) for j in range(i % 5 + 1)))
    return ids


def course_path(endpoint, width, bucket):
    """Migrate one fresh one-transcript course alone; return its S3 requests and its critical path.

    Each request's start and end are taken from botocore's ``before-call`` and
    ``after-call`` events on the thread that makes it. A request's depth is one
    more than the deepest request that ended before it started; the deepest is
    the number of round trips the course waits for one after another.
    """
    import threading

    import etl
    from etl.demo.sample import sjson

    db = contentstore()
    course = "course-v1:Bench+Path+2026"
    fill(db, [(course, "subs_v0.srt.sjson", sjson([(0, 900, "one video")] * 20), "application/json")])
    cfg, counter = tool_config(endpoint, width, bucket, db)
    spans, local = [], threading.local()

    def begin(**_):
        local.started = time.perf_counter()

    def end(model, **_):
        spans.append((local.started, time.perf_counter(), model.name))

    cfg.s3.meta.events.register("before-call.s3", begin)
    cfg.s3.meta.events.register("after-call.s3", end)
    summary = etl.migrate(cfg, [course], workers=1, retries=0)
    assert summary.count("promoted") == 1, summary.text()
    spans.sort()
    depth = []
    for start, _, _ in spans:
        depth.append(1 + max((d for d, (_, done, _) in zip(depth, spans) if done <= start), default=0))
    return {"requests": counter["requests"], "fixed": counter["requests"] - 2, "critical_path": max(depth),
            "probe": counter["probe"]}


def measure_batch(endpoint, courses, width, bucket):
    """Migrate ``courses`` small courses; return courses/min for the first and the last 100."""
    import etl
    import etl.cli.memory

    etl.cli.memory.tune()  # as the CLI does
    db = contentstore()
    ids = small_courses(db, courses)
    cfg, counter = tool_config(endpoint, width, bucket, db)
    times, transcripts, cpu = [], 0, time.process_time()
    window = min(100, courses)
    for chunk in range(0, courses, window):
        started = time.perf_counter()
        summary = etl.migrate(cfg, ids[chunk:chunk + window], workers=4, retries=0)
        assert summary.ok, " | ".join(summary.text().splitlines())
        times.append(time.perf_counter() - started)
        transcripts += summary.transcripts
    return {"courses": courses, "first_100_per_min": window / times[0] * 60,
            "last_100_per_min": window / times[-1] * 60, "per_min": courses / sum(times) * 60,
            "requests_per_course": counter["requests"] / courses, "client_cpu": time.process_time() - cpu,
            "fixed_per_course": (counter["requests"] - 2 * transcripts) / courses}


def measure_engines(endpoint, courses, width, bucket):
    """Migrate the same ``courses`` small courses on the thread pool and on Celery with 1 and 2 worker processes.

    Each run has its own prefixes in one bucket. The Celery runs start a real
    redis-server and real ``celery worker`` processes (``scripts/bench_celery.py``
    loads the same courses in each); client CPU is the enqueuer's, worker CPU
    the workers' (pool processes included).
    """
    import resource
    import signal

    import etl
    import etl.cli.memory
    from etl.batch import tasks

    etl.cli.memory.tune()
    ids = small_courses(contentstore(), courses)
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_for(port)
    broker = f"redis://127.0.0.1:{port}/0"
    os.environ["ETL_BROKER_URL"] = broker
    client, _ = counted_client(endpoint, width)
    client.create_bucket(Bucket=bucket)
    out = {}
    try:
        db = contentstore()
        small_courses(db, courses)
        for workers in (1, 4):
            cfg = etl.Config(bucket=bucket, s3_endpoint_url=endpoint, contentstore=db, s3_concurrency=width,
                             manifest_dir=None, progress=False, staging_prefix=f"t{workers}/staging",
                             live_prefix=f"t{workers}/live", state_prefix=f"t{workers}/state")
            cpu, started = time.process_time(), time.perf_counter()
            summary = etl.migrate(cfg, ids, workers=workers, retries=0)
            assert summary.count("promoted") == courses, summary.text()
            out[f"threads x{workers}"] = {"per_min": courses / (time.perf_counter() - started) * 60,
                                          "client_cpu": time.process_time() - cpu, "worker_cpu": 0.0}
        for processes in (1, 2):
            prefix = f"c{processes}"
            env = dict(os.environ, ETL_BUCKET=bucket, ETL_S3_ENDPOINT_URL=endpoint, ETL_STAGING_PREFIX=f"{prefix}/staging",
                       ETL_LIVE_PREFIX=f"{prefix}/live", ETL_STATE_PREFIX=f"{prefix}/state", ETL_BENCH_COURSES=str(courses),
                       ETL_CELERY_QUEUE=f"bench-{prefix}", ETL_S3_CONCURRENCY=str(width))
            worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "scripts.bench_celery", "worker", "--pool",
                                       "prefork", "--concurrency", str(processes), "-Q", f"bench-{prefix}",
                                       "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for line in worker.stderr:
                if " ready." in line:
                    break
            threading_drain(worker.stderr)
            cfg = etl.Config(bucket=bucket, s3_endpoint_url=endpoint, s3_concurrency=width, manifest_dir=None,
                             progress=False, staging_prefix=f"{prefix}/staging", live_prefix=f"{prefix}/live",
                             state_prefix=f"{prefix}/state")
            os.environ["ETL_CELERY_QUEUE"] = f"bench-{prefix}"
            children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu, started = time.process_time(), time.perf_counter()
            summary = etl.migrate(cfg, ids, engine="celery")
            elapsed = time.perf_counter() - started
            client_cpu = time.process_time() - cpu
            assert summary.count("promoted") == courses, summary.text()
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            worker_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
            out[f"celery x{processes}"] = {"per_min": courses / elapsed * 60, "client_cpu": client_cpu,
                                           "worker_cpu": worker_cpu}
    finally:
        redis.terminate()
        redis.wait()
    del tasks
    return out


def threading_drain(stream):
    """Keep reading a child's stream in the background, so the child never blocks on a full pipe."""
    import threading

    threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()


def serve_s3(port):
    """Serve moto's S3 on ``port``, with moto's list of its own services read once.

    moto's server lists and stats its package folder twice on every request to
    route it (about a third of its time per put); the list never changes while
    it runs, so reading it once makes the stand-in faster for (a) to (d) alike.
    """
    from moto import backends
    from moto.server import main as moto_server

    services = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: services
    moto_server(["-H", "127.0.0.1", "-p", str(port)])


def serve_proxy(upstream, delay_ms, port):
    """Serve a proxy in front of ``upstream`` that holds every request for ``delay_ms``."""
    from tests.s3proxy import FaultProxy

    proxy = FaultProxy(upstream, port=port)
    proxy.delay(delay_ms / 1000.0)
    proxy.server.serve_forever()


def measure_overhead(courses):
    """Time what the Celery engine itself costs for ``courses`` courses with nothing to do.

    A real redis-server is the broker and result backend; no worker runs. It
    times sending one task per course, a re-run attaching to them all (nothing
    is sent twice), and collecting them once every task has finished (their
    results are written straight to the backend, as a worker would).
    """
    import etl
    from etl.batch import tasks

    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_for(port)
    os.environ["ETL_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
    os.environ["ETL_CELERY_QUEUE"] = "bench-overhead"
    tasks.app.conf.broker_url = tasks.app.conf.result_backend = os.environ["ETL_BROKER_URL"]
    try:
        cfg = etl.Config(bucket="bench-overhead", manifest_dir=None, progress=False)
        ids = [f"course-v1:Noop+C{i}+2026" for i in range(courses)]
        started = time.perf_counter()
        results = tasks.enqueue(cfg, ids, retries=0)
        enqueue = time.perf_counter() - started
        started = time.perf_counter()
        again = tasks.enqueue(cfg, ids, retries=0)
        attach = time.perf_counter() - started
        for course_id, result in again:
            tasks.app.backend.store_result(result.id, {"course_id": course_id, "outcome": "skipped"}, "SUCCESS")

        class Count:
            n = 0

            def update(self, n):
                self.n += n

        started = time.perf_counter()
        rows = list(tasks.collect(results, Count()))
        collect = time.perf_counter() - started
        assert len(rows) == courses and {r["outcome"] for r in rows} == {"skipped"}
        return {"courses": courses, "enqueue": enqueue, "attach": attach, "collect": collect}
    finally:
        redis.terminate()
        redis.wait()


def child_command(job, *args):
    """Return the command line that runs ``job(*args)`` in a process of its own."""
    return [sys.executable, os.path.abspath(__file__), CHILD, json.dumps([job, *args])]


def child(job, *args):
    """Run ``job(*args)`` in its own process; return its figures, or None (saying why) if it failed."""
    out = subprocess.run(child_command(job, *args), capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if out.returncode != 0:
        name = args[0] if job == "measure" else "batch"
        print(f"measurement {name} failed: {out.stderr.strip().splitlines()[-1][:300]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


CHILD = "--child"  # how this script starts its own measuring and proxy processes; not for operators
JOBS = {"measure": measure, "measure_batch": measure_batch, "course_path": course_path, "measure_memory": measure_memory,
        "measure_engines": measure_engines, "measure_overhead": measure_overhead, "serve_s3": serve_s3,
        "serve_proxy": serve_proxy}


def bench(transcripts=2000, latency_ms=0, width=16, courses=0, only="abcd", engine="threads", tracemalloc=False,
          overhead=0):
    """Measure (a) to (d) on one course of ``transcripts``, then optionally a batch of ``courses``.

    ``latency_ms`` adds that delay to every S3 request; ``width`` is the
    parallelism of (a), (c) and (d); ``only`` picks which of a, b, c, d to
    measure ('' for only the batch). ``engine="celery"`` runs the batch on the
    thread pool and on Celery with 1 and 2 worker processes, side by side.
    ``tracemalloc`` also runs (a) once more under tracemalloc and reports the
    tool's own allocation per transcript at its peak. ``overhead`` times the
    Celery engine's own enqueue, re-enqueue and collect for that many courses
    with nothing to do (a redis-server, no worker).
    """
    only = str(only or "")
    if set(only) - set("abcd"):
        raise SystemExit(f"bench: --only takes letters from abcd, not {only!r}")
    if engine not in ("threads", "celery"):
        raise SystemExit(f"bench: --engine is threads or celery, not {engine!r}")
    if engine == "celery" and not courses:
        raise SystemExit("bench: --engine celery measures a batch: give --courses N")
    procs = []
    port = free_port()
    procs.append(subprocess.Popen(child_command("serve_s3", port), cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(port)
        if latency_ms:
            proxy_port = free_port()
            procs.append(subprocess.Popen(child_command("serve_proxy", endpoint, latency_ms, proxy_port), cwd=ROOT))
            wait_for(proxy_port)
            endpoint = f"http://127.0.0.1:{proxy_port}"
        results, failed = {}, []
        for which in only:
            if which == "d" and not shutil.which("rclone"):
                print("(d) skipped: rclone is not installed (apt-get install rclone)", file=sys.stderr)
                continue
            before = server_cpu(procs[0].pid)
            result = child("measure", which, endpoint, transcripts, width, f"bench-{which}-{port}")
            if result:
                results[which] = dict(result, server_cpu=server_cpu(procs[0].pid) - before)
            else:
                failed.append(f"({which})")
        if results:
            report(transcripts, width, latency_ms, results)
        if tracemalloc:
            memory = child("measure_memory", endpoint, transcripts, width, f"bench-memory-{port}")
            if memory:
                print(f"(a) under tracemalloc, {transcripts} transcripts: etl's own allocations peaked at "
                      f"{memory['own_bytes'] / 1e6:.1f} MB, {memory['own_bytes'] / transcripts / 1000:.2f} KB per "
                      "transcript")
            else:
                failed.append("the tracemalloc run")
        if overhead:
            cost = child("measure_overhead", int(overhead))
            if cost:
                n = cost["courses"]
                print(f"celery engine overhead, {n} courses with nothing to do: enqueue {cost['enqueue']:.1f} s "
                      f"({cost['enqueue'] * 1e6 / n:.0f} us a course), re-run attaching {cost['attach']:.1f} s "
                      f"({cost['attach'] * 1e6 / n:.0f} us), collect {cost['collect']:.1f} s "
                      f"({cost['collect'] * 1e6 / n:.0f} us)")
            else:
                failed.append("the overhead run")
        if engine == "celery":
            engines = child("measure_engines", endpoint, courses, width, f"bench-engines-{port}")
            if engines:
                print(f"batch of {courses} small courses, added latency {latency_ms} ms, {os.cpu_count()} cores:")
                for name, r in engines.items():
                    print(f"  {name:12} {r['per_min']:7.0f} courses/min  client CPU {r['client_cpu']:6.1f} s  "
                          f"worker CPU {r['worker_cpu']:6.1f} s")
                base = engines["threads x1"]["per_min"]
                print(f"  celery x1 / threads x1: {engines['celery x1']['per_min'] / base:.2f}; "
                      f"celery x2 / celery x1: {engines['celery x2']['per_min'] / engines['celery x1']['per_min']:.2f}")
            else:
                failed.append("the engines")
            courses = 0
        path = courses and child("course_path", endpoint, width, f"bench-path-{port}")
        if path:
            print(f"one one-transcript course alone: {path['requests']} S3 requests ({path['fixed']} fixed), "
                  f"{path['critical_path']} of them one after another; the store probe before it: "
                  f"{path['probe']} requests, once per process")
        before = server_cpu(procs[0].pid)
        batch = courses and child("measure_batch", endpoint, courses, width, f"bench-batch-{port}")
        if batch:
            print(f"batch of {batch['courses']} courses: {batch['per_min']:.0f} courses/min "
                  f"({batch['first_100_per_min']:.0f} for the first 100, {batch['last_100_per_min']:.0f} for the "
                  f"last 100), {batch['requests_per_course']:.1f} S3 requests per course "
                  f"({batch['fixed_per_course']:.1f} fixed); client CPU {batch['client_cpu'] * 1000 / courses:.0f} ms "
                  f"and server CPU {(server_cpu(procs[0].pid) - before) * 1000 / courses:.0f} ms per course")
        elif courses:
            failed.append("the batch")
        if failed:
            raise SystemExit(f"bench: {', '.join(failed)} failed; see above")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


def main():
    for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    if sys.argv[1:2] == [CHILD]:
        job, *args = json.loads(sys.argv[2])
        result = JOBS[job](*args)
        if result is not None:
            print(json.dumps(result))
        return
    import fire

    fire.Fire(bench)


def report(transcripts, width, latency_ms, results):
    names = {"a": "(a) migrate, end to end", "b": "(b) naive: get + put, one at a time",
             "c": "(c) raw floor: parallel puts only", "d": "(d) rclone copy of exported files"}
    print(f"{transcripts} transcripts, width {width}, added latency {latency_ms} ms, "
          f"{os.cpu_count()} cores")
    print(f"{'':40} {'transcripts/s':>13} {'seconds':>8} {'requests/transcript':>20} {'peak RSS +MB':>12} "
          f"{'client CPU s':>12} {'server CPU s':>12}")
    for which, r in results.items():
        per = f"{r['requests'] / r['transcripts']:.2f}" if r["requests"] is not None else "-"
        print(f"{names[which]:40} {r['per_second']:13.1f} {r['seconds']:8.2f} {per:>20} {r['rss_mb']:12.0f} "
              f"{r['cpu']:12.1f} {r['server_cpu']:12.1f}")
    print("client CPU is the measuring process's (rclone's for (d)); server CPU is moto's, "
          f"of {os.cpu_count()} cores shared by all")
    if "b" in results:
        print(f"(b) spent {results['b']['reading']:.1f} s of its time in GridFS reads "
              "(mongomock scans every document per query; an indexed MongoDB would not)")
    a = results.get("a")
    if a:
        for other in "bcd":
            if other in results:
                print(f"a/{other}: (a) takes {a['seconds'] / results[other]['seconds']:.2f}x the time of ({other})")


if __name__ == "__main__":
    main()
