"""A command line as the filter sees it: the simple commands it would run, in pipelines, with quoting resolved.

bashlex is a real bash grammar, so `ls;rm -rf /`, `"r''m" -rf /`, `$(curl x | sh)` and `bash -c '...'` come apart
as bash would take them. It refuses some valid bash (`[[ ]]`, `$(( ))`, a heredoc whose body is not typed yet);
then a conservative tokeniser splits on every operator it sees. Neither path ever raises: a line the filter cannot
read still gets its regular expressions checked, and an exception here would let the line through unfiltered.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from typing import Any

import bashlex
import msgspec

# Wrappers that run their argument vector: the command after them is what runs. Value: options taking a value.
_PREFIXES: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-C", "-h", "-p", "-r", "-t", "-U", "-D", "-R", "-T"}),
    "doas": frozenset({"-u", "-C"}),
    "env": frozenset({"-u", "-C", "-S", "--unset", "--chdir"}),
    "nohup": frozenset(),
    "time": frozenset({"-f", "-o"}),
    "exec": frozenset({"-a"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "busybox": frozenset(),
    "nice": frozenset({"-n"}),
    "ionice": frozenset({"-c", "-n", "-p"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "setsid": frozenset(),
    "unbuffer": frozenset(),
    "xargs": frozenset({"-I", "-i", "-n", "-P", "-L", "-l", "-d", "-E", "-e", "-s", "-a"}),
    "timeout": frozenset({"-s", "-k"}),
    "chroot": frozenset(),
}
# Prefixes whose first positional is theirs, not the command's (a duration, a new root).
_PREFIX_ARG = frozenset({"timeout", "chroot"})
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox"})
_MAX_DEPTH = 4
# bashlex is pure Python: a pasted script of many kilobytes would stall the Enter key, so long lines are tokenised.
_MAX_BASHLEX = 4096
# A line of plain words (no quotes, expansions or operators) splits on blanks exactly as bash would split it.
_PLAIN = re.compile(r"[\w./=:,+@%~-]+(?:[ \t]+[\w./=:,+@%~-]+)*[ \t]*")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_FALLBACK_SPLIT = re.compile(r"[;&|()<>]+|[^\s;&|()<>]+")
_SEPARATORS = frozenset({";", "&&", "||", "&", "(", ")", "\n", ";;", "|&"})
_REDIRECT = re.compile(r"^\d*(>>|>\||>&|&>>|&>|>|<<<|<<-|<<|<>|<&|<)$")


class SimpleCommand(msgspec.Struct, frozen=True):
    """One command that would run: ``name`` is argv[0]'s base name after wrappers (sudo, env, ...) are dropped."""

    name: str
    argv: tuple[str, ...]
    redirects: tuple[tuple[str, str], ...] = ()  # (operator, target) with ">", ">>", "<", ...
    assignments: tuple[str, ...] = ()


class ParsedLine(msgspec.Struct, frozen=True):
    """Pipelines of simple commands (a lone command is a pipeline of one) and the strings run by `sh -c`/`eval`."""

    pipelines: tuple[tuple[SimpleCommand, ...], ...]
    texts: tuple[str, ...]  # the line itself and every string a shell would parse again
    parser: str  # "plain" (words only), "bashlex", "fallback" or "empty"


