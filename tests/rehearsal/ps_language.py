"""The part of the PowerShell language the runbooks' scripts and runbook's remote bootstrap use,
parsed and evaluated as Windows PowerShell 5.1 does it.

Statements (`;` or a line break between them): commands with named, `-Name:value` and
positional arguments; `& <script block>`; `(pipeline).Property`, member enumeration on
arrays, `-join`; assignments to `$name`, `$env:NAME` and `$global:NAME`; `exit`; `throw`.
Values: '...' and "..." strings, numbers, `$null`/`$true`/`$false`, arrays (`'a','b'`),
hashtables (`@{Add='a','b'; Remove='c'}`), `{ script blocks }`, and the three static members
the bootstrap uses (`[scriptblock]::Create`, `[Text.Encoding]::UTF8.GetString`,
`[Convert]::FromBase64String`). Anything else is a parse error, as an unknown construct
would be to a reader of the script: the stand-in never guesses.

Errors follow PowerShell's rules: an error in a command ends that statement and the script
goes on, unless `$ErrorActionPreference` is 'Stop', which ends the whole script (and the whole
input line); `throw` always ends it. Each is shown as PowerShell 5.1 shows it on stderr: the
message, `At line:L char:C`, the line, a `~~~` mark under the failing part, CategoryInfo and
FullyQualifiedErrorId.
"""
import base64
import os
import re


class Extent:
    """Where a piece of script is: line and column (from 1), its length, and the text of its
    line, for PowerShell's `At line:L char:C` block."""

    def __init__(self, source, start, end):
        self.line = source.count("\n", 0, start) + 1
        line_start = source.rfind("\n", 0, start) + 1
        line_end = source.find("\n", start)
        if line_end == -1:
            line_end = len(source)
        self.column = start - line_start + 1
        self.text = source[line_start:line_end].rstrip("\r")
        self.length = max(1, min(end, line_end) - start)
        self.snippet = source[start:end]

    def render(self):
        indent = self.text[: self.column - 1]
        marks = "".join("\t" if c == "\t" else " " for c in indent) + "~" * self.length
        return f"At line:{self.line} char:{self.column}\n+ {self.text}\n+ {marks}\n"


class PSError(Exception):
    """An error record: `message` (its first line as PowerShell shows it), the command it
    comes from (shown as `Command : message`), its category line and error id."""

    def __init__(self, message, *, command=None, category="NotSpecified: (:) [], RuntimeException",
                 error_id="RuntimeException", extent=None, terminating=False):
        super().__init__(message)
        self.message = message
        self.command = command
        self.category = category
        self.error_id = error_id
        self.extent = extent
        self.terminating = terminating

    def render(self):
        head = f"{self.command} : {self.message}" if self.command else self.message
        where = self.extent.render() if self.extent else ""
        return (
            f"{head}\n{where}    + CategoryInfo          : {self.category}\n"
            f"    + FullyQualifiedErrorId : {self.error_id}\n \n"
        )


class ParseError(PSError):
    def __init__(self, message, extent, error_id):
        super().__init__(
            message,
            category="ParserError: (:) [], ParentContainsErrorRecordException",
            error_id=error_id,
            extent=extent,
            terminating=True,
        )


class Refused(Exception):
    """The stand-in cannot answer (a cmdlet of the reference it does not model, a state file
    it cannot read): not PowerShell's behaviour, so the whole run stops with exit 2."""


class ExitRequest(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


# ---- values ----

class Hashtable(dict):
    """`@{...}`: keys compared without case, as PowerShell's hashtables do."""

    def get_ci(self, key):
        for k, v in self.items():
            if k.lower() == key.lower():
                return v
        return None


class PSObject(dict):
    """An object a cmdlet returns: properties by name, read without case."""

    def prop(self, name):
        for k, v in self.items():
            if k.lower() == name.lower():
                return v
        return None


class ScriptBlock:
    def __init__(self, text, statements):
        self.text = text
        self.statements = statements


class TypeName:
    def __init__(self, name):
        self.name = name


class Encoding:
    """[Text.Encoding]::UTF8"""


def to_text(value):
    if value is None:
        return ""
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, list):
        return " ".join(to_text(v) for v in value)
    if isinstance(value, (bytes, bytearray)):
        return " ".join(str(b) for b in value)
    return str(value)


