"""Filter strings, order_by clauses and page tokens for the search methods.

MLflow's filter syntax, parsed for real (a tokenizer and a recursive-descent parser, not
regular expressions), plus OR and parentheses:

    filter     := or_expr
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := primary ("AND" primary)*
    primary    := "(" or_expr ")" | identifier comparator value
    comparator := = | != | <> | < | <= | > | >= | LIKE | ILIKE | IN | NOT IN
    value      := 'string' | "string" | number | "(" value ("," value)* ")"
    identifier := [metrics|params|tags|attributes] "." key  |  attribute
    key        := name | `any text` | "any text"

Keywords are case-insensitive; quotes inside strings are doubled ('it''s'). Positions in
error messages count characters from 0. The result is a small tree the SQL store
translates into bound-parameter expressions; nothing here builds SQL.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TypeAlias

from cairn.errors import UserError

ENTITIES = {
    "metric": "metric", "metrics": "metric",
    "param": "param", "params": "param", "parameter": "param", "parameters": "param",
    "tag": "tag", "tags": "tag",
    "attribute": "attribute", "attributes": "attribute", "attr": "attribute",
    "run": "attribute",
}
KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "ASC", "DESC"}
OPERATORS = ("!=", "<>", "<=", ">=", "==", "=", "<", ">")
NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
# Characters that end an unquoted key (metrics.val_loss, params.model.lr, tags.a/b-c).
_KEY_END = set(" \t\r\n=!<>(),'\"")

Value: TypeAlias = str | float | tuple[str | float, ...]


@dataclass(frozen=True)
class Comparison:
    entity: str  # "metric" | "param" | "tag" | "attribute"
    key: str
    op: str  # one of NUMERIC_OPS or STRING_OPS
    value: Value


@dataclass(frozen=True)
class BoolOp:
    op: str  # "AND" | "OR"
    items: tuple[Filter, ...]


Filter: TypeAlias = Comparison | BoolOp


@dataclass(frozen=True)
class OrderBy:
    entity: str
    key: str
    ascending: bool


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, number, op, keyword, lparen, rparen, comma, end
    text: str  # as written
    pos: int
    value: object = None  # ident: (entity, key); string: str; number: float; keyword: upper

    def ident(self) -> tuple[str, str]:
        """(entity, key) of an identifier token."""
        assert isinstance(self.value, tuple)
        return str(self.value[0]), str(self.value[1])

    def describe(self) -> str:
        if self.kind == "end":
            return "end of filter"
        return self.text if self.kind == "string" else f"'{self.text}'"


class _Error(Exception):
    def __init__(self, what: str, pos: int, expected: str = "") -> None:
        super().__init__(what)
        self.what, self.pos, self.expected = what, pos, expected

    def __str__(self) -> str:
        tail = f"; expected {self.expected}" if self.expected else ""
        return f"{self.what} at position {self.pos}{tail}"


def parse_filter(text: str | None) -> Filter | None:
    """The tree of `text`; None when it is empty. UserError names the position."""
    if text is None or not text.strip():
        return None
    try:
        parser = _Parser(tokenize(text))
        tree = parser.or_expr()
        parser.expect_end("AND, OR or the end of the filter")
        return tree
    except _Error as e:
        raise UserError(f'invalid filter "{text}": {e}') from None


def parse_order_by(clauses: list[str] | tuple[str, ...] | None) -> list[OrderBy]:
    """"metrics.f1 DESC", "attributes.start_time ASC", "name" → OrderBy values."""
    result: list[OrderBy] = []
    for clause in clauses or ():
        try:
            tokens = tokenize(clause)
            if tokens[0].kind != "ident":
                raise _Error(f"unexpected {tokens[0].describe()}", tokens[0].pos,
                             "a column name")
            entity, key = tokens[0].ident()
            ascending, rest = True, tokens[1:]
            if rest[0].kind == "keyword" and rest[0].value in ("ASC", "DESC"):
                ascending, rest = rest[0].value == "ASC", rest[1:]
            if rest[0].kind != "end":
                raise _Error(f"unexpected {rest[0].describe()}", rest[0].pos,
                             "ASC, DESC or the end")
        except _Error as e:
            raise UserError(f'invalid order_by "{clause}": {e}') from None
        result.append(OrderBy(entity, key, ascending))
    return result


# -- tokenizer ----------------------------------------------------------------------

def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "(),":
            kind = {"(": "lparen", ")": "rparen", ",": "comma"}[c]
            tokens.append(Token(kind, c, i))
            i += 1
        elif c in "=!<>":
            op = next((o for o in OPERATORS if text.startswith(o, i)), None)
            if op is None:
                raise _Error(f"unexpected '{c}'", i, "a comparator")
            canonical = {"==": "=", "<>": "!="}.get(op, op)
            tokens.append(Token("op", op, i, canonical))
            i += len(op)
        elif c in "'\"":
            value, end = _quoted(text, i)
            tokens.append(Token("string", text[i:end], i, value))
            i = end
        elif c.isdigit() or (c in "+-." and i + 1 < n and (text[i + 1].isdigit()
                                                          or text[i + 1] == ".")):
            end = _number_end(text, i)
            try:
                tokens.append(Token("number", text[i:end], i, float(text[i:end])))
            except ValueError:
                raise _Error(f"'{text[i:end]}' is not a number", i) from None
            i = end
        elif c.isalpha() or c in "_`":
            token, i = _word(text, i)
            tokens.append(token)
        else:
            raise _Error(f"unexpected '{c}'", i)
    tokens.append(Token("end", "", n))
    return tokens


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The value of the quoted string at `start` (quote doubled inside) and its end."""
    quote, i, parts = text[start], start + 1, []
    while i < len(text):
        if text[i] == quote:
            if text.startswith(quote * 2, i):
                parts.append(quote)
                i += 2
                continue
            return "".join(parts), i + 1
        parts.append(text[i])
        i += 1
    raise _Error(f"unterminated string {text[start:]}", start)


