"""``cloudsoc rules``: list the loaded rules, lint them, run their own test events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from cloudsoc.cli.detect import RulesOption, _detection_config
from cloudsoc.cli.state import err, fail, out
from cloudsoc.detect.engine import RuleIndex
from cloudsoc.detect.loader import LoadedRules, load_rules
from cloudsoc.detect.rule import Rule
from cloudsoc.errors import CloudsocError

app = typer.Typer(help="Detection rules: list, lint, test.", no_args_is_help=True)
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (detection settings).")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON lines for scripts.")]
BuiltinOption = Annotated[bool, typer.Option(help="Include the built-in cloud rule pack.")]


def _load(config: Path | None, rules: list[Path] | None, builtin: bool) -> LoadedRules:
    return load_rules(_detection_config(config), rules, builtin=builtin)


def rule_json(rule: Rule) -> dict[str, object]:
    return {
        "id": rule.id,
        "name": rule.title,
        "name_zh": rule.title_zh,
        "kind": rule.kind,
        "severity": rule.severity.value,
        "tags": list(rule.tags),
        "enabled": rule.enabled,
        "stateful": rule.stateful,
        "datasets": sorted(rule.datasets) if rule.datasets is not None else None,
        "actions": sorted(rule.actions) if rule.actions is not None else None,
        "source": rule.source,
        "description": rule.description,
        "description_zh": rule.description_zh,
        "response": rule.response,
        "response_zh": rule.response_zh,
    }


@app.command("list")
def list_(
    rules: RulesOption = None, builtin: BuiltinOption = True, json_out: JsonOption = False, config: ConfigOption = None
) -> None:
    """Every loaded rule: id, kind, severity, what it watches (datasets and actions), where it comes from."""
    try:
        loaded = _load(config, rules, builtin)
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        for rule in loaded.rules:
            typer.echo(orjson.dumps(rule_json(rule)).decode())
        return
    table = Table(show_edge=False, header_style="bold")
    for col in ("id", "kind", "severity", "title", "watches", "enabled"):
        table.add_column(col, overflow="fold")
    for rule in loaded.rules:
        actions = "any action" if rule.actions is None else ", ".join(sorted(rule.actions)[:4])
        if rule.actions is not None and len(rule.actions) > 4:
            actions += f" (+{len(rule.actions) - 4})"
        datasets = "any" if rule.datasets is None else ", ".join(sorted(rule.datasets))
        table.add_row(
            escape(rule.id),
            rule.kind,
            rule.severity.value,
            escape(rule.title),
            escape(f"{datasets}: {actions}"),
            "yes" if rule.enabled else "[dim]no[/]",
        )
    out.print(table)
    err.print(f"{len(loaded.rules)} rules loaded, {len(loaded.skipped)} skipped (`cloudsoc rules lint` says why)")


@app.command("lint")
def lint(
    rules: RulesOption = None, builtin: BuiltinOption = True, json_out: JsonOption = False, config: ConfigOption = None
) -> None:
    """Check rules: files that do not load, duplicate ids, missing metadata, rules every event must meet."""
    problems: list[dict[str, str]] = []
    try:
        loaded = _load(config, rules, builtin)
    except CloudsocError as exc:
        raise fail(exc) from None
    for s in loaded.skipped:
        problems.append({"level": "error", "rule": s.title, "source": s.source, "problem": s.reason})
    try:
        RuleIndex(loaded.rules)
    except CloudsocError as exc:
        problems.append({"level": "error", "rule": "", "source": "", "problem": str(exc)})
    for rule in loaded.rules:
        where = {"rule": rule.id, "source": rule.source}
        if not rule.tags:
            problems.append({"level": "warning", **where, "problem": "no tags (ATT&CK technique, e.g. attack.t1078)"})
        if not rule.description:
            problems.append({"level": "warning", **where, "problem": "no description: say why it matters"})
        if rule.actions is None and rule.datasets is None:
            problems.append(
                {"level": "info", **where, "problem": "pins no event.action or dataset: every event is tested"}
            )
    errors = sum(p["level"] == "error" for p in problems)
    if json_out:
        for p in problems:
            typer.echo(orjson.dumps(p).decode())
    else:
        colour = {"error": "red", "warning": "yellow", "info": "dim"}
        for p in problems:
            err.print(
                f"[{colour[p['level']]}]{p['level']}[/] "
                f"{escape(': '.join(x for x in (p['source'], p['rule']) if x))}: {escape(p['problem'])}"
            )
        err.print(f"{len(loaded.rules)} rules, {errors} error(s), {len(problems) - errors} other finding(s)")
    if errors:
        raise typer.Exit(1)


def _default_data_root() -> Path | None:
    """``../shared/data`` beside a source checkout, where the real samples that test cases cite live."""
    import cloudsoc

    here = Path(cloudsoc.__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


@app.command("test")
def test(
    rules: RulesOption = None,
    builtin: BuiltinOption = True,
    only: Annotated[str | None, typer.Option("--rule", help="Only the cases of rules matching this glob.")] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Where cited real samples live (default: ../shared/data beside the checkout)."),
    ] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Run every rule's own test events (`<rule>.tests.yml` beside the rule): must-fire and must-stay-quiet cases."""
    import fnmatch

    from cloudsoc.detect.cases import collect_cases, run_cases

    try:
        loaded = _load(config, rules, builtin)
        chosen = [r for r in loaded.rules if only is None or fnmatch.fnmatchcase(r.id, only)]
        cases = [c for c in collect_cases(chosen) if only is None or fnmatch.fnmatchcase(c.rule, only)]
        results = run_cases(chosen, cases, data_root=data or _default_data_root())
    except CloudsocError as exc:
        raise fail(exc) from None
    failed = [r for r in results if r.status == "fail"]
    skipped = [r for r in results if r.status == "skip"]
    if json_out:
        for r in results:
            typer.echo(
                orjson.dumps(
                    {
                        "rule": r.case.rule,
                        "case": r.case.name,
                        "expect": r.case.expect,
                        "status": r.status,
                        "reason": r.reason,
                        "alerts": len(r.alerts),
                    }
                ).decode()
            )
    else:
        for r in failed:
            err.print(f"[red]FAIL[/] {escape(r.case.rule)}: {escape(r.case.name)} — {escape(r.reason)}")
        for r in skipped:
            err.print(f"[yellow]skip[/] {escape(r.case.rule)}: {escape(r.case.name)} — {escape(r.reason)}")
        covered = len({r.case.rule for r in results})
        without = [r.id for r in chosen if r.id not in {c.rule for c in cases}]
        err.print(
            f"{len(results) - len(failed) - len(skipped)} passed, {len(failed)} failed, {len(skipped)} skipped; "
            f"{covered} rules have test cases, {len(without)} have none"
        )
    if failed:
        raise typer.Exit(1)