def enumerate_value(value):
    """What a value sends down a pipeline: an array's items, or the value itself."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    return [value]


def format_for_host(value):
    """The lines `Out-Default` writes for one object."""
    if value is None:
        return []
    if isinstance(value, PSObject):
        if not value:
            return []
        width = max(len(k) for k in value)
        lines = [""]
        for k, v in value.items():
            shown = "{" + ", ".join(to_text(x) for x in v) + "}" if isinstance(v, list) else to_text(v)
            lines.append(f"{k.ljust(width)} : {shown}")
        lines.append("")
        return lines
    if isinstance(value, Hashtable):
        return [f"{k} {to_text(v)}" for k, v in value.items()]
    return to_text(value).split("\n")


# ---- syntax ----

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NUMBER = re.compile(r"\d+")
# A command name or a bare argument: up to a space or a character that ends it.
BARE = re.compile(r"[^\s;|(){},'\"`]+")
STATEMENT_END = ";\n|)}"
KEYWORDS = {"exit", "throw"}


class Node:
    def __init__(self, kind, extent, **fields):
        self.kind = kind
        self.extent = extent
        self.__dict__.update(fields)


class Parser:
    def __init__(self, text):
        self.s = text
        self.i = 0

    # -- helpers --
    def extent(self, start, end=None):
        return Extent(self.s, start, self.i if end is None else end)

    def error(self, message, error_id, start=None, end=None):
        start = self.i if start is None else start
        end = (start + 1) if end is None else end
        raise ParseError(message, Extent(self.s, start, min(end, len(self.s)) or start + 1), error_id)

    def peek(self, k=0):
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def skip(self, newlines=False):
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            elif c == "`" and self.peek(1) == "\n":
                self.i += 2
            elif c == "#" and (self.i == 0 or self.s[self.i - 1] in " \t\n;"):
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            else:
                break

    def at_word(self, word):
        end = self.i + len(word)
        return self.s[self.i:end].lower() == word and (end >= len(self.s) or not (self.s[end].isalnum() or self.s[end] in "_-"))

    def unexpected(self):
        if self.i >= len(self.s):
            self.error("The statement is incomplete: the script ends here.", "IncompleteStatement",
                       max(0, self.i - 1))
        token = BARE.match(self.s, self.i)
        text = token.group(0) if token else self.peek()
        self.error(f"Unexpected token '{text}' in expression or statement.", "UnexpectedToken",
                   self.i, self.i + len(text))

    # -- statements --
    def script(self):
        statements = self.statements(end="")
        if self.i < len(self.s):
            self.unexpected()
        return statements

    def statements(self, end):
        out = []
        while True:
            self.skip(newlines=True)
            while self.peek() == ";":
                self.i += 1
                self.skip(newlines=True)
            if self.i >= len(self.s) or (end and self.peek() == end):
                return out
            out.append(self.statement())
            self.skip()
            if self.i < len(self.s) and self.peek() not in ";\n" and self.peek() != end:
                self.unexpected()

    def statement(self):
        start = self.i
        for word in KEYWORDS:
            if self.at_word(word):
                self.i += len(word)
                self.skip()
                value = None
                if self.i < len(self.s) and self.peek() not in STATEMENT_END:
                    value = self.pipeline()
                return Node(word, self.extent(start), value=value)
        if self.peek() == "$":
            saved = self.i
            target = self.variable()
            self.skip()
            if self.peek() == "=" and self.peek(1) != "=":
                self.i += 1
                self.skip()
                value = self.pipeline()
                return Node("assign", self.extent(start), target=target, value=value)
            self.i = saved
        return self.pipeline()

    def pipeline(self):
        start = self.i
        elements = [self.element(first=True)]
        self.skip()
        while self.peek() == "|" and self.peek(1) != "|":
            self.i += 1
            self.skip(newlines=True)
            elements.append(self.element(first=False))
            self.skip()
        return Node("pipeline", self.extent(start), elements=elements)

    def element(self, first):
        start = self.i
        c = self.peek()
        if c == "&":
            self.i += 1
            self.skip()
            callee = self.postfix()
            args = self.arguments()
            extent = self.extent(start)
            return Node("command", extent, name=None, callee=callee, args=args, name_extent=extent)
        if c.isalpha() or c == "_":
            name = BARE.match(self.s, self.i).group(0)
            name_extent = self.extent(self.i, self.i + len(name))
            self.i += len(name)
            args = self.arguments()
            node = Node("command", None, name=name, callee=None, args=args, name_extent=name_extent)
            node.extent = self.extent(start)
            return node
        if not first:
            self.error("Expressions are only allowed as the first element of a pipeline.",
                       "ExpressionsMustBeFirstInPipeline")
        return self.expression()

    def arguments(self):
        args = []
        while True:
            self.skip()
            c = self.peek()
            if not c or c in STATEMENT_END:
                return args
            start = self.i
            if c == "-" and (self.peek(1).isalpha() or self.peek(1) == "_"):
                self.i += 1
                name = IDENT.match(self.s, self.i).group(0)
                self.i += len(name)
                if self.peek() == ":":
                    self.i += 1
                    value = self.argument_value()
                    args.append(Node("param", self.extent(start), name=name, value=value, colon=True))
                else:
                    args.append(Node("param", self.extent(start), name=name, value=None, colon=False))
            else:
                value = self.argument_value()
                args.append(Node("value", self.extent(start), value=value))

    def argument_value(self):
        """One argument: atoms joined by commas make an array."""
        return self.comma_list(self.argument_atom)

    def comma_list(self, atom):
        start = self.i
        items = [atom()]
        while True:
            saved = self.i
            self.skip()
            if self.peek() != ",":
                self.i = saved
                break
            self.i += 1
            self.skip(newlines=True)
            items.append(atom())
        return items[0] if len(items) == 1 else Node("array", self.extent(start), items=items)

    def argument_atom(self):
        c = self.peek()
        number = re.compile(r"-?\d+(?=[\s;|)},]|$)").match(self.s, self.i)
        if c in "'\"$(@[{" or number:
            return self.postfix()
        start = self.i
        match = BARE.match(self.s, self.i)
        if not match:
            self.unexpected()
        self.i += len(match.group(0))
        return Node("string", self.extent(start), value=match.group(0))

    # -- expressions --
    def expression(self):
        start = self.i
        left = self.comma()
        while True:
            saved = self.i
            self.skip()
            if self.peek() == "-" and self.s[self.i + 1:self.i + 5].lower() == "join" and not (
                self.peek(5).isalnum() or self.peek(5) == "_"
            ):
                self.i += 5
                self.skip(newlines=True)
                right = self.comma()
                left = Node("join", self.extent(start), left=left, right=right)
            elif self.peek() == "-" and self.peek(1).isalpha():
                op = IDENT.match(self.s, self.i + 1).group(0)
                self.error(f"Unexpected token '-{op}' in expression or statement.", "UnexpectedToken",
                           self.i, self.i + 1 + len(op))
            else:
                self.i = saved
                return left

    def comma(self):
        return self.comma_list(self.postfix)

    def postfix(self):
        start = self.i
        node = self.primary()
        while True:
            if self.peek() == "." and (self.peek(1).isalpha() or self.peek(1) == "_"):
                self.i += 1
                name = IDENT.match(self.s, self.i).group(0)
                self.i += len(name)
                if self.peek() == "(":
                    args = self.call_arguments()
                    node = Node("invoke", self.extent(start), target=node, name=name, args=args)
                else:
                    node = Node("member", self.extent(start), target=node, name=name)
            elif self.peek() == ":" and self.peek(1) == ":" and node.kind == "type":
                self.i += 2
                match = IDENT.match(self.s, self.i)
                if not match:
                    self.unexpected()
                name = match.group(0)
                self.i += len(name)
                if self.peek() == "(":
                    args = self.call_arguments()
                    node = Node("static_invoke", self.extent(start), type=node, name=name, args=args)
                else:
                    node = Node("static", self.extent(start), type=node, name=name)
            else:
                return node

    def call_arguments(self):
        self.i += 1  # (
        args = []
        self.skip(newlines=True)
        if self.peek() == ")":
            self.i += 1
            return args
        while True:
            args.append(self.expression_no_comma())
            self.skip(newlines=True)
            if self.peek() == ",":
                self.i += 1
                self.skip(newlines=True)
                continue
            if self.peek() == ")":
                self.i += 1
                return args
            self.error("Missing closing ')' in expression.", "MissingEndParenthesisInMethodCall")

    def expression_no_comma(self):
        start = self.i
        left = self.postfix()
        self.skip()
        if self.peek() == "-" and self.s[self.i + 1:self.i + 5].lower() == "join":
            self.i += 5
            self.skip()
            right = self.postfix()
            return Node("join", self.extent(start), left=left, right=right)
        return left

    def primary(self):
        start = self.i
        c = self.peek()
        if c == "'":
            return Node("string", self.extent(start, self.single_quoted()), value=self.last_string)
        if c == '"':
            end, parts = self.double_quoted()
            return Node("expandable", self.extent(start, end), parts=parts)
        if c == "$" and self.peek(1) == "(":
            self.i += 2
            body = self.statements(end=")")
            self.expect(")", "Missing closing ')' in subexpression.", "MissingEndParenthesisInSubexpression", start)
            return Node("subexpression", self.extent(start), statements=body)
        if c == "$":
            return self.variable()
        if c == "(":
            self.i += 1
            self.skip(newlines=True)
            if self.peek() == ")":
                self.error("An expression was expected after '('.", "ExpectedExpression")
            if self.i >= len(self.s):
                self.error("Missing closing ')' in expression.", "MissingEndParenthesisInExpression", start)
            inner = self.statement()
            self.skip(newlines=True)
            self.expect(")", "Missing closing ')' in expression.", "MissingEndParenthesisInExpression", start)
            return Node("paren", self.extent(start), inner=inner)
        if c == "@" and self.peek(1) == "{":
            return self.hashtable()
        if c == "@" and self.peek(1) == "(":
            self.i += 2
            body = self.statements(end=")")
            self.expect(")", "Missing closing ')' in subexpression.", "MissingEndParenthesisInSubexpression", start)
            return Node("array_subexpression", self.extent(start), statements=body)
        if c == "{":
            self.i += 1
            body_start = self.i
            body = self.statements(end="}")
            text = self.s[body_start:self.i]
            self.expect("}", "Missing closing '}' in statement block or type definition.", "MissingEndCurlyBrace", start)
            return Node("scriptblock", self.extent(start), statements=body, text=text)
        if c == "[":
            end = self.s.find("]", self.i)
            name = self.s[self.i + 1:end] if end != -1 else ""
            if end == -1 or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
                self.error("Missing type name after '['.", "MissingTypename")
            self.i = end + 1
            return Node("type", self.extent(start), name=name)
        match = re.compile(r"-?\d+").match(self.s, self.i)
        if match:
            self.i += len(match.group(0))
            return Node("number", self.extent(start), value=int(match.group(0)))
        self.unexpected()

    def expect(self, char, message, error_id, start):
        if self.peek() != char:
            self.error(message, error_id, start, start + 1)
        self.i += 1

    def single_quoted(self):
        start = self.i
        self.i += 1
        out = []
        while True:
            if self.i >= len(self.s):
                self.error("The string is missing the terminator: '.", "TerminatorExpectedAtEndOfString", start)
            c = self.s[self.i]
            if c == "'":
                if self.peek(1) == "'":
                    out.append("'")
                    self.i += 2
                    continue
                self.i += 1
                self.last_string = "".join(out)
                return self.i
            out.append(c)
            self.i += 1

    def double_quoted(self):
        """Literal text and `$name` / `$env:NAME` parts."""
        start = self.i
        self.i += 1
        parts, text = [], []
        escapes = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "`": "`", '"': '"', "$": "$"}
        while True:
            if self.i >= len(self.s):
                self.error('The string is missing the terminator: ".', "TerminatorExpectedAtEndOfString", start)
            c = self.s[self.i]
            if c == '"':
                if self.peek(1) == '"':
                    text.append('"')
                    self.i += 2
                    continue
                self.i += 1
                parts.append("".join(text))
                return self.i, parts
            if c == "`" and self.i + 1 < len(self.s):
                text.append(escapes.get(self.s[self.i + 1], self.s[self.i + 1]))
                self.i += 2
                continue
            if c == "$" and (self.peek(1).isalpha() or self.peek(1) == "_"):
                parts.append("".join(text))
                text = []
                parts.append(self.variable())
                continue
            if c == "$" and self.peek(1) == "(":
                self.error("Subexpressions in double-quoted strings are not supported by the stand-in.",
                           "StandInUnsupported")
            text.append(c)
            self.i += 1

    def variable(self):
        start = self.i
        self.i += 1
        if self.peek() in "?_" and not (self.peek(1).isalnum()):
            name = self.peek()
            self.i += 1
            return Node("variable", self.extent(start), scope="", name=name)
        match = re.compile(r"(?:([A-Za-z]+):)?([A-Za-z_][A-Za-z0-9_]*)").match(self.s, self.i)
        if not match:
            self.error("Variable reference is not valid. '$' was not followed by a valid variable name character.",
                       "InvalidVariableReference", start)
        self.i += len(match.group(0))
        scope = (match.group(1) or "").lower()
        if scope not in ("", "env", "global", "script", "local"):
            self.error(f"Variable scope '{match.group(1)}' is not supported by the stand-in.", "StandInUnsupported", start)
        return Node("variable", self.extent(start), scope=scope, name=match.group(2))

    def hashtable(self):
        start = self.i
        self.i += 2
        entries = []
        while True:
            self.skip(newlines=True)
            while self.peek() == ";":
                self.i += 1
                self.skip(newlines=True)
            if self.peek() == "}":
                self.i += 1
                return Node("hashtable", self.extent(start), entries=entries)
            if self.peek() == "'":
                self.single_quoted()
                key = self.last_string
            else:
                match = BARE.match(self.s, self.i)
                key = match.group(0).split("=")[0] if match else ""
                if not key:
                    self.error("Missing key before '=' in hash literal.", "MissingEqualsInHashLiteral")
                self.i += len(key)
            self.skip()
            if self.peek() != "=":
                self.error("Missing '=' operator after key in hash literal.", "MissingEqualsInHashLiteral")
            self.i += 1
            self.skip(newlines=True)
            value = self.statement()
            entries.append((key, value))
            self.skip()
            if self.peek() not in ";\n}":
                self.error("Missing statement after '=' in hash literal.", "MissingStatementAfterAssignmentOperator")


def parse(text):
    return Parser(text).script()


# ---- evaluation ----

class Interpreter:
    """Runs statements. `commands` is called for every named command:
    commands(name, args, pipeline_input, extent, name_extent) -> list of output objects, where
    args are (parameter name or None, value, extent, colon) in the order written."""

    def __init__(self, commands, on_script, stdout, stderr):
        self.commands = commands
        self.on_script = on_script
        self.stdout = stdout
        self.stderr = stderr
        self.variables = {"erroractionpreference": "Continue", "?": True}
        self.succeeded = True

    # -- host --
    def emit(self, values):
        for value in values:
            for line in format_for_host(value):
                self.stdout.write(line + "\n")
        self.stdout.flush()

    def report(self, error):
        self.stderr.write(error.render())
        self.stderr.flush()

    def stops(self):
        return to_text(self.variables.get("erroractionpreference")).lower() == "stop"

    # -- statements --
    def run(self, statements, sink):
        """Runs a statement list; output goes to `sink` (a list, or None for the host)."""
        for statement in statements:
            try:
                self.statement(statement, sink)
                self.succeeded = True
            except PSError as e:
                if e.terminating or self.stops():
                    e.terminating = True
                    raise
                self.report(e)
                self.succeeded = False
            self.variables["?"] = self.succeeded

    def out(self, sink, values):
        if sink is None:
            self.emit(values)
        else:
            sink.extend(values)

    def statement(self, node, sink):
        if node.kind == "exit":
            value = self.value(node.value) if node.value else 0
            try:
                code = int(to_text(value) or 0)
            except ValueError:
                code = 0
            raise ExitRequest(code)
        if node.kind == "throw":
            value = self.value(node.value) if node.value else "ScriptHalted"
            raise PSError(to_text(value), category=f"OperationStopped: ({to_text(value)}:String) [], RuntimeException",
                          error_id=to_text(value), extent=node.extent, terminating=True)
        if node.kind == "assign":
            self.assign(node.target, self.value(node.value))
            return
        self.pipeline(node, sink)

    def assign(self, target, value):
        if target.scope == "env":
            if value is None:
                os.environ.pop(target.name, None)
            else:
                os.environ[target.name] = to_text(value)
        else:
            self.variables[target.name.lower()] = value

    def value(self, node):
        """A pipeline or expression as one value: none → $null, one → it, more → an array."""
        if node.kind == "pipeline":
            out = []
            self.pipeline(node, out)
            return None if not out else out[0] if len(out) == 1 else out
        return self.expression(node)

    def pipeline(self, node, sink):
        """Runs a pipeline; its output goes to `sink` (a list, or None: the host, as it is
        produced, so what ran before an error is shown)."""
        data = None
        for index, element in enumerate(node.elements):
            last = index == len(node.elements) - 1
            target = sink if last else []
            if element.kind == "command":
                self.command(element, data, target)
            else:
                self.out(target, enumerate_value(self.expression(element)))
            data = target

    def command(self, node, pipeline_input, sink):
        if node.callee is not None:
            callee = self.expression(node.callee)
            if isinstance(callee, ScriptBlock):
                if node.args:
                    raise PSError("stand-in: arguments to script blocks are not modelled",
                                  extent=node.extent, error_id="StandInUnsupported")
                saved = self.variables.get("input")
                self.variables["input"] = pipeline_input or []
                try:
                    self.run(callee.statements, sink)
                finally:
                    self.variables["input"] = saved
                return
            name = to_text(callee)
        else:
            name = node.name
        args = []
        for arg in node.args:
            if arg.kind == "param":
                value = self.expression(arg.value) if arg.value is not None else None
                args.append((arg.name, value, arg.extent, arg.colon))
            else:
                args.append((None, self.expression(arg.value), arg.extent, False))
        self.out(sink, self.commands(name, args, pipeline_input, node.extent, node.name_extent))

    def expression(self, node):
        kind = node.kind
        if kind == "string":
            return node.value
        if kind == "number":
            return node.value
        if kind == "expandable":
            return "".join(p if isinstance(p, str) else to_text(self.expression(p)) for p in node.parts)
        if kind == "variable":
            return self.variable(node)
        if kind == "array":
            return [self.expression(i) for i in node.items]
        if kind == "paren":
            inner = node.inner
            if inner.kind == "assign":
                self.statement(inner, [])
                return self.variable(inner.target)
            return self.value(inner)
        if kind in ("subexpression", "array_subexpression"):
            out = []
            self.run(node.statements, out)
            if kind == "array_subexpression":
                return out
            return None if not out else out[0] if len(out) == 1 else out
        if kind == "hashtable":
            table = Hashtable()
            for key, value in node.entries:
                table[key] = self.value(value)
            return table
        if kind == "scriptblock":
            return ScriptBlock(node.text, node.statements)
        if kind == "type":
            return TypeName(node.name)
        if kind == "join":
            left = self.expression(node.left)
            separator = to_text(self.expression(node.right))
            return separator.join(to_text(v) for v in enumerate_value(left))
        if kind == "member":
            return member(self.expression(node.target), node.name)
        if kind == "invoke":
            target = self.expression(node.target)
            args = [self.expression(a) for a in node.args]
            return self.invoke(target, node.name, args, node.extent)
        if kind in ("static", "static_invoke"):
            return self.static(node)
        if kind == "pipeline":
            return self.value(node)
        raise PSError(f"stand-in: cannot evaluate {kind}", extent=node.extent)

    def variable(self, node):
        if node.scope == "env":
            return os.environ.get(node.name)
        name = node.name.lower()
        if name == "null":
            return None
        if name == "true":
            return True
        if name == "false":
            return False
        return self.variables.get(name)

    def invoke(self, target, name, args, extent):
        if isinstance(target, Encoding) and name.lower() == "getstring" and len(args) == 1:
            data = args[0]
            if isinstance(data, list):
                data = bytes(data)
            return bytes(data).decode("utf-8")
        kind = "System.Object" if target is None else type_name(target)
        if target is None:
            raise PSError("You cannot call a method on a null-valued expression.",
                          category="InvalidOperation: (:) [], RuntimeException",
                          error_id="InvokeMethodOnNull", extent=extent)
        raise PSError(f"Method invocation failed because [{kind}] does not contain a method named '{name}'.",
                      category=f"InvalidOperation: ({name}:String) [], RuntimeException",
                      error_id="MethodNotFound", extent=extent)

    def static(self, node):
        type_ = node.type.name.lower().removeprefix("system.")
        name = node.name.lower()
        args = [self.expression(a) for a in getattr(node, "args", [])]
        if node.kind == "static" and type_ == "text.encoding" and name == "utf8":
            return Encoding()
        if node.kind == "static_invoke" and type_ == "convert" and name == "frombase64string" and len(args) == 1:
            try:
                return base64.b64decode(to_text(args[0]), validate=True)
            except ValueError:
                raise PSError(
                    'Exception calling "FromBase64String" with "1" argument(s): "The input is not a valid '
                    "Base-64 string as it contains a non-base 64 character, more than two padding "
                    'characters, or an illegal character among the padding characters. "',
                    category="NotSpecified: (:) [], MethodInvocationException",
                    error_id="FormatException", extent=node.extent)
        if node.kind == "static_invoke" and type_ in ("scriptblock", "management.automation.scriptblock") \
                and name == "create" and len(args) == 1:
            text = to_text(args[0])
            self.on_script(text)
            try:
                return ScriptBlock(text, parse(text))
            except ParseError as e:
                raise PSError(
                    f'Exception calling "Create" with "1" argument(s): "{e.message}"',
                    category="NotSpecified: (:) [], MethodInvocationException",
                    error_id="ParseException", extent=node.extent)
        if type_ not in ("text.encoding", "convert", "scriptblock", "management.automation.scriptblock"):
            raise PSError(f"Unable to find type [{node.type.name}].",
                          category=f"InvalidOperation: ({node.type.name}:TypeName) [], RuntimeException",
                          error_id="TypeNotFound", extent=node.type.extent)
        raise PSError(f"stand-in: [{node.type.name}]::{node.name} is not modelled",
                      error_id="StandInUnsupported", extent=node.extent)


def type_name(value):
    if isinstance(value, str):
        return "System.String"
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, int):
        return "System.Int32"
    if isinstance(value, list):
        return "System.Object[]"
    if isinstance(value, Hashtable):
        return "System.Collections.Hashtable"
    return "System.Management.Automation.PSCustomObject"


def member(target, name):
    """`.Name`: a property, or every item's property on an array (member enumeration)."""
    if isinstance(target, list):
        found = [member(item, name) for item in target]
        flat = []
        for value in found:
            if isinstance(value, list):
                flat.extend(value)
            elif value is not None:
                flat.append(value)
        return flat if flat else None
    if isinstance(target, PSObject):
        return target.prop(name)
    if isinstance(target, Hashtable):
        return target.get_ci(name)
    if isinstance(target, str) and name.lower() == "length":
        return len(target)
    return None
