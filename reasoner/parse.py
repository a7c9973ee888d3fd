"""Stage 1: rule files → ``Program``.

The grammar is ``grammar/mln.lark`` (shipped inside the package as
``reasoner/grammar/mln.lark``). The lark tree never leaves this module: a
``Transformer`` turns it into the frozen nodes of ``reasoner.syntax``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedInput, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

from reasoner.dialects import (
    WeightExpressionError,
    bare_name,
    formula_terms,
    prac_formula,
    rockit_formula,
    weight_expression,
)
from reasoner.errors import Diagnostic, LimitError, Option, RuleError, RuleFileError, UsageError
from reasoner.limits import Limits
from reasoner.syntax import (
    And,
    Atom,
    Binding,
    Column,
    Comparison,
    Condition,
    Constant,
    DerivedRule,
    Equivalent,
    Formula,
    Implies,
    Literal,
    Not,
    Or,
    PredicateDeclaration,
    Program,
    Quantified,
    Span,
    Statement,
    Term,
    TypeDeclaration,
    Variable,
    WeightedFormula,
)

__all__ = ["grammar_path", "parse_program", "parse_text", "rule_files", "unquote"]

_TERMINAL_NAMES = {
    "PREDICATE": "a predicate",
    "NAME": "a variable or type name",
    "CONSTANT_NAME": "a constant",
    "INTEGER": "an integer",
    "FLOAT": "a number",
    "STRING": "a quoted string",
    "WEIGHT": "a weight",
    "WEIGHT_VARIABLE": "a weight taken from a variable ('w:')",
    "WEIGHT_EXPRESSION": "a weight such as 'log(0.9)'",
    "PRAC_VARIABLE": "a variable ('?x')",
    "DIRECTIVE": "a directive ('#fixweight')",
    "PLUS": "'+'",
    "QUESTION": "'?'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "PERIOD": "'.'",
    "NOT": "'!'",
    "AND": "'^'",
    "OR": "'v'",
    "IMPLIES": "'=>'",
    "EQUIV": "'<=>'",
    "COMPARATOR": "a comparison (= != < <= > >=)",
    "EQUAL": "'='",
    "_EQUAL": "'='",
    "STAR": "'*'",
    "QUANTIFIER": "EXIST or FORALL",
    "_NL": "end of line",
    "$END": "end of file",
    "ROW": "'@row'",
    "BIND": "'bind'",
    "FROM": "'from'",
    "WHERE": "'where'",
    "AND_WORD": "'and'",
    "IN": "'in'",
    "WITH_WORD": "'with'",
    "PROBABILITY_WORD": "'probability'",
    "ELLIPSIS": "'...'",
    "__ANON_0": "':-'",
}


def grammar_path() -> Path:
    """The grammar file: inside the installed package, else the source checkout's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammar" / "mln.lark", here.parent / "grammar" / "mln.lark"):
        if candidate.is_file():
            return candidate
    raise UsageError("the grammar file mln.lark is missing from the installation")


_DEFAULT_LIMITS = Limits()
_LIMITS: ContextVar[Limits] = ContextVar("limits")  # of the text being parsed


@functools.cache
def _parser() -> Lark:
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        postlex=_JoinBracketedLines(),
        maybe_placeholders=False,
    )


class _JoinBracketedLines:
    """Drops newlines inside parentheses and braces, so a statement may span lines.

    It also enforces the statement limits before the parser builds anything: at most
    ``max_statement_tokens`` tokens per statement and at most ``max_nesting`` levels of
    nesting, counting parentheses, runs of '!', and the quantifiers, '=>' and '<=>' that
    nest what follows them. Deeper formulas would overflow the stack of every later stage.
    """

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return self._limited(_parenthesise_quantified_operands(stream))

    def _limited(self, stream: Iterator[Token]) -> Iterator[Token]:
        limits = _LIMITS.get(_DEFAULT_LIMITS)
        max_tokens, max_nesting = limits.max_statement_tokens, limits.max_nesting
        levels: list[int] = [0]  # per open parenthesis: operators nesting what follows
        negations = tokens = 0
        for token in stream:
            kind = token.type
            tokens += 1
            if tokens > max_tokens:
                raise _StatementTooLong(token)
            if kind in ("LPAR", "LBRACE"):
                levels.append(negations)  # '!(' is two levels: the negation wraps the parenthesis
            elif kind in ("RPAR", "RBRACE"):
                if len(levels) > 1:
                    levels.pop()
            elif kind in ("QUANTIFIER", "IMPLIES", "EQUIV"):
                levels[-1] += 1
            elif kind == "_NL":
                if len(levels) > 1:
                    continue
                levels, tokens = [0], 0
            negations = negations + 1 if kind == "NOT" else 0
            if len(levels) - 1 + sum(levels) + negations > max_nesting:
                raise _NestingTooDeep(token)
            yield token


