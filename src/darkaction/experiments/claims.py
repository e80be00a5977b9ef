"""The paper's claims, each judged by a paired comparison of two measured rows: supported, contradicted or
inconclusive.

    write_claims(out)   # reads <out>/table{1..4}.json (written by `experiment N`), writes <out>/claims.{md,json,png}

A claim "A beats B" compares rows A and B on the test videos and seeds both have (experiments/compare.py): the mean
difference, its 95 % interval (test recording groups and seeds both counted, evaluation/stats.py) and its p-value.
Supported when the interval lies above zero, contradicted when below, inconclusive otherwise; a claim whose rows were
not run says so. Thirteen claims are tested at the 95 % level each, without a multiplicity correction: about one in
twenty true "no difference" claims would still look decided; the p-values are listed for Holm's correction.

The length section fits a probe that predicts the class from clip length alone on the training split
(experiments/length.py) and shows, per row, how much better the row does on test clips whose length points to their
class than on the others.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from darkaction.errors import DataError
from darkaction.evaluation.stats import verdict
from darkaction.experiments.compare import Outcomes, confusion_between, missing_predictions, outcomes, paired, top1
from darkaction.experiments.length import LengthProbe, length_gap
from darkaction.utils import atomic_write_bytes, atomic_write_text, read_json, write_json

FULL = "full"  # the full method, whichever of Tables 1-3 measured it (they share one run)
FULL_ROWS = ((2, "delta"), (3, "delta"), (1, "zero-dce"))


@dataclass(frozen=True)
class Claim:
    key: str
    text: str
    better: tuple[int, str] | str  # (table, row) or FULL
    worse: tuple[int, str] | str
    metric: str = "top1"  # top1 (higher is better) | sit_stand (confusion: lower is better)


CLAIMS: tuple[Claim, ...] = (
    Claim("dce-vs-none", "Zero-DCE enhancement beats no enhancement (Table 1)", (1, "zero-dce"), (1, "none")),
    Claim("dce-vs-gamma", "Zero-DCE beats gamma correction (Table 1)", (1, "zero-dce"), (1, "gamma")),
    Claim("delta-vs-slowfast", "Delta sampling beats SlowFast (Table 2)", (2, "delta"), (2, "slowfast")),
    Claim("delta-vs-se", "Delta sampling beats the SE module (Table 2)", (2, "delta"), (2, "se")),
    Claim("delta-vs-constant", "Delta sampling beats a constant rate (Table 2)", (2, "delta"), (2, "constant")),
    Claim("delta-vs-length", "Delta sampling beats the length-adjusted rate (Table 2)", (2, "delta"), (2, "length")),
    Claim("delta-vs-variable", "Delta sampling beats the variable rate (Table 2)", (2, "delta"), (2, "variable")),
    Claim("bert-vs-tgap", "The BERT head beats TGAP (Table 3)", (3, "delta"), (3, "tgap")),
    Claim(
        "bert-sit-stand", "BERT confuses sit and stand less than TGAP (Sec. 5)", (3, "delta"), (3, "tgap"), "sit_stand"
    ),  # fmt: skip
    Claim(
        "r2plus1d-vs-efficientnet", "R(2+1)D-BERT beats EfficientNet-BERT (Table 3)", (3, "delta"), (3, "efficientnet")
    ),  # fmt: skip
    Claim("flow-hurts", "Adding optical flow hurts: RGB beats RGB + flow (Table 3)", (3, "delta"), (3, "flow")),
    Claim(
        "second-domain",
        "Adding the second, well-lit domain beats the dark set alone (Table 4 vs Table 2)",
        (4, "supervised"),
        FULL,
    ),  # fmt: skip
    Claim("supervised-vs-mran", "Fully supervised beats MRAN (Table 4)", (4, "supervised"), (4, "mran")),
)


def load_tables(out: Path) -> dict[int, dict]:
    """The table records `experiment N` wrote into `out` (table{N}.json), by number."""
    tables = {}
    for n in (1, 2, 3, 4):
        path = Path(out) / f"table{n}.json"
        if path.is_file():
            tables[n] = read_json(path)
    return tables


def _row(tables: dict, where: tuple[int, str] | str) -> tuple[str, Outcomes | None, str]:
    """(label, outcomes or None, why not) of a claim side."""
    places = FULL_ROWS if where == FULL else (where,)
    first_problem = None
    for n, key in places:  # the full method: the first table that measured it
        rec = tables.get(n)
        row = next((r for r in rec["rows"] if r["key"] == key), None) if rec else None
        if row is None:
            continue
        label = f"T{n} {row['name']}"
        why = f"{row['status']}: {row['reason']}" if row["status"] != "ok" else missing_predictions(row["runs"])
        if not why:
            return label, outcomes(row["runs"]), ""
        first_problem = first_problem or (label, None, why)
    if first_problem:
        return first_problem
    n, key = places[0]
    if n in tables:
        return f"T{n} {key}", None, f"row {key} of table {n} not run (`darkaction experiment {n} --rows {key}`)"
    return f"T{n} {key}", None, f"table {n} not run (`darkaction experiment {n}`)"


def judge(claim: Claim, tables: dict) -> dict:
    """One claim's record: the two rows, the measured effect (points; positive = as claimed), verdict."""
    better_label, a, why_a = _row(tables, claim.better)
    worse_label, b, why_b = _row(tables, claim.worse)
    rec = {"key": claim.key, "claim": claim.text, "better": better_label, "worse": worse_label,
           "metric": claim.metric}  # fmt: skip
    if a is None or b is None:
        return {**rec, "verdict": "not measured", "reason": why_a or why_b}
    if claim.metric == "sit_stand":  # lower confusion is better: worse - better
        d = paired(b, a, confusion_between("sit", "stand"))
    else:
        d = paired(a, b, top1)
    if d is None:
        return {**rec, "verdict": "not measured", "reason": "the rows share no test video or seed"}
    effect = {k: 100 * d[k] for k in ("diff", "lo", "hi")}
    return {**rec, **effect, "p": d["p"], "sign_flip_p": d["sign_flip_p"], "n": d["n"], "seeds": d["seeds"],
            "clusters": d["clusters"], "seeds_covered": d["seeds_covered"], "coarse": d["coarse"],
            "verdict": verdict(d)}  # fmt: skip