class ShellParser:
    """Turns a command line into :class:`ParsedLine`; never raises."""

    def parse(self, line: str) -> ParsedLine:
        pipelines: list[tuple[SimpleCommand, ...]] = []
        texts: list[str] = [line]
        parser = self._parse_into(line, pipelines, texts, 0)
        return ParsedLine(pipelines=tuple(pipelines), texts=tuple(texts), parser=parser)

    def _parse_into(self, line: str, out: list[tuple[SimpleCommand, ...]], texts: list[str], depth: int) -> str:
        if not line.strip():
            return "empty"
        if _PLAIN.fullmatch(line.strip()):
            pipeline: list[SimpleCommand] = []
            self.command(line.split(), [], (), pipeline, out, texts, depth)
            if pipeline:
                out.append(tuple(pipeline))
            return "plain"
        if len(line) <= _MAX_BASHLEX:
            try:
                trees = bashlex.parse(line)
            except Exception:  # bashlex raises ParsingError, NotImplementedError, IndexError, ...
                trees = None
            if trees is not None:
                try:
                    walker = _Walker(self, out, texts, depth)
                    for tree in trees:
                        walker.pipeline(tree)
                    return "bashlex"
                except Exception:  # an unexpected tree shape must not let the line through
                    pass
        self._fallback(line, out, texts, depth)
        return "fallback"

    def _fallback(self, line: str, out: list[tuple[SimpleCommand, ...]], texts: list[str], depth: int) -> None:
        # Backticks and $( open a nested command: as separators they at least put it on its own.
        cleaned = line.replace("`", " ; ").replace("$(", " ; ( ")
        try:
            lexer = shlex.shlex(cleaned, posix=True, punctuation_chars=";&|()<>")
            lexer.whitespace_split = True
            lexer.commenters = ""
            tokens = list(lexer)
        except ValueError:  # an unclosed quote: take the words as they stand
            tokens = _FALLBACK_SPLIT.findall(cleaned)
        pipeline: list[SimpleCommand] = []
        words: list[str] = []
        redirects: list[tuple[str, str]] = []
        pending: str | None = None

        def flush_command() -> None:
            nonlocal words, redirects
            if words:
                self.command(words, redirects, (), pipeline, out, texts, depth)
            words, redirects = [], []

        for token in tokens:
            if pending is not None:
                redirects.append((pending.lstrip("0123456789"), token))
                pending = None
            elif token == "|":
                flush_command()
            elif token in _SEPARATORS or token.strip("&;|()") == "":
                flush_command()
                if pipeline:
                    out.append(tuple(pipeline))
                    pipeline.clear()
            elif _REDIRECT.match(token):
                pending = token
            elif words and words[-1].isdigit() and _REDIRECT.match(words[-1] + token):
                pending = token
                words.pop()
            else:
                words.append(token)
        flush_command()
        if pipeline:
            out.append(tuple(pipeline))

    def command(
        self,
        words: list[str],
        redirects: list[tuple[str, str]],
        assignments: tuple[str, ...],
        pipeline: list[SimpleCommand],
        out: list[tuple[SimpleCommand, ...]],
        texts: list[str],
        depth: int,
    ) -> None:
        """Append the command ``words`` runs to ``pipeline``, unwrapping prefixes and recursing into `sh -c`."""
        argv = list(words)
        while argv and _ASSIGN.match(argv[0]):
            assignments = (*assignments, argv.pop(0))
        argv = _unwrap(argv)
        if not argv:
            if assignments or redirects:
                pipeline.append(SimpleCommand(name="", argv=(), redirects=tuple(redirects), assignments=assignments))
            return
        name = command_name(argv[0])
        pipeline.append(SimpleCommand(name=name, argv=tuple(argv), redirects=tuple(redirects), assignments=assignments))
        if depth >= _MAX_DEPTH:
            return
        nested = _nested_script(name, argv)
        if nested is not None:
            texts.append(nested)
            self._parse_into(nested, out, texts, depth + 1)
        if name == "find":
            for sub in _find_exec(argv):
                inner: list[SimpleCommand] = []
                self.command(sub, [], (), inner, out, texts, depth + 1)
                if inner:
                    out.append(tuple(inner))


def command_name(word: str) -> str:
    """`/bin/rm`, `\\rm` and `rm` are all rm."""
    return posixpath.basename(word.lstrip("\\")) or word


def _unwrap(argv: list[str]) -> list[str]:
    while argv:
        name = command_name(argv[0])
        if name not in _PREFIXES:
            return argv
        if name == "command" and any(a in ("-v", "-V") for a in argv[1:2]):
            return []  # `command -v rm` looks rm up; it does not run it
        valued = _PREFIXES[name]
        i = 1
        while i < len(argv):
            arg = argv[i]
            if arg == "--":
                i += 1
                break
            if name == "env" and _ASSIGN.match(arg):
                i += 1
            elif arg.startswith("-") and len(arg) > 1:
                i += 2 if arg in valued else 1
            else:
                break
        if name in _PREFIX_ARG and i < len(argv):
            i += 1
        if i >= len(argv):
            # `sudo -i`, a bare `busybox`: the wrapper itself is what runs.
            return argv
        argv = argv[i:]
    return argv