_OPERATORS_BEFORE_OPERAND = frozenset({"OR", "AND", "NOT", "EQUIV"})
_QUANTIFIED_NAMES = frozenset({"NAME", "PRAC_VARIABLE", "COMMA"})
_QUANTIFIER_WORD = re.compile(r"EXISTS?|FORALL")  # lexed as a constant where a quantifier cannot stand


def _parenthesise_quantified_operands(stream: Iterator[Token]) -> Iterator[Token]:
    """pracmln's 'P(x) v EXIST y (Q(x, y))': a quantifier after 'v', '^', '!' or '<=>' whose
    body is in parentheses applies to that body only, so it is read as '(EXIST y (Q(x, y)))'.
    (At the start of a formula a quantifier reaches as far right as possible, as in Alchemy.)
    Other tokens pass unchanged, so that other input keeps its error messages."""
    previous = ""
    pending: list[Token] = []  # a quantifier after an operator, and its variables, as lexed
    closing: list[int] = []  # depths at which a parenthesis added here closes
    depth = 0
    for token in stream:
        if pending:
            expecting_name = pending[-1].type == "COMMA" or len(pending) == 1
            if (expecting_name and token.type in ("NAME", "PRAC_VARIABLE", "PREDICATE")) or (
                not expecting_name and token.type == "COMMA"
            ):
                pending.append(token)
                continue
            if token.type == "LPAR" and not expecting_name:
                yield Token.new_borrow_pos("LPAR", "(", pending[0])
                yield Token.new_borrow_pos("QUANTIFIER", str(pending[0]), pending[0])
                for name in pending[1:]:
                    kind = "NAME" if name.type == "PREDICATE" else name.type
                    yield Token.new_borrow_pos(kind, str(name).strip(), name)
                closing.append(depth)
            else:
                yield from pending
            pending = []
        if previous in _OPERATORS_BEFORE_OPERAND and (
            token.type == "QUANTIFIER" or (token.type == "CONSTANT_NAME" and _QUANTIFIER_WORD.fullmatch(token))
        ):
            pending = [token]
            previous = token.type
            continue
        if token.type in ("LPAR", "LBRACE"):
            depth += 1
        elif token.type in ("RPAR", "RBRACE"):
            depth -= 1
        yield token
        if token.type == "RPAR" and closing and depth == closing[-1]:
            closing.pop()
            yield Token.new_borrow_pos("RPAR", ")", token)
        previous = token.type
    yield from pending


class _NestingTooDeep(Exception):
    def __init__(self, token: Token) -> None:
        self.token = token


