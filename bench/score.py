#!/usr/bin/env python3
"""Coverage bench: stage 3's checks beside kube-score and kubeconform, on the same charts.

  python bench/score.py                 build the tools if needed, run, write the table
  python bench/score.py --build-only    only build (or find) kube-score and kubeconform

Both tools are built from the Go module proxy at pinned versions (`go install`, niced, one
build at a time: the machine's 2 cores are shared) and cached by version under
$SHIPCHECK_CACHE (~/.cache/shipcheck/kube-score-v1.20.0/, kubeconform-v0.8.0/).
kubeconform reads the offline Kubernetes schemas that kubernetes-validate ships (no
GitHub here).

Each seeded defect is a copy of one of our charts with values merged or a template line
replaced (as tests/test_charts_seeded.py seeds them), rendered once with helm; every tool
then judges the same manifests. A tool "catches" a defect when it reports a failing check
on the seeded render that it does not report on the clean render (so what a tool already
says about our charts is not counted for it). The clean baseline carries the
ephemeral-storage values our charts need (see EPHEMERAL below) until they are in the
charts' values.yaml.

Writes bench/results/score-coverage.json and score-coverage.md.
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shipcheck import charts, commands, config, manifest_policy as mp, quota, tools  # noqa: E402
from shipcheck import helm as helm_mod

RESULTS = ROOT / "bench" / "results"
KUBE_VERSION = "1.34"
TOOLS = {  # name: (Go package, version)
    "kube-score": ("github.com/zegl/kube-score/cmd/kube-score", "v1.20.0"),
    "kubeconform": ("github.com/yannh/kubeconform/cmd/kubeconform", "v0.8.0"),
}
# What the clean charts get in this bench until values.yaml carries it (told to the lead):
# emptyDir sizeLimits + ~50Mi of logs, per container role.
EPHEMERAL = {
    "todo-frontend": {"resources": {"requests": {"ephemeral-storage": "128Mi"}, "limits": {"ephemeral-storage": "512Mi"}},
                      "tests": {"resources": {"requests": {"ephemeral-storage": "16Mi"},
                                              "limits": {"ephemeral-storage": "64Mi"}}}},
    "todo-backend": {"resources": {"requests": {"ephemeral-storage": "64Mi"}, "limits": {"ephemeral-storage": "256Mi"}},
                     "migrations": {"resources": {"requests": {"ephemeral-storage": "32Mi"},
                                                  "limits": {"ephemeral-storage": "128Mi"}}},
                     "tests": {"resources": {"requests": {"ephemeral-storage": "16Mi"},
                                             "limits": {"ephemeral-storage": "64Mi"}}}},
}


# --- tools ------------------------------------------------------------------------------------
@contextmanager
def one_go_build():
    """One Go build at a time on this machine (other benches and set-ups take the same lock)."""
    lock = tools.cache_dir() / ".go-build.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def tool(name: str) -> Path:
    """The cached binary, built from the Go module proxy when missing."""
    package, version = TOOLS[name]
    home = tools.cache_dir() / f"{name}-{version}"
    binary = home / name
    if binary.is_file():
        return binary
    with one_go_build():
        if binary.is_file():  # built by another run while this one waited
            return binary
        with tempfile.TemporaryDirectory(prefix=f"build-{name}-") as tmp:
            print(f"bench: building {name} {version} from the Go module proxy (nice -n 10) ...", file=sys.stderr,
                  flush=True)
            result = commands.run(["nice", "-n", "10", "go", "install", "-trimpath", "-ldflags", "-s -w",
                                   f"{package}@{version}"], env={"GOBIN": tmp, "CGO_ENABLED": "0"},
                                  timeout_s=3600, check=False)
            if not result.ok:
                raise SystemExit(f"bench: building {name} failed: {result.tail(20)}")
            home.mkdir(parents=True, exist_ok=True)
            shutil.move(str(Path(tmp) / name), binary)
            print(f"bench: {name} built in {result.duration_s:.0f} s -> {binary}", file=sys.stderr, flush=True)
    return binary


def schema_location() -> str:
    """kubeconform's template over standalone schemas made from kubernetes-validate's
    offline ones (no GitHub here for yannh/kubernetes-json-schema)."""
    return str(standalone_schemas()) + "/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/" \
        "{{ .ResourceKind }}{{ .KindSuffix }}.json"


def standalone_schemas() -> Path:
    """kubernetes-validate's "-local" schemas point at "/api/_definitions.json#/$defs/..."
    (resolved by its own loader, not by kubeconform's); these copies have every $ref
    inlined (a type that contains itself, as CRDs' JSONSchemaProps, becomes {} at the
    second level). Made once per kubernetes-validate version, in the cache."""
    import kubernetes_validate
    from kubernetes_validate.version import __version__ as kv_version

    source = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    target = tools.cache_dir() / f"kubeconform-schemas-kubernetes-validate-{kv_version}"
    done = target / f"v{KUBE_VERSION}.0.done"
    if done.is_file():
        return target
    for strict in ("", "-strict"):
        local = source / f"v{KUBE_VERSION}.0-local{strict}"
        defs = json.loads((local / "_definitions.json").read_text())["$defs"]
        out = target / f"v{KUBE_VERSION}.0-standalone{strict}"
        out.mkdir(parents=True, exist_ok=True)

        def inline(node, seen: tuple[str, ...] = ()):
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and "#/$defs/" in ref:
                    name = ref.split("#/$defs/", 1)[1]
                    return {} if name in seen else inline(defs[name], seen + (name,))
                return {k: inline(v, seen) for k, v in node.items()}
            if isinstance(node, list):
                return [inline(v, seen) for v in node]
            return node
        for schema in local.glob("*.json"):
            if schema.name.startswith("_") or schema.name == "all.json":
                continue
            (out / schema.name).write_text(json.dumps(inline(json.loads(schema.read_text()))))
    done.write_text("ok\n")
    return target


def kube_score(binary: Path, manifests_file: Path) -> set[str]:
    """kube-score's failing checks (CRITICAL or WARNING), as 'check-id on Kind/name[ container]'."""
    result = commands.run([str(binary), "score", "--output-format", "json", str(manifests_file)], check=False,
                          timeout_s=120)
    try:
        scored = json.loads(result.stdout)
    except ValueError:
        raise SystemExit(f"bench: kube-score gave no JSON (rc {result.rc}): {result.tail(10)}")
    failing = set()
    for obj in scored:
        name = f"{obj.get('type_meta', {}).get('kind')}/{obj.get('object_meta', {}).get('name')}"
        for check in obj.get("checks") or []:
            if check.get("skipped") or check.get("grade", 10) >= 7:  # 10 OK, 7 almost OK, 5 warning, 1 critical
                continue
            targets = sorted({c.get("path") or "" for c in check.get("comments") or []}) or [""]
            for target in targets:
                failing.add(f"{check['check']['id']} on {name}{' ' + target if target else ''}")
    return failing


def kubeconform(binary: Path, manifests_file: Path, strict: bool) -> set[str]:
    argv = [str(binary), "-output", "json", "-kubernetes-version", f"{KUBE_VERSION}.0",
            "-schema-location", schema_location(), str(manifests_file)]
    if strict:
        argv.insert(1, "-strict")
    result = commands.run(argv, check=False, timeout_s=120)
    try:
        doc = json.loads(result.stdout or "{}")
    except ValueError:
        raise SystemExit(f"bench: kubeconform gave no JSON (rc {result.rc}): {result.tail(10)}")
    return {f"{r.get('kind')}/{r.get('name')}: {r.get('status')}: {(r.get('msg') or '')[:160]}"
            for r in doc.get("resources") or [] if r.get("status") in ("statusInvalid", "statusError")}


# --- our stage-3 checks -----------------------------------------------------------------------
def ours(cfg, rendered: dict[str, list[dict]]) -> set[str]:
    """Every stage-3 gate over the releases' manifests, as 'gate: problem'."""
    found = set()
    footprints = []
    for name, manifests in rendered.items():
        c = cfg.components[name]
        values = getattr(c, "values", None)
        depends = bool(getattr(c, "connects_to", None) or getattr(c, "run_env", None) or getattr(c, "uses_database", False))
        app_version = str(charts.chart_metadata(c.chart).get("appVersion", ""))
        gates = {
            "requests and limits": mp.resource_problems(manifests),
            "probes": mp.probe_problems(manifests, c.health_path, c.readiness_path, c.name),
            "security": mp.security_problems(manifests, c.uid) + mp.writable_path_problems(manifests, c.writable_paths),
            "image": mp.image_problems(manifests, cfg.image_ref(c), app_version),
            "rolling update": mp.rollout_problems(manifests),
            "secrets": mp.secret_value_problems(manifests),
            "schema": mp.schema_problems(manifests, KUBE_VERSION),
            "service selector": mp.service_selector_problems(manifests),
            "identical probes": mp.identical_probe_problems(manifests, values, has_dependencies=depends),
            "ephemeral storage": mp.ephemeral_storage_problems(manifests, values),
            "disruption budget": mp.pdb_problems(manifests, values),
        }
        for gate, problems in gates.items():
            found |= {f"{gate}: {p}" for p in problems}
        footprints.append(quota.footprint(c.release, manifests))
    for phase in quota.phases(footprints):
        found |= {f"quota fit: {o}" for o in quota.quota_fit(phase, cfg.resource_quota, "todo-quota").overflows}
    found |= {f"quota fit: {p}" for p in mp.quota_measured_problems(footprints, cfg.resource_quota, "todo-quota")}
    return found


# --- seeded defects ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Defect:
    name: str
    chart: str
    values: dict = field(default_factory=dict)  # merged into values.yaml; None deletes a key
    templates: dict = field(default_factory=dict)  # file: (old, new)
    issue: str = ""  # where it was seen


DEFECTS = [
    Defect("no resource limits", "todo-backend", {"resources": {"limits": {"cpu": None, "memory": None}}}),
    Defect("liveness probe on a wrong path", "todo-backend", {"healthCheck": {"path": "/healthz"}}),
    Defect("image tagged latest", "todo-backend", {"image": {"tag": "latest"}}),
    Defect("RollingUpdate maxUnavailable 1", "todo-backend", {"strategy": {"rollingUpdate": {"maxUnavailable": 1}}}),
    Defect("runs as root", "todo-backend", {"podSecurityContext": {"runAsUser": 0}, "securityContext": {"runAsUser": 0}}),
    Defect("surge pod overflows the quota", "todo-backend",
           {"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}}),
    Defect("secret in a ConfigMap", "todo-backend", {"config": {"DATABASE_URL": "postgresql://todo:hunter2hunter2@db/todo"}}),
    Defect("field unknown to Kubernetes 1.34", "todo-backend", templates={"deployment.yaml": (
        "      automountServiceAccountToken: false\n",
        "      automountServiceAccountToken: false\n      workloadRef: {name: todo, podGroup: api}\n")}),
    Defect("Service selector matches no pod", "todo-backend", templates={"service.yaml": (
        '    {{- include "todo-backend.selectorLabels" . | nindent 4 }}\n',
        "    app.kubernetes.io/name: todo-backend\n    app.kubernetes.io/component: apii\n")}, issue="12"),
    Defect("identical liveness and readiness", "todo-backend", {"healthCheck": {"readinessPath": "/health"}}, issue="12"),
    Defect("no ephemeral-storage", "todo-backend",
           {"resources": {"requests": {"ephemeral-storage": None}, "limits": {"ephemeral-storage": None}}}, issue="12"),
    Defect("no PodDisruptionBudget (2 replicas)", "todo-frontend", {"podDisruptionBudget": {"enabled": False}},
           issue="12"),
    Defect("PodDisruptionBudget blocks drains", "todo-frontend", {"podDisruptionBudget": {"minAvailable": 2}},
           issue="12"),
    Defect("readinessProbe removed from the template", "todo-frontend", templates={"deployment.yaml": (
        "          readinessProbe:\n", "          x-removed-readiness:\n")}, issue="12"),
    Defect("no requests at all (helm create style)", "todo-backend",
           {"resources": {"requests": None, "limits": None},
            "migrations": {"resources": {"requests": None, "limits": None}},
            "tests": {"resources": {"requests": None, "limits": None}}}, issue="12"),
]


def merge(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def seeded_chart(workdir: Path, name: str, values: dict, templates: dict) -> Path:
    chart = workdir / name
    shutil.copytree(ROOT / "charts" / name, chart)
    doc = yaml.safe_load((chart / "values.yaml").read_text())
    merge(doc, EPHEMERAL.get(name, {}))
    merge(doc, values)
    (chart / "values.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    for file, (old, new) in templates.items():
        path = chart / "templates" / file
        text = path.read_text()
        if old not in text:
            raise SystemExit(f"bench: {old!r} not in {name}/templates/{file}: update the defect")
        path.write_text(text.replace(old, new))
    return chart


def render(helm: str, chart: Path, release: str) -> tuple[list[dict], str]:
    argv = [helm, *helm_mod.template_argv(release, chart, kube_version=KUBE_VERSION), "--namespace", "todo"]
    result = commands.run(argv, check=False, timeout_s=120)
    if not result.ok:
        return [], result.tail(5)
    return helm_mod.manifest_docs(result.stdout), ""


def judge(cfg, helm: str, binaries: dict, workdir: Path, defect: Defect | None) -> dict:
    """Render every app chart (the defect's seeded), run every tool; {tool: findings}."""
    rendered, files = {}, []
    for name in ("todo-frontend", "todo-backend"):
        seeded = defect and defect.chart == name
        chart = seeded_chart(workdir / (defect.name.replace(" ", "-") if defect else "clean"), name,
                             defect.values if seeded else {}, defect.templates if seeded else {})
        manifests, error = render(helm, chart, cfg.components[name].release)
        if error:
            raise SystemExit(f"bench: {name} does not render ({defect.name if defect else 'clean'}): {error}")
        rendered[name] = manifests
        path = chart.parent / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(manifests, sort_keys=False))
        files.append(path)
    both = workdir / (defect.name.replace(" ", "-") if defect else "clean") / "all.yaml"
    both.write_text("".join(f.read_text() if f.read_text().startswith("---") else "---\n" + f.read_text() for f in files))
    return {"stage 3": ours(cfg, rendered), "kube-score": kube_score(binaries["kube-score"], both),
            "kubeconform": kubeconform(binaries["kubeconform"], both, strict=False),
            "kubeconform -strict": kubeconform(binaries["kubeconform"], both, strict=True)}


def markdown(doc: dict) -> str:
    tools = doc["tools"]
    lines = [f"# Stage 3 beside kube-score and kubeconform ({doc['measured_at']})", "",
             f"kube-score {TOOLS['kube-score'][1]}, kubeconform {TOOLS['kubeconform'][1]} (offline schemas of "
             f"kubernetes-validate, Kubernetes {KUBE_VERSION}), on the app charts rendered by helm; a defect is caught "
             "when the tool reports a failing check on the seeded render that it does not report on the clean one "
             "(kube-score: CRITICAL or WARNING; kubeconform: invalid or error).", "",
             "| defect | chart | " + " | ".join(tools) + " |", "|---|---|" + "---|" * len(tools)]
    for row in doc["defects"]:
        cells = ["caught" if row["caught"][t] else "-" for t in tools]
        lines.append(f"| {row['defect']}{' (issue ' + row['issue'] + ')' if row['issue'] else ''} | {row['chart']} | "
                     + " | ".join(cells) + " |")
    lines.append("| **caught** | | " + " | ".join(f"**{doc['totals'][t]} of {len(doc['defects'])}**" for t in tools)
                 + " |")
    lines += ["", "## What each tool already reports on the clean charts", ""]
    for t in tools:
        lines.append(f"- {t}: {len(doc['baseline'][t])}" + "".join(f"\n  - {f}" for f in doc["baseline"][t][:40]))
    lines += ["", "## What caught each defect", ""]
    for row in doc["defects"]:
        lines.append(f"- **{row['defect']}**")
        for t in tools:
            for f in row["new"][t][:4]:
                lines.append(f"  - {t}: {f[:300]}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    binaries = {name: tool(name) for name in TOOLS}
    if args.build_only:
        print(json.dumps({k: str(v) for k, v in binaries.items()}))
        return
    cfg = config.load(ROOT / "shipcheck.yaml")
    helm = tools.binary("helm")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        work = Path(tmp)
        baseline = judge(cfg, helm, binaries, work, None)
        doc = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "versions": {name: version for name, (_, version) in TOOLS.items()}, "kubernetes_version": KUBE_VERSION,
               "tools": list(baseline), "baseline": {t: sorted(f) for t, f in baseline.items()}, "defects": []}
        for defect in DEFECTS:
            found = judge(cfg, helm, binaries, work, defect)
            new = {t: sorted(found[t] - baseline[t]) for t in baseline}
            doc["defects"].append({"defect": defect.name, "chart": defect.chart, "issue": defect.issue,
                                   "caught": {t: bool(new[t]) for t in baseline}, "new": new})
            print(f"bench: {defect.name}: " + ", ".join(f"{t} {'caught' if new[t] else '-'}" for t in baseline),
                  file=sys.stderr, flush=True)
    doc["totals"] = {t: sum(row["caught"][t] for row in doc["defects"]) for t in doc["tools"]}
    doc["seconds"] = round(time.monotonic() - start, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "score-coverage.json").write_text(json.dumps(doc, indent=2) + "\n")
    (RESULTS / "score-coverage.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    os.environ.setdefault("SHIPCHECK_CACHE", str(Path.home() / ".cache" / "shipcheck"))
    main()