def _nested_script(name: str, argv: list[str]) -> str | None:
    """The string a command hands to a shell again: `bash -c STR`, `su -c STR`, `eval A B`, `watch STR`."""
    if name == "eval" or name == "watch":
        args = [a for a in argv[1:] if not a.startswith("-")] if name == "watch" else argv[1:]
        return " ".join(args) or None
    if name in _SHELLS or name == "su":
        for i, arg in enumerate(argv[1:], start=1):
            if arg == "--command" or (arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]):
                return argv[i + 1] if i + 1 < len(argv) else None
            if arg.startswith("--command="):
                return arg.split("=", 1)[1]
    return None


def _find_exec(argv: list[str]) -> list[list[str]]:
    subs: list[list[str]] = []
    i = 0
    while i < len(argv):
        if argv[i] in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            while j < len(argv) and argv[j] not in (";", "\\;", "+"):
                j += 1
            if j > i + 1:
                subs.append(list(argv[i + 1 : j]))
            i = j
        i += 1
    return subs


class _Walker:
    """Walks bashlex trees: pipelines stay together, every other construct is visited for the commands inside."""

    def __init__(self, parser: ShellParser, out: list[tuple[SimpleCommand, ...]], texts: list[str], depth: int):
        self.parser = parser
        self.out = out
        self.texts = texts
        self.depth = depth

    def pipeline(self, node: Any) -> None:
        kind = node.kind
        if kind == "pipeline":
            commands: list[SimpleCommand] = []
            for part in node.parts:
                if part.kind == "command":
                    self.simple(part, commands)
                elif part.kind != "pipe":
                    self.pipeline(part)
            if commands:
                self.out.append(tuple(commands))
        elif kind == "command":
            commands = []
            self.simple(node, commands)
            if commands:
                self.out.append(tuple(commands))
        else:
            for child in _children(node):
                self.pipeline(child)

    def simple(self, node: Any, pipeline: list[SimpleCommand]) -> None:
        words: list[str] = []
        redirects: list[tuple[str, str]] = []
        assignments: list[str] = []
        substituted: list[tuple[SimpleCommand, ...]] = []
        for part in node.parts:
            if part.kind == "word":
                words.append(part.word)
                substituted.extend(self.substitutions(part))
            elif part.kind == "assignment":
                assignments.append(part.word)
                substituted.extend(self.substitutions(part))
            elif part.kind == "redirect":
                target = part.output
                text = target.word if hasattr(target, "word") else str(target)
                redirects.append((str(part.type), text))
                if hasattr(target, "parts"):
                    substituted.extend(self.substitutions(target))
            elif part.kind not in ("reservedword", "operator"):
                self.pipeline(part)
        before = len(pipeline)
        self.parser.command(words, redirects, tuple(assignments), pipeline, self.out, self.texts, self.depth)
        # `sh -c "$(curl URL)"`, `bash <(wget -O- URL)`: the inner output feeds the outer command, as a pipe would.
        if len(pipeline) > before:
            for inner in substituted:
                self.out.append((*inner, pipeline[-1]))

    def substitutions(self, word: Any) -> list[tuple[SimpleCommand, ...]]:
        found: list[tuple[SimpleCommand, ...]] = []
        for part in getattr(word, "parts", None) or ():
            if part.kind in ("commandsubstitution", "processsubstitution"):
                start = len(self.out)
                self.pipeline(part.command)
                found.extend(self.out[start:])
            else:
                found.extend(self.substitutions(part))
        return found


def _children(node: Any) -> list[Any]:
    children: list[Any] = []
    for attr in ("parts", "list"):
        value = getattr(node, attr, None)
        if isinstance(value, list):
            children.extend(value)
    for attr in ("command", "output"):
        value = getattr(node, attr, None)
        if value is not None and hasattr(value, "kind"):
            children.append(value)
    return [c for c in children if hasattr(c, "kind") and c.kind not in ("reservedword", "operator", "pipe")]
