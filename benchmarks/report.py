"""Write benchmarks/RESULTS.md: machine header, the table, notes, profiles, the GPU section."""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import Config, Row

METRICS = {
    "proc": "process spawn to end of work (interpreter start + imports included)",
    "wall": "whole process, spawn to exit",
    "inner": "the timed call alone, as the child process reports it",
    "epoch": "train-epoch seconds (Ultralytics callbacks), last epoch of each run",
    "peak RSS - baseline": "peak RSS (the child's VmHWM) minus an idle interpreter with our imports, MiB",
}


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def _ratio(row: Row) -> str:
    if row.ratio is None:
        return "-"
    return f"{row.ratio:.2f}x"


def render(rows: list[Row], info: dict, cfg: Config, extras: dict, argv: list[str],
           total_s: float, failures: list[str]) -> str:
    v = info["versions"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python -m benchmarks.run {' '.join(argv)}`".rstrip() + " (`make bench`). "
        "Synthetic data (tiny real JPEG files, random boxes, 6 classes) is generated on every run. "
        "Each case runs in its own process; cases of one comparison alternate (A B A B ...), "
        "and the table shows medians and their ratio. Absolute seconds drift on a shared "
        "machine; ratios are the result.",
        "",
        f"- date: {info['date']}; total bench time {total_s / 60:.1f} min",
        f"- machine: {info['cpu']}, {info['cores']} cores, {info['memory']} RAM, GPU: "
        f"{info['gpu']}; {info['os']}",
        f"- Python {info['python']}; " + ", ".join(f"{k} {x}" for k, x in v.items()),
        f"- repeats: {cfg.repeats} (finetune: {cfg.repeats_train}; FiftyOne VOC, ingest, freeze: {cfg.repeats_slow}; "
        f"evaluation: {cfg.repeats_eval}), plus one discarded warm-up round for the fast cases",
        "",
        "| what | against | metric | ours (median) | theirs (median) | ratio | target | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.what} | {r.against} | {r.metric} | {_num(r.ours)} | {_num(r.base)} | "
                     f"{_ratio(r)} | {r.target} | **{r.verdict}** |")
    lines += ["", "Ratios: for \"faster\" targets theirs / ours; for \"<= Nx\" targets ours / "
              "theirs (or ours / floor, large / small).", "", "Metrics: " + "; ".join(
                  f"`{k}` = {d}" for k, d in METRICS.items()) + ".", ""]
    if failures:
        lines += ["## Comparisons that could not run", ""]
        lines += [f"- {f}" for f in failures] + [""]
    lines += ["## Details per comparison", ""]
    for r in rows:
        lines.append(f"**{r.what}** ({r.verdict})")
        lines.append("")
        lines += [f"- {n}" for n in r.notes if n]
        lines.append("")
    if extras.get("profiles"):
        lines += ["## Where the time goes (cProfile, one extra run each)", "",
                  "Self time grouped by package; C builtins (socket reads, `deepcopy`, ...) "
                  "are charged to the package that called them. cProfile slows pure-Python "
                  "code (mongoengine) more than C code, so shares matter, not seconds.", ""]
        for p in extras["profiles"]:
            total = sum(p["buckets"].values()) or 1.0
            lines.append(f"**{p['label']}**: " + "; ".join(
                f"{name} {sec / total:.0%}" for name, sec in p["buckets"].items()
                if sec / total >= 0.01))
            lines.append("")
            lines += [f"  - `{name}`: {tt:.2f} s self, {ct:.2f} s cumulative"
                      for name, ct, tt in p["top"][:8]]
            lines.append("")
    lines += extras.get("findings", [])
    lines += ["## GPU run (BCCD, imgsz 640, freeze none / backbone / two-stage)", "",
              extras.get("gpu_note", "No GPU in this session: the BCCD fine-tuning comparison "
                         "(mAP50-95 and wall time per schedule) was not run. It is not "
                         "simulated on CPU."), ""]
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