def length_section(out: Path, tables: dict) -> dict:
    """The length probe on the main data's training and test splits, and each measured row's length gap."""
    from darkaction.data.index import DatasetIndex

    path = Path(out) / "prepared" / "main" / "index.json"
    try:
        index = DatasetIndex.load(path)
    except DataError as e:
        return {"error": str(e)}
    train = index.split("train")
    test = index.split("test")
    if not train or not test or not all(r.n_frames for r in train + test):
        return {"error": f"{path}: no training or test clips with recorded lengths"}
    name = lambda r: index.classes[r.label]  # noqa: E731
    group = lambda r: r.group or f"video:{r.video_id}"  # noqa: E731  a clip without a group is its own cluster
    probe = LengthProbe.fit([r.n_frames for r in train], [name(r) for r in train])
    section = {
        "train": probe.accuracy([r.n_frames for r in train], [name(r) for r in train], [group(r) for r in train]),
        "test": probe.accuracy([r.n_frames for r in test], [name(r) for r in test], [group(r) for r in test]),
        "chance": 1.0 / len(index.classes),
        "rows": [],
    }
    for n, rec in sorted(tables.items()):
        for row in rec["rows"]:
            o = outcomes(row["runs"]) if row["status"] == "ok" else None
            gap = length_gap(o, probe) if o is not None else None
            if gap is not None:
                section["rows"].append({"table": n, "key": row["key"], "name": row["name"], **gap})
    return section


def fmt_p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _caveats(c: dict) -> str:
    notes = []
    if not c.get("seeds_covered", True):
        notes.append("1 seed: training randomness not in the interval")
    if c.get("coarse"):
        notes.append(f"only {c['clusters']} test groups: coarse")
    return f" ({'; '.join(notes)})" if notes else ""