class _StatementTooLong(Exception):
    def __init__(self, token: Token) -> None:
        self.token = token


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories to their ``*.mln`` files (sorted); keep files as given."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.glob("*.mln"))
            if not found:
                raise RuleFileError(f"{path}: directory has no *.mln rule files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise RuleFileError(f"{path}: no such rule file or directory")
    return files


def parse_program(paths: Iterable[str | Path], *, limits: Limits = Limits()) -> Program:  # noqa: B008 (frozen)
    """Parse rule files (directories mean their ``*.mln`` files) into one program."""
    statements: list[Statement] = []
    names: list[str] = []
    diagnostics: list[Diagnostic] = []
    for path in rule_files(paths):
        try:
            size = path.stat().st_size
            if size > limits.max_rule_bytes:
                raise LimitError(
                    f"{path}: rule file is {size:,} bytes; the limit is {limits.max_rule_bytes:,} (",
                    Option("max_rule_bytes", "N"),
                    "): put facts in evidence files or tables (*.db, *.parquet, *.csv), not in rule files",
                )
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise RuleFileError(f"{path}: not UTF-8 text (byte {error.start})") from None
        except OSError as error:
            raise RuleFileError(f"{path}: cannot read: {error.strerror}") from None
        try:
            statements.extend(parse_text(text, str(path), limits=limits).statements)
        except RuleError as error:
            diagnostics.extend(error.diagnostics)
        names.append(str(path))
    if diagnostics:
        raise RuleError(diagnostics)
    return Program(tuple(statements), tuple(names))


def parse_text(text: str, file: str = "<rules>", *, limits: Limits = Limits()) -> Program:  # noqa: B008 (frozen)
    """Parse the text of one rule file."""
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if len(line) > limits.max_line_length:
            span = Span(file, number, 1, number, 2, line[:200])
            raise RuleError(
                [
                    Diagnostic(
                        span,
                        f"line is {len(line):,} characters long; the limit is {limits.max_line_length:,}",
                        notes=("split the statement over several lines inside parentheses",),
                    )
                ]
            )
    if len(text) > limits.max_rule_bytes:
        span = Span(file, 1, 1, 1, 2, lines[0][:200] if lines else "")
        raise RuleError(
            [
                Diagnostic(
                    span,
                    f"rule file is {len(text):,} characters long; the limit is {limits.max_rule_bytes:,}",
                    notes=("put facts in evidence files or tables (*.db, *.parquet, *.csv), not in rule files",),
                )
            ]
        )
    source = text if text.endswith("\n") else text + "\n"
    token = _LIMITS.set(limits)
    try:
        tree = _parser().parse(source)
        statements = _ToSyntax(file, lines, source).transform(tree)
    except UnexpectedInput as error:
        raise RuleError([_syntax_diagnostic(error, file, lines)]) from None
    except _NestingTooDeep as error:
        span = _token_span(error.token, file, lines)
        raise RuleError(
            [
                Diagnostic(
                    span,
                    f"formula nested deeper than {limits.max_nesting} levels",
                    notes=(
                        "parentheses, runs of '!', quantifiers, '=>' and '<=>' each add a level",
                        "split the formula into several, or name a part with a derived rule",
                    ),
                )
            ]
        ) from None
    except _StatementTooLong as error:
        span = _token_span(error.token, file, lines)
        raise RuleError(
            [
                Diagnostic(
                    span,
                    f"statement has more than {limits.max_statement_tokens:,} tokens",
                    notes=("split it into several formulas; put facts in evidence files or tables",),
                )
            ]
        ) from None
    except VisitError as error:
        if isinstance(error.orig_exc, RuleError):
            raise error.orig_exc from None
        if isinstance(error.orig_exc, RecursionError):
            raise RuleError([_too_deep(file, lines)]) from None
        raise
    except RecursionError:
        raise RuleError([_too_deep(file, lines)]) from None
    finally:
        _LIMITS.reset(token)
    return Program(tuple(statements), (file,))


def _too_deep(file: str, lines: list[str]) -> Diagnostic:
    """Stack overflow despite the nesting limit: blame the line with the most operators."""
    counts = [len(re.findall(r"[(!]|=>|EXISTS?|FORALL", line)) for line in lines] or [0]
    number = counts.index(max(counts)) + 1
    span = Span(file, number, 1, number, 2, _line(lines, number))
    return Diagnostic(span, "formula nested too deeply to parse", notes=("split it into several formulas",))


def _syntax_diagnostic(error: UnexpectedInput, file: str, lines: list[str]) -> Diagnostic:
    line = max(1, getattr(error, "line", 1) or 1)
    column = max(1, getattr(error, "column", 1) or 1)
    line_text = lines[line - 1] if line - 1 < len(lines) else ""
    width = 1
    notes: list[str] = []
    if isinstance(error, UnexpectedToken):
        token = error.token
        if token.type == "$END":
            line, column = len(lines) or 1, len(lines[-1]) + 1 if lines else 1
            line_text = lines[-1] if lines else ""
            found = "end of file"
        elif token.type == "_NL":
            found = "end of line"
            column = len(line_text) + 1
        else:
            found = f"'{token}'"
            width = max(1, len(str(token)))
        expected = _expected(error.expected)
        message = f"unexpected {found}; expected {expected}"
        if token.type == "$END" and _unclosed("\n".join(lines)):
            notes.append("a '(' or '{' is never closed; a statement continues over lines until it is")
        if token.type in ("_NL", "$END") and "PERIOD" in error.expected:
            notes.append(
                "a formula needs a weight before it (soft) or a period after it (hard)"
            )
        if token.type == "NAME" and str(token) == "v":
            notes.append("'v' is the disjunction; it cannot be a variable name")
        if re.search(r"(?<![A-Za-z0-9_])(EXISTS?|FORALL)[ \t]+$", line_text[: column - 1]):
            notes.append("a quantified formula inside another needs parentheses, e.g. 'P(x) v (EXIST y Q(x, y))'")
    elif isinstance(error, UnexpectedCharacters):
        character = line_text[column - 1] if column - 1 < len(line_text) else "?"
        message = f"unexpected character '{character}'"
        if error.allowed:
            message += f"; expected {_expected(error.allowed)}"
        if character == "\t":
            message = "unexpected tab"
        if character == "|" and not line_text[: column - 1].strip():
            notes.append("RockIt's cardinality formulas ('|x| F <= 1') are not supported")
        if character == "[":
            notes.append("RockIt's numeric extension ('[x + y]', 'p(x, y) := [x < y]') is not supported")
        if character == "$":
            notes.append("pracmln's weight variables ('$w = ...') are not supported: write the number")
    elif isinstance(error, UnexpectedEOF):
        message = "unexpected end of file"
    else:
        message = "syntax error"
    if re.match(r"\s*(P|R|SE)\(.*\)\s*=\s*[\d.]", line_text):
        notes.append("pracmln's probability constraints ('P(F) = 0.1') are not supported")
    bad_weight = _bad_weight(line_text, column)
    if bad_weight is not None:
        column, word = bad_weight
        width, message = len(word), f"weight '{word}' is not a number"
        notes = ["a weight is a number such as '1.5', '-2', '1e-3' or Tuffy's '@5'"]
    span = Span(file, line, column, line, column + width, line_text)
    return Diagnostic(span, message, notes=tuple(notes))


def _unclosed(text: str) -> bool:
    code = re.sub(r'"([^"\\\n]|\\.)*"|//[^\n]*|/\*.*?\*/', "", text, flags=re.S)
    return code.count("(") + code.count("{") > code.count(")") + code.count("}")


_FIRST_WORD = re.compile(r"([ \t]*)([^\s(]+)[ \t]+(?=[!(\"A-Za-z])")
_VALID_WEIGHT = re.compile(r"@?[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")
_KEYWORDS = frozenset({"bind", "EXIST", "EXISTS", "FORALL"})


def _bad_weight(line_text: str, column: int) -> tuple[int, str] | None:
    """(column, word) when the error lies in a first word that stands where a weight goes."""
    match = _FIRST_WORD.match(line_text)
    if match is None:
        return None
    word = match.group(2)
    if "=" in word or "{" in word or word.startswith("|"):
        return None  # a domain declaration or a RockIt cardinality, not a weight
    if word in _KEYWORDS or _VALID_WEIGHT.match(word) or not (match.start(2) < column <= match.end() + 1):
        return None
    return match.start(2) + 1, word


def _expected(names: Iterable[str]) -> str:
    friendly = sorted({_TERMINAL_NAMES.get(name, f"'{name.lower()}'") for name in names})
    if len(friendly) > 6:
        friendly = friendly[:6] + ["…"]
    return " or ".join(friendly) if len(friendly) <= 2 else ", ".join(friendly)


def _token_span(token: Token, file: str, lines: list[str]) -> Span:
    line = token.line or 1
    column = token.column or 1
    end_line = token.end_line or line
    end_column = token.end_column or column + 1
    return Span(file, line, column, end_line, end_column, _line(lines, line))


def _line(lines: list[str], number: int) -> str:
    return lines[number - 1] if 0 < number <= len(lines) else ""


@v_args(meta=True)
class _ToSyntax(Transformer[Token, list[Statement]]):
    """Lark tree → ``reasoner.syntax`` nodes."""

    def __init__(self, file: str, lines: list[str], source: str) -> None:
        super().__init__()
        self.file = file
        self.lines = lines
        self.source = source
        # '!' and '?' after arguments ('dish!') in the current statement: (index, exhaustive, span)
        self._marks: list[tuple[int, bool, Span]] = []

    def _no_marks(self) -> None:
        """'type!' and 'type?' belong to declarations only."""
        if self._marks:
            _index, exhaustive, span = self._marks[0]
            self._marks = []
            mark = "!" if exhaustive else "?"
            raise self._fail(
                span,
                f"'{mark}' after an argument belongs in a predicate declaration, not in a formula",
                f"declare 'P(type, type{mark})' once; for each binding of the other arguments "
                + ("exactly one value is then true" if exhaustive else "at most one value is then true"),
            )

    # -- positions -----------------------------------------------------
    def _span(self, meta: Any) -> Span:
        line = getattr(meta, "line", 1)
        column = getattr(meta, "column", 1)
        return Span(
            self.file,
            line,
            column,
            getattr(meta, "end_line", line),
            getattr(meta, "end_column", column + 1),
            _line(self.lines, line),
        )

    def _token(self, token: Token) -> Span:
        return _token_span(token, self.file, self.lines)

    def _fail(self, span: Span, message: str, *notes: str) -> RuleError:
        return RuleError([Diagnostic(span, message, notes=notes)])

    # -- statements ----------------------------------------------------
    def start(self, meta: Any, children: list[Any]) -> list[Statement]:
        statements: list[Statement] = []
        fixed_next = False
        unique_next: tuple[str, ...] = ()
        for child in children:
            if isinstance(child, Token):  # a pracmln directive
                if str(child).startswith("#unique"):
                    unique_next = self._unique(child)
                else:
                    fixed_next = self._directive(child) or fixed_next
                continue
            if isinstance(child, WeightedFormula):
                if fixed_next and child.weight is not None:
                    child = replace(child, fixed=True)
                if unique_next:
                    child = replace(child, unique=unique_next)
                fixed_next, unique_next = False, ()
            statements.append(child)
        if any(_capitalised_types(statement) for statement in statements):
            statements = [
                replace(statement, formula=rockit_formula(statement.formula))
                if isinstance(statement, WeightedFormula)
                else statement
                for statement in statements
            ]
        return statements

    def _unique(self, token: Token) -> tuple[str, ...]:
        """pracmln's '#unique{+?x, +?y}': the names of the next formula's '+' variables it lists."""
        match = re.fullmatch(r"#unique\s*\{([^{}]*)\}\s*", str(token))
        names = [name.strip() for name in match.group(1).split(",")] if match else []
        if not names or not all(re.fullmatch(r"\+\??[A-Za-z_][A-Za-z0-9_]*", name) for name in names):
            raise self._fail(
                self._token(token),
                "malformed '#unique': expected '#unique{+?x, +?y}'",
                "it names '+' variables of the formula on the next line",
            )
        return tuple(name.lstrip("+?") for name in names)

    def _directive(self, token: Token) -> bool:
        """True for '#fixweight'; '#fuzzy' is accepted (binary, as pracmln's first-order logic reads it)."""
        word = str(token).split("{", 1)[0].split()[0]
        if word == "#fixweight":
            return True
        if word == "#fuzzy":
            return False
        raise self._fail(
            self._token(token),
            f"the directive '{word}' is not supported",
            "supported: '#fixweight' (the next formula's weight is fixed), '#unique{+?x, +?y}' and "
            "'#fuzzy' (read as a binary predicate)",
            "for '#include', give the included file on the command line",
        )

    def type_declaration(self, meta: Any, children: list[Any]) -> TypeDeclaration:
        self._no_marks()
        name, constants = children
        return TypeDeclaration(str(name), tuple(constants), self._span(meta))

    def constant_list(self, meta: Any, children: list[Constant]) -> list[Constant]:
        return list(children)

    def lower_constant(self, meta: Any, children: list[Token]) -> Constant:
        return Constant(str(children[0]), self._token(children[0]))

    def constant_range(self, meta: Any, children: list[Any]) -> list[Constant]:
        first, _ellipsis, last = children
        if not isinstance(first.value, int) or not isinstance(last.value, int):
            raise self._fail(first.span, "a range '{A, ..., B}' needs integer bounds")
        if last.value < first.value:
            raise self._fail(last.span, "range ends before it starts")
        max_range = _LIMITS.get(_DEFAULT_LIMITS).max_range
        if last.value - first.value >= max_range:
            raise self._fail(
                last.span, f"range has more than {max_range:,} constants", "declare the type from a table with 'bind'"
            )
        return [Constant(value, first.span) for value in range(first.value, last.value + 1)]

    def bare_statement(self, meta: Any, children: list[Any]) -> Statement:
        star = next((child for child in children if isinstance(child, Token) and child.type == "STAR"), None)
        period = next((child for child in children if isinstance(child, Token) and child.type == "PERIOD"), None)
        formula: Formula = next(child for child in children if not isinstance(child, Token))
        if isinstance(formula, Atom) and period is None:
            return self._declaration(meta, formula, closed=star is not None)
        if star is not None:
            raise self._fail(
                self._token(star),
                "'*' marks a closed-world predicate declaration; it cannot start a formula",
                "declare the predicate on a line of its own, e.g. '*Friends(person, person)'",
            )
        self._no_marks()
        formula = prac_formula(formula)
        if period is not None:
            return WeightedFormula(None, formula, self._text(meta), self._span(meta), per_constant=_plus(formula))
        return WeightedFormula(
            None, formula, self._text(meta), self._span(meta), unweighted=True, per_constant=_plus(formula)
        )

    def _declaration(self, meta: Any, atom: Atom, *, closed: bool) -> PredicateDeclaration:
        marks = self._marks
        self._marks = []
        types: list[str] = []
        for arg in atom.args:
            if isinstance(arg, Variable) and not arg.per_constant and not arg.name.startswith("?"):
                types.append(arg.name)
            elif isinstance(arg, Constant) and isinstance(arg.value, str) and bare_name(arg):
                types.append(arg.value)  # RockIt: capitalised type names ('*Smokes(Person)')
            else:
                raise self._fail(
                    arg.span,
                    f"'{atom}' is neither a declaration nor a formula",
                    "a declaration lists type names, e.g. 'Friends(person, person)'",
                    "a formula needs a weight before it (soft) or a period after it (hard)",
                )
        determined = tuple(index for index, _exhaustive, _span in marks)
        kinds = {exhaustive for _index, exhaustive, _span in marks}
        if len(kinds) > 1:
            raise self._fail(
                marks[-1][2],
                "a declaration mixes '!' (exactly one value) and '?' (at most one value)",
                "mark the determined arguments all with '!' or all with '?'",
            )
        if marks and len(determined) == len(types):
            raise self._fail(
                marks[-1][2],
                "every argument is marked as determined",
                "'!' marks the arguments whose value the others determine, e.g. 'orders(person, dish!)'",
            )
        exhaustive = not kinds or kinds == {True}
        return PredicateDeclaration(atom.predicate, tuple(types), closed, self._span(meta), determined, exhaustive)

    def weighted_formula(self, meta: Any, children: list[Any]) -> WeightedFormula:
        self._no_marks()
        token, formula = children
        text = str(token)
        fixed = text.startswith("@")
        try:
            weight = Decimal(text.lstrip("@"))
        except InvalidOperation:
            raise self._fail(self._token(token), f"weight '{text}' is not a number") from None
        if not weight.is_finite():
            raise self._fail(self._token(token), f"weight '{text}' is not a finite number")
        formula = prac_formula(formula)
        return WeightedFormula(
            weight, formula, self._text(meta), self._span(meta), fixed, per_constant=_plus(formula)
        )

    def expression_weighted_formula(self, meta: Any, children: list[Any]) -> WeightedFormula:
        self._no_marks()
        token, formula = children
        text = str(token)
        try:
            value = weight_expression(text)
        except WeightExpressionError as error:
            shown = text if len(text) <= 40 else text[:39] + "…"
            raise self._fail(
                self._token(token),
                f"weight '{shown}' {error}",
                "a weight expression uses numbers, + - * / **, parentheses, log, logx (log, and -100 for 0), "
                "exp, sqrt, log10, log2, pow, abs and float('inf')",
            ) from None
        formula = prac_formula(formula)
        if value.negated:
            formula = Not(formula, formula.span)  # weight -inf: the formula must be false
        return WeightedFormula(value.weight, formula, self._text(meta), self._span(meta), per_constant=_plus(formula))

    def data_weighted_formula(self, meta: Any, children: list[Any]) -> WeightedFormula:
        self._no_marks()
        token, formula = children
        name = str(token).rstrip(":")
        formula = prac_formula(formula)
        return WeightedFormula(
            None, formula, self._text(meta), self._span(meta), weight_variable=name, per_constant=_plus(formula)
        )

    def _text(self, meta: Any) -> str:
        return " ".join(self.source[meta.start_pos : meta.end_pos].split())

    def binding(self, meta: Any, children: list[Any]) -> Binding:
        self._no_marks()
        predicate = str(children[1])
        rest = children[2:]
        columns = tuple(item for item in rest if isinstance(item, Column))
        table_index = next(i for i, item in enumerate(rest) if isinstance(item, Token) and item.type == "NAME")
        table = str(rest[table_index])
        conditions: tuple[Condition, ...] = ()
        probability: Column | None = None
        for clause in rest[table_index + 1 :]:
            if isinstance(clause, _Probability):
                probability = clause.column
            else:
                conditions = tuple(clause)
        return Binding(predicate, columns, table, conditions, self._span(meta), probability)

    def probability_clause(self, meta: Any, children: list[Any]) -> _Probability:
        return _Probability(children[-1])

    def column(self, meta: Any, children: list[Token]) -> Column:
        token = children[0]
        span = self._token(token)
        if token.type == "ROW":
            return Column(None, span)
        if token.type == "STRING":
            return Column(unquote(str(token)), span)
        if token.type == "CONSTANT_NAME":
            return Column(None, span, str(token))
        if token.type in ("INTEGER", "FLOAT"):
            number = float(str(token))
            return Column(None, span, int(number) if number.is_integer() else number)
        return Column(str(token), span)

    def condition_clause(self, meta: Any, children: list[Any]) -> list[Condition]:
        return [child for child in children if isinstance(child, Condition)]

    def condition(self, meta: Any, children: list[Any]) -> Condition:
        column, op, value = children
        return Condition(column, str(op), (value,), self._span(meta))

    def condition_in(self, meta: Any, children: list[Any]) -> Condition:
        column = children[0]
        values = tuple(child for child in children[2:] if isinstance(child, Constant))
        return Condition(column, "in", values, self._span(meta))

    def derived_rule(self, meta: Any, children: list[Any]) -> DerivedRule:
        self._no_marks()
        head = children[0]
        body = tuple(child for child in children[1:] if not isinstance(child, Token))
        return DerivedRule(head, body, self._span(meta))

    def body_literal(self, meta: Any, children: list[Any]) -> Literal | Comparison:
        if len(children) == 1 and isinstance(children[0], Comparison):
            return children[0]
        return Literal(len(children) == 1, children[-1], self._span(meta))

    # -- formulas ------------------------------------------------------
    def quantified(self, meta: Any, children: list[Any]) -> Quantified:
        keyword = str(children[0])
        names = [child for child in children[1:-1] if isinstance(child, Token)]
        variables = tuple(Variable(str(name), self._token(name)) for name in names)
        quantifier = "forall" if keyword == "FORALL" else "exists"
        return Quantified(quantifier, variables, children[-1], self._span(meta))

    def equivalence(self, meta: Any, children: list[Any]) -> Formula:
        operands = [child for child in children if not isinstance(child, Token)]
        result: Formula = operands[0]
        for operand in operands[1:]:
            result = Equivalent(result, operand, self._span(meta))
        return result

    def implication(self, meta: Any, children: list[Any]) -> Implies:
        left, _arrow, right = children
        return Implies(left, right, self._span(meta))

    def disjunction(self, meta: Any, children: list[Any]) -> Or:
        operands = tuple(child for child in children if not isinstance(child, Token))
        return Or(operands, self._span(meta))

    def conjunction(self, meta: Any, children: list[Any]) -> And:
        operands = tuple(child for child in children if not isinstance(child, Token))
        return And(operands, self._span(meta))

    def negation(self, meta: Any, children: list[Any]) -> Not:
        return Not(children[-1], self._span(meta))

    def atom(self, meta: Any, children: list[Any]) -> Atom:
        predicate = children[0]
        args: list[Term] = []
        for index, child in enumerate(children[1:]):
            if isinstance(child, _Marked):
                self._marks.append((index, child.exhaustive, child.span))
                args.append(child.term)
            else:
                args.append(child)
        return Atom(str(predicate).strip(), tuple(args), self._span(meta))

    def determined(self, meta: Any, children: list[Any]) -> _Marked:
        return _Marked(children[0], True, self._token(children[1]))

    def determined_at_most(self, meta: Any, children: list[Any]) -> _Marked:
        return _Marked(children[0], False, self._token(children[1]))

    def per_constant(self, meta: Any, children: list[Any]) -> Term:
        plus, term = children
        if not isinstance(term, Variable):
            raise self._fail(
                self._token(plus),
                f"'+' needs a variable, got {term}",
                "'+x' gives the formula one weight per constant of x's type (learned with 'reason learn')",
            )
        return Variable(term.name, term.span, per_constant=True)

    def nullary_atom(self, meta: Any, children: list[Any]) -> Atom:
        return Atom(str(children[0]).strip(), (), self._span(meta))

    def comparison(self, meta: Any, children: list[Any]) -> Comparison:
        left, op, right = children
        operator = "!=" if str(op) == "=/=" else str(op)  # pracmln writes '!=' as '=/='
        return Comparison(operator, left, right, self._span(meta))

    def variable(self, meta: Any, children: list[Token]) -> Term:
        token = children[0]
        return Variable(str(token), self._token(token))

    def constant(self, meta: Any, children: list[Token]) -> Constant:
        token = children[0]
        span = self._token(token)
        text = str(token)
        value: int | float | str
        if token.type == "INTEGER":
            value = int(text)
        elif token.type == "FLOAT":
            number = float(text)
            value = int(number) if number.is_integer() and -(2**63) <= number < 2**63 else number
        elif token.type == "STRING":
            value = unquote(text)
        else:
            value = text
        return Constant(value, span)


@dataclass(frozen=True, slots=True)
class _Probability:
    """The column of a binding's 'with probability COLUMN'."""

    column: Column


@dataclass(frozen=True, slots=True)
class _Marked:
    """An argument written 'type!' or 'type?' (in a declaration)."""

    term: Term
    exhaustive: bool
    span: Span


def _plus(formula: Formula) -> tuple[str, ...]:
    """The variables written '+x' in a formula, in order of appearance."""
    names: dict[str, None] = {}
    for term in formula_terms(formula):
        if isinstance(term, Variable) and term.per_constant:
            names.setdefault(term.name, None)
    return tuple(names)


def _capitalised_types(statement: Statement) -> bool:
    """A declaration naming a capitalised type: the file is RockIt's dialect."""
    return isinstance(statement, PredicateDeclaration) and any(type_[:1].isupper() for type_ in statement.types)


_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")


def unquote(text: str) -> str:
    body = text[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    escapes = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "\\": "\\"}
    index = 0
    while index < len(body):
        character = body[index]
        if character == "\\" and body[index + 1 : index + 2] == "u" and _HEX4.fullmatch(body, index + 2, index + 6):
            out.append(chr(int(body[index + 2 : index + 6], 16)))  # as JSON writes control characters
            index += 6
        elif character == "\\" and index + 1 < len(body):
            out.append(escapes.get(body[index + 1], body[index + 1]))
            index += 2
        else:
            out.append(character)
            index += 1
    return "".join(out)