def _number_end(text: str, i: int) -> int:
    i += 1
    while i < len(text) and (text[i].isalnum() or text[i] in ".+-"):
        # a sign is part of the number only right after an exponent
        if text[i] in "+-" and text[i - 1] not in "eE":
            break
        i += 1
    return i


def _word(text: str, start: int) -> tuple[Token, int]:
    if text[start] == "`":
        key, end = _backquoted(text, start)
        return Token("ident", text[start:end], start, ("attribute", key)), end
    i = start
    while i < len(text) and (text[i].isalnum() or text[i] == "_"):
        i += 1
    word = text[start:i]
    if i < len(text) and text[i] == ".":
        entity = ENTITIES.get(word.lower())
        if entity is None:
            raise _Error(f"unknown prefix '{word}.'", start,
                         "metrics., params., tags. or attributes.")
        key, end = _key(text, i + 1)
        return Token("ident", text[start:end], start, (entity, key)), end
    if word.upper() in KEYWORDS:
        return Token("keyword", word, start, word.upper()), i
    return Token("ident", word, start, ("attribute", word)), i


def _key(text: str, i: int) -> tuple[str, int]:
    if i < len(text) and text[i] == "`":
        return _backquoted(text, i)
    if i < len(text) and text[i] == '"':
        return _quoted(text, i)
    end = i
    while end < len(text) and text[end] not in _KEY_END:
        end += 1
    if end == i:
        raise _Error("missing key after '.'", i)
    return text[i:end], end


def _backquoted(text: str, start: int) -> tuple[str, int]:
    end = text.find("`", start + 1)
    if end < 0:
        raise _Error("unterminated `key`", start)
    if end == start + 1:
        raise _Error("empty `key`", start)
    return text[start + 1:end], end + 1


# -- parser -------------------------------------------------------------------------

