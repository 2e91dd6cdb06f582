"""A command-group word pattern such as `rm -rf @system`, matched on parsed commands rather than on text.

Grammar (tokens split like a shell would):
- the first token names the command (`rm`, `{shutdown,reboot}`); `*` is any command; with a slash it is a glob
  on the command's path as typed (`/tmp/**`);
- `-x` / `--long` tokens are flags that must be present, in any order and clustering (`-rf` = `-r -f` = `-fr`),
  with per-command long-option aliases (`--recursive` is `-r` for rm);
- `>`/`>>`/`<` followed by a target: the command redirects there (`* >> ~/.ssh/authorized_keys`);
- other tokens are arguments one of the command's positional arguments must match;
- `A | B` matches a pipeline where a command matching A feeds (not necessarily directly) one matching B.
Arguments and targets are globs over normalised paths: `*` stays inside one path segment, `**` crosses them,
`{a,b}` is either, `[*]` is a literal star, `@name` is any glob of the named path set (`@system`).
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence

from cloudsoc.bastion.shell import SimpleCommand
from cloudsoc.errors import BastionError

# In a line's set of command names: some command of the line redirects (lets `* > target` patterns skip early).
REDIRECTS = "\0>"
_HOME = re.compile(r"^(?:\$HOME|\$\{HOME\}|~[A-Za-z0-9_.-]*)(?=/|$)")


def glob_regex(glob: str) -> str:
    """A segment-aware glob as a regular expression (no anchors)."""
    out: list[str] = []
    i = 0
    depth = 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            if glob.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 2)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
                continue
        elif c == "{":
            out.append("(?:")
            depth += 1
        elif c == "}" and depth:
            out.append(")")
            depth -= 1
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise BastionError(f"unbalanced braces in command pattern glob {glob!r}")
    return "".join(out)


def normalise_path(arg: str) -> str:
    """`/etc/` → `/etc`, `//usr/./bin` → `/usr/bin`, `$HOME/x` → `~/x`; other words are left alone."""
    arg = _HOME.sub("~", arg, count=1)
    if arg.startswith("/") or arg.startswith("~/"):
        had_star = arg.endswith("/*")
        norm = posixpath.normpath(arg)
        if norm.startswith("//"):
            norm = "/" + norm.lstrip("/")
        if had_star and not norm.endswith("*"):
            norm += "/*"
        return norm
    return arg


class _Stage:
    def __init__(
        self,
        tokens: list[str],
        path_sets: Mapping[str, Sequence[str]],
        aliases: Mapping[str, Mapping[str, str]],
        source: str,
    ) -> None:
        if not tokens:
            raise BastionError(f"empty stage in command pattern {source!r}")
        self.any_name = tokens[0] == "*"
        # A first token with a slash is a path glob on argv[0] as typed (`/tmp/**`), not a base name.
        self.path: re.Pattern[str] | None = self._arg(tokens[0], path_sets, source) if "/" in tokens[0] else None
        names = expand_braces(tokens[0])
        # Literal names let a check skip the pattern when no command of the line has one of them.
        globbed = self.path is not None or any(ch in n for n in names for ch in "*?[")
        self.names: frozenset[str] | None = None if globbed else frozenset(names)
        self.name = re.compile(glob_regex(tokens[0]).replace("[^/]*", ".*"))
        self.flag_tokens: list[str] = []
        self.args: list[re.Pattern[str]] = []
        self.redirects: list[tuple[str, re.Pattern[str]]] = []
        self.aliases = aliases
        i = 1
        while i < len(tokens):
            token = tokens[i]
            if token in (">", ">>", "<"):
                if i + 1 >= len(tokens):
                    raise BastionError(f"redirect without target in command pattern {source!r}")
                self.redirects.append((token, self._arg(tokens[i + 1], path_sets, source)))
                i += 2
                continue
            if token.startswith("-") and len(token) > 1:
                self.flag_tokens.append(token)
            else:
                self.args.append(self._arg(token, path_sets, source))
            i += 1
        if self.any_name and self.redirects:
            self.names = frozenset({REDIRECTS})

    @staticmethod
    def _arg(token: str, path_sets: Mapping[str, Sequence[str]], source: str) -> re.Pattern[str]:
        if token.startswith("@"):
            globs = path_sets.get(token[1:])
            if globs is None:
                raise BastionError(f"unknown path set {token!r} in command pattern {source!r}")
            return re.compile("|".join(f"(?:{glob_regex(normalise_path(g))})" for g in globs))
        return re.compile(glob_regex(normalise_path(token)))

    def matches(self, cmd: SimpleCommand) -> bool:
        if self.path is not None:
            if not cmd.argv or not self.path.fullmatch(normalise_path(cmd.argv[0])):
                return False
        elif not cmd.name:
            if not self.any_name:
                return False
        elif not self.name.fullmatch(cmd.name):
            return False
        if self.flag_tokens or self.args:
            raw, flags, positionals = _split_args(cmd, self.aliases.get(cmd.name, {}))
            for token in self.flag_tokens:
                if token in raw:
                    continue
                want = _flag_names(token, self.aliases.get(cmd.name, {}))
                if not want <= flags:
                    return False
            norm = [normalise_path(p) for p in positionals]
            for arg in self.args:
                if not any(arg.fullmatch(p) for p in norm):
                    return False
        for op, target in self.redirects:
            if not any(
                _redirect_kind(cmd_op) == op and target.fullmatch(normalise_path(t)) for cmd_op, t in cmd.redirects
            ):
                return False
        return True


def _redirect_kind(op: str) -> str:
    if ">>" in op:
        return ">>"
    if ">" in op:
        return ">"
    return "<"


def _flag_names(token: str, aliases: Mapping[str, str]) -> set[str]:
    if token.startswith("--"):
        name = token.split("=", 1)[0]
        return {aliases.get(name, name)}
    return {aliases.get("-" + c, c) for c in token[1:]}


def _split_args(cmd: SimpleCommand, aliases: Mapping[str, str]) -> tuple[set[str], set[str], list[str]]:
    raw: set[str] = set()
    flags: set[str] = set()
    positionals: list[str] = []
    options_done = False
    for arg in cmd.argv[1:]:
        if options_done or arg == "-" or not arg.startswith("-") or len(arg) < 2:
            positionals.append(arg)
        elif arg == "--":
            options_done = True
        else:
            raw.add(arg)
            raw.add(arg.split("=", 1)[0])
            flags |= _flag_names(arg, aliases)
    return raw, flags, positionals


class WordPattern:
    """One `words:` entry of a command group, compiled."""

    def __init__(
        self,
        text: str,
        path_sets: Mapping[str, Sequence[str]] | None = None,
        aliases: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.text = text
        try:
            tokens = shlex.split(text, posix=False)
        except ValueError as exc:
            raise BastionError(f"command pattern {text!r} cannot be split: {exc}") from exc
        stages: list[list[str]] = [[]]
        for token in tokens:
            if token == "|":
                stages.append([])
            else:
                stages[-1].append(token.strip("'\"") if len(token) > 1 and token[0] in "'\"" else token)
        self.stages = [_Stage(s, path_sets or {}, aliases or {}, text) for s in stages]

    def match(self, pipelines: Sequence[Sequence[SimpleCommand]]) -> SimpleCommand | None:
        """The command that completes the match, or None."""
        for pipeline in pipelines:
            stage = 0
            for cmd in pipeline:
                if self.stages[stage].matches(cmd):
                    stage += 1
                    if stage == len(self.stages):
                        return cmd
        return None


def expand_braces(text: str) -> list[str]:
    """`{a,b}c` → [ac, bc] (nesting allowed)."""
    start = text.find("{")
    if start < 0:
        return [text]
    depth = 0
    for end in range(start, len(text)):
        if text[end] == "{":
            depth += 1
        elif text[end] == "}":
            depth -= 1
            if depth == 0:
                break
    else:
        return [text]
    options: list[str] = []
    depth = 0
    current = ""
    for c in text[start + 1 : end]:
        if c == "," and depth == 0:
            options.append(current)
            current = ""
            continue
        depth += c == "{"
        depth -= c == "}"
        current += c
    options.append(current)
    return [x for opt in options for x in expand_braces(text[:start] + opt + text[end + 1 :])]