def claims_markdown(judged: list[dict], length: dict, tables: dict) -> str:
    presets = sorted({t.get("preset", "?") for t in tables.values()})
    splits = sorted({run.get("split", "test") for t in tables.values() for r in t["rows"] for run in r["runs"]})
    where = " and ".join(splits) or "test"
    lines = ["# The paper's claims, measured", ""]
    lines.append(
        f"From the tables in this folder (preset {', '.join(presets) or '-'}; tables "
        f"{', '.join(str(n) for n in sorted(tables)) or 'none'} measured). Each claim compares two rows on the same "
        f"{where}-split videos and seeds: the effect in points (positive = as the paper claims), its 95 % interval "
        "(the test sample clustered by recording group, plus the spread over seeds; Student t), the p-value of the "
        "same t statistic, and the verdict: supported (interval above 0), contradicted (below 0), inconclusive "
        "(contains 0). No correction for testing several claims."
    )
    if "val" in splits:
        lines.append(
            "The validation split also chose each run's checkpoint, so its numbers are optimistic for every row alike."
        )
    lines += [
        "",
        "| Claim | Rows | Effect (points) [95 % CI] | p | Videos x seeds | Verdict |",
        "|---|---|---|---|---|---|",
    ]
    for c in judged:
        rows = f"{c['better']} vs {c['worse']}"
        if "diff" in c:
            what = " (sit<->stand confusion)" if c["metric"] == "sit_stand" else ""
            eff = f"{c['diff']:+.1f} [{c['lo']:+.1f}, {c['hi']:+.1f}]{what}"
            lines.append(f"| {c['claim']} | {rows} | {eff} | {fmt_p(c['p'])} | {c['n']} x {len(c['seeds'])} | "
                         f"**{c['verdict']}**{_caveats(c)} |")  # fmt: skip
        else:
            lines.append(f"| {c['claim']} | {rows} | - | - | - | {c['verdict']}: {c['reason']} |")
    lines += ["", "## The length confound (the paper's Figure 4)", ""]
    if "error" in length:
        lines.append(f"Not measured: {length['error']}")
    else:
        tr, te = length["train"], length["test"]
        lines.append(
            "A probe that sees only each clip's length (a Gaussian model of log length per class, fitted on the "
            f"training split): **{100 * tr['top1']:.1f} %** [{100 * tr['lo']:.1f}, {100 * tr['hi']:.1f}] on the "
            f"{tr['n']} training clips and **{100 * te['top1']:.1f} %** [{100 * te['lo']:.1f}, {100 * te['hi']:.1f}] "
            f"on the {te['n']} test clips (chance {100 * length['chance']:.1f} %). A test clip is length-matched "
            "when its length points to its own class (the probe gets it right). A model that leans on length does "
            "better on matched clips than on mismatched ones of the same class; the gap is taken within each class "
            "and averaged over classes, with a 95 % interval (test groups and seeds):"
        )
        lines += ["", "| Row | Top-1 on matched clips (%) | On mismatched clips (%) | Gap within classes (points) "
                  "[95 % CI] | Matched / mismatched clips (test groups) |", "|---|---|---|---|---|"]  # fmt: skip
        for r in length["rows"]:
            lines.append(
                f"| T{r['table']} {r['name']} | {100 * r['acc_matched']:.1f} | {100 * r['acc_mismatched']:.1f} | "
                f"{100 * r['gap']:+.1f} [{100 * r['lo']:+.1f}, {100 * r['hi']:+.1f}] | "
                f"{r['in']} ({r['clusters_in']}) / {r['out']} ({r['clusters_out']}) |"
            )
    return "\n".join(lines) + "\n"


def forest_plot(judged: list[dict]) -> bytes:
    """PNG bytes: each measured claim's effect with its 95 % interval, coloured by verdict."""
    from darkaction.utils import figure

    shown = [c for c in judged if "diff" in c]
    colours = {"supported": "tab:green", "contradicted": "tab:red", "inconclusive": "tab:grey"}
    fig, ax = figure(1, 1, figsize=(8.0, 0.45 * max(3, len(shown)) + 1.2), dpi=110)
    for i, c in enumerate(shown):
        y = len(shown) - 1 - i
        ax.errorbar(c["diff"], y, xerr=[[c["diff"] - c["lo"]], [c["hi"] - c["diff"]]], fmt="o", capsize=3,
                    color=colours[c["verdict"]])  # fmt: skip
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(range(len(shown)), [c["claim"] for c in reversed(shown)], fontsize=7)
    ax.set_xlabel("effect in the claimed direction (points), 95 % interval")
    # over the whole figure: the axes start right of the long claim labels, where an axes title would be cut off
    fig.suptitle("The paper's claims: green supported, red contradicted, grey inconclusive", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_claims(out: str | Path) -> dict[str, Path]:
    """Judge every claim from the tables in `out`; writes claims.md, claims.json and claims.png there."""
    out = Path(out)
    tables = load_tables(out)
    judged = [judge(c, tables) for c in CLAIMS]
    length = length_section(out, tables)
    return {
        "md": atomic_write_text(out / "claims.md", claims_markdown(judged, length, tables)),
        "json": write_json(out / "claims.json", {"claims": judged, "length": length}),
        "png": atomic_write_bytes(out / "claims.png", forest_plot(judged)),
    }
