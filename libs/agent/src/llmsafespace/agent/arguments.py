"""The agent's command line, read without argparse (which costs every sandbox ~0.4 MB)."""

from __future__ import annotations

USAGE = """usage: python -m llmsafespace.agent (--socket PATH | --listen HOST:PORT)
         --token-file PATH [--workspace DIR] [--landlock] [--tcp-ports P,Q,...]
         [--language LANGUAGE]

  --socket PATH        serve on this Unix socket
  --listen HOST:PORT   serve on TCP
  --token-file PATH    the token clients must present (the file is deleted once read)
  --workspace DIR      user code's working directory (default: /workspace)
  --landlock           restrict to the sandbox paths
  --tcp-ports P,Q,...  with --landlock: the only TCP ports to connect to
  --language LANGUAGE  of run_code: python or javascript
                       (default: $LLMSAFESPACE_LANGUAGE, else python)"""

LANGUAGES = ("python", "javascript")
_VALUED = ("--socket", "--listen", "--token-file", "--workspace", "--tcp-ports", "--language")


class Arguments:
    """What the command line says."""

    def __init__(self, values: dict[str, str], landlock: bool) -> None:
        self.socket = values.get("--socket")
        self.listen = values.get("--listen")
        self.token_file = values["--token-file"]
        self.workspace = values.get("--workspace", "/workspace")
        self.tcp_ports = values.get("--tcp-ports")
        self.language = values["--language"]
        self.landlock = landlock


def _fail(message: str) -> SystemExit:
    return SystemExit(f"{USAGE}\nllmsafespace.agent: error: {message}")


def parse(argv: list[str], default_language: str) -> Arguments:
    """Parse ``argv`` (without the program name); exits with the usage on a mistake."""
    if "-h" in argv or "--help" in argv:
        print(USAGE)
        raise SystemExit(0)
    values = {"--language": default_language}
    landlock = False
    words = iter(argv)
    for word in words:
        name, given, value = word.partition("=")
        if name == "--landlock" and not given:
            landlock = True
        elif name in _VALUED:
            value = value if given else next(words, "")
            if not value:
                raise _fail(f"{name} needs a value")
            values[name] = value
        else:
            raise _fail(f"unrecognized argument {word!r}")
    if ("--socket" in values) == ("--listen" in values):
        raise _fail("give exactly one of --socket and --listen")
    if "--token-file" not in values:
        raise _fail("--token-file is required")
    if values["--language"] not in LANGUAGES:
        raise _fail(f"--language must be one of {', '.join(LANGUAGES)}")
    return Arguments(values, landlock)