class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.i = tokens, 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def at_keyword(self, word: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.value == word

    def fail(self, expected: str) -> _Error:
        return _Error(f"unexpected {self.tok.describe()}", self.tok.pos, expected)

    def expect_end(self, expected: str) -> None:
        if self.tok.kind != "end":
            raise self.fail(expected)

    def or_expr(self) -> Filter:
        items = [self.and_expr()]
        while self.at_keyword("OR"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def and_expr(self) -> Filter:
        items = [self.primary()]
        while self.at_keyword("AND"):
            self.take()
            items.append(self.primary())
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))

    def primary(self) -> Filter:
        if self.tok.kind == "lparen":
            self.take()
            inner = self.or_expr()
            if self.tok.kind != "rparen":
                raise self.fail("')', AND or OR")
            self.take()
            return inner
        if self.tok.kind != "ident":
            raise self.fail("a column such as metrics.f1, params.lr, tags.team or status")
        ident = self.take()
        entity, key = ident.ident()
        op = self.comparator()
        value_token = self.tok
        value = self.value(op)
        _check_types(entity, key, op, value, value_token)
        return Comparison(entity, key, op, value)

    def comparator(self) -> str:
        token = self.tok
        if token.kind == "op":
            self.take()
            return str(token.value)
        if token.kind == "keyword" and token.value in ("LIKE", "ILIKE", "IN"):
            self.take()
            return str(token.value)
        if token.kind == "keyword" and token.value == "NOT":
            self.take()
            if self.at_keyword("IN"):
                self.take()
                return "NOT IN"
            raise self.fail("IN after NOT")
        raise self.fail("a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN)")

    def value(self, op: str) -> Value:
        if op in ("IN", "NOT IN"):
            if self.tok.kind != "lparen":
                raise self.fail(f"'(' and a list of values after {op}")
            self.take()
            items = [self.scalar()]
            while self.tok.kind == "comma":
                self.take()
                items.append(self.scalar())
            if self.tok.kind != "rparen":
                raise self.fail("',' or ')'")
            self.take()
            return tuple(items)
        return self.scalar()

    def scalar(self) -> str | float:
        if self.tok.kind in ("string", "number"):
            return self.take().value  # type: ignore[return-value]
        raise self.fail("a value")


def _check_types(entity: str, key: str, op: str, value: Value, token: Token) -> None:
    name = f"{'metrics' if entity == 'metric' else entity + 's'}.{key}"
    if entity == "metric":
        if op not in NUMERIC_OPS:
            raise _Error(f"{name} compares with =, !=, <, <=, > or >=, not {op}", token.pos)
        if not isinstance(value, float):
            raise _Error(f"{name} needs a number, got {token.describe()}", token.pos)
    elif entity in ("param", "tag"):
        if op not in STRING_OPS:
            raise _Error(f"{name} compares with =, !=, LIKE, ILIKE, IN or NOT IN, not {op}",
                         token.pos)
        items = value if isinstance(value, tuple) else (value,)
        if any(not isinstance(v, str) for v in items):
            raise _Error(f"{name} needs a quoted string, got {token.describe()}", token.pos)
    elif op in ("LIKE", "ILIKE") and not isinstance(value, str):
        raise _Error(f"{op} needs a quoted pattern, got {token.describe()}", token.pos)


# -- paging -------------------------------------------------------------------------

def encode_page_token(offset: int) -> str:
    raw = json.dumps({"offset": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str | None) -> int:
    """The offset a page token stands for (0 without one)."""
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = data["offset"]
        if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0:
            return offset
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        pass
    raise UserError(f"invalid page token {token!r}: pass the token of a previous page "
                    "unchanged")


def check_max_results(max_results: int, limit: int) -> None:
    if isinstance(max_results, bool) or not isinstance(max_results, int) \
            or not 1 <= max_results <= limit:
        raise UserError(f"max_results must be an integer from 1 to {limit}, "
                        f"got {max_results!r}")
