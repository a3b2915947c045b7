"""Local Mistral chat-completion server for integration tests (deterministic answers, faults).

`MistralServer` speaks ``POST /v1/chat/completions`` on 127.0.0.1 the way api.mistral.ai does
(same envelope: id, object, created, model, choices, usage) and records every request:

* by default it answers the summarization prompts of ``conf/base/parameters_summarization.yml``
  with a valid JSON object: a plain-language English summary (150-400 characters, never a copy of
  the abstract) and, for every requested language ("fr (French), es (Spanish)"), a fixed natural
  sentence pair in that language naming the paper, which the offline language detector
  recognizes; a translate prompt gets ``{"translations": {...}}``;
* token usage is deterministic: prompt tokens = words of the messages, completion tokens =
  words of the answer's content;
* faults (HTTP errors with headers and bodies, delays, malformed bodies, non-JSON or invalid
  content, a wrong-language translation, an overlong summary) can be queued with `inject`; each
  is consumed, in order, by exactly one request (optionally only by a request whose prompt
  contains `match`, e.g. a paper's title).

Run ``python -m tests.support.mistral_server [--port N] [--api-key KEY]`` to serve by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import yaml

from arxiv_kedro.llm import summaries
from tests.support.local_server import LocalServer

# The project's own prompts, so the tests send what the pipeline sends.
PROMPTS = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "conf/base/parameters_summarization.yml").read_text()
)["summarization"]["prompts"]


def prompt_messages(name: str, **values: Any) -> list[dict[str, str]]:
    """The system and user messages of the project's prompt `name`, filled with `values`."""
    prompt = PROMPTS[name]
    return [
        {"role": role, "content": summaries.render(prompt[role], **values)}
        for role in ("system", "user")
    ]


COMPLETIONS_PATH = "/v1/chat/completions"
JSON_CONTENT_TYPE = "application/json"

# "Then translate your summary into: fr (French), es (Spanish). Use the language codes…"
_LANGUAGE_LIST = re.compile(r"into:\s*(?P<list>[^\n]*?)\.\s+Use", re.IGNORECASE)
_LANGUAGE_CODE = re.compile(r"\b([a-z]{2,3})\s*\(")
_TITLE = re.compile(r"^Title:\s*(?P<title>.+)$", re.MULTILINE)
_SUMMARY = re.compile(r"^Summary:\s*(?P<summary>.+)", re.MULTILINE | re.DOTALL)
_QUOTED_TITLE = re.compile(r"“(?P<title>[^”]+)”")
TITLE_CHARS = 90

SUMMARY_TEMPLATE = (
    "In plain words, the paper “{title}” asks a simple question and answers it with care. "
    "The authors explain what problem they tackle, describe how they approached it, and show "
    "why their results could matter to other people working on similar questions."
)
TRANSLATION_TEMPLATES = {
    "fr": (
        "En termes simples, l’article « {title} » pose une question précise et y répond avec "
        "soin. Les auteurs expliquent le problème qu’ils étudient, décrivent leur méthode et "
        "montrent pourquoi leurs résultats pourraient être utiles à d’autres chercheurs."
    ),
    "es": (
        "En pocas palabras, el artículo «{title}» plantea una pregunta concreta y la responde "
        "con cuidado. Los autores explican el problema que estudian, describen su método y "
        "muestran por qué sus resultados podrían ser útiles para otros investigadores."
    ),
    "de": (
        "Einfach gesagt stellt der Artikel „{title}“ eine klare Frage und beantwortet sie "
        "sorgfältig. Die Autoren erklären, welches Problem sie untersuchen, beschreiben ihre "
        "Methode und zeigen, warum ihre Ergebnisse auch für andere Forscher wichtig sein könnten."
    ),
    "it": (
        "In parole semplici, l’articolo «{title}» pone una domanda precisa e risponde con cura. "
        "Gli autori spiegano il problema che studiano, descrivono il loro metodo e mostrano "
        "perché i loro risultati potrebbero essere utili ad altri ricercatori."
    ),
    "pt": (
        "Em palavras simples, o artigo «{title}» faz uma pergunta precisa e responde com "
        "cuidado. Os autores explicam o problema que estudam, descrevem o seu método e mostram "
        "por que os seus resultados podem ser úteis para outros investigadores."
    ),
    "nl": (
        "Eenvoudig gezegd stelt het artikel „{title}” een duidelijke vraag en beantwoordt die "
        "zorgvuldig. De auteurs leggen uit welk probleem ze onderzoeken, beschrijven hun methode "
        "en laten zien waarom hun resultaten ook voor andere onderzoekers belangrijk zijn."
    ),
}
ERROR_MESSAGES = {
    400: ("Invalid request: the prompt could not be processed", "invalid_request_error"),
    401: ("Unauthorized", "authentication_error"),
    403: ("Forbidden: this key has no access to the requested model", "permission_error"),
    404: ("Not found", "not_found_error"),
    422: ("Unprocessable entity", "invalid_request_error"),
    429: ("Requests rate limit exceeded", "rate_limited"),
    500: ("Internal server error", "internal_error"),
    502: ("Bad gateway", "internal_error"),
    503: ("Service unavailable: the model is overloaded", "service_unavailable"),
}


# --- deterministic answers ----------------------------------------------------------------


def short_title(title: str) -> str:
    """The title on one line, cut at a word boundary to at most `TITLE_CHARS` characters."""
    title = " ".join(title.split()).replace("“", '"').replace("”", '"')
    if len(title) <= TITLE_CHARS:
        return title
    return title[:TITLE_CHARS].rsplit(" ", 1)[0].rstrip(",;:")


def summary_text(title: str) -> str:
    """The English plain-language summary the server writes for a paper titled `title`."""
    return SUMMARY_TEMPLATE.format(title=short_title(title))


def translation_text(language: str, title: str) -> str:
    """The server's translation into `language` (unknown codes: the English text, tagged)."""
    template = TRANSLATION_TEMPLATES.get(language)
    if template is None:
        return f"[{language}] {summary_text(title)}"
    return template.format(title=short_title(title))


def word_count(text: str) -> int:
    return len(text.split())


def requested_languages(prompt: str) -> list[str]:
    """The language codes a prompt lists ("fr (French), es (Spanish)"), in order."""
    match = _LANGUAGE_LIST.search(prompt)
    return _LANGUAGE_CODE.findall(match["list"]) if match else []


def prompt_kind(prompt: str) -> str:
    """ "summarize" (a Title: line), "translate" (a Summary: section) or "other"."""
    if _TITLE.search(prompt):
        return "summarize"
    if _SUMMARY.search(prompt):
        return "translate"
    return "other"


def prompt_title(prompt: str) -> str:
    """The paper's title: the Title: line, else the quoted title of the summary to translate."""
    title = _TITLE.search(prompt)
    if title:
        return title["title"].strip()
    summary = _SUMMARY.search(prompt)
    if summary:
        quoted = _QUOTED_TITLE.search(summary["summary"])
        if quoted:
            return quoted["title"]
        return " ".join(summary["summary"].split()[:8])
    return "this paper"


def default_answer(prompt: str) -> dict[str, Any]:
    """The valid structured answer to a summarization or translation prompt."""
    title = prompt_title(prompt)
    translations = {code: translation_text(code, title) for code in requested_languages(prompt)}
    if prompt_kind(prompt) == "translate":
        return {"translations": translations}
    return {"summary": summary_text(title), "translations": translations}


def user_prompt(body: Any) -> str:
    """The user message(s) of a chat-completion request body, joined."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return ""
    return "\n".join(
        str(m.get("content", ""))
        for m in messages
        if isinstance(m, dict) and m.get("role") == "user"
    )


def prompt_tokens(body: Any) -> int:
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return 0
    return sum(word_count(str(m.get("content", ""))) for m in messages if isinstance(m, dict))


# --- faults ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """A misbehaviour applied to exactly one future request; build it with the factories below.

    `match`: only a request whose user prompt contains this text consumes the fault.
    """

    kind: str
    code: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    seconds: float = 0.0
    content: str | None = None
    language: str | None = None
    written_in: str = "en"
    chars: int = 0
    match: str | None = None


def status(
    code: int,
    *,
    retry_after: float | str | None = None,
    headers: dict[str, str] | None = None,
    body: str | dict | None = None,
    match: str | None = None,
) -> Fault:
    """Answer HTTP `code` with a Mistral-style error JSON (or `body`) and optional headers."""
    extra = dict(headers or {})
    if retry_after is not None:
        extra["Retry-After"] = (
            f"{retry_after:g}" if isinstance(retry_after, int | float) else retry_after
        )
    text = json.dumps(body) if isinstance(body, dict) else body
    return Fault("status", code=code, headers=tuple(extra.items()), body=text, match=match)


def delay(seconds: float, match: str | None = None) -> Fault:
    """Sleep `seconds` before answering normally (a client with a shorter timeout gives up)."""
    return Fault("delay", seconds=seconds, match=match)


def malformed(match: str | None = None) -> Fault:
    """HTTP 200, ``application/json``, but the normal body cut in half (not JSON)."""
    return Fault("malformed", match=match)


def not_json(match: str | None = None) -> Fault:
    """A valid envelope whose message content is prose, not a JSON object."""
    return Fault("content", content="Sure! Here is a short summary of the paper.", match=match)


def invalid_content(match: str | None = None) -> Fault:
    """Content that is valid JSON but fits neither answer schema."""
    content = json.dumps({"summary": None, "translations": ["fr", "es"]})
    return Fault("content", content=content, match=match)


def content(text: str, match: str | None = None) -> Fault:
    """A valid envelope carrying exactly `text` as the message content."""
    return Fault("content", content=text, match=match)


def wrong_language(language: str, written_in: str = "en", match: str | None = None) -> Fault:
    """The normal answer, except that the translation into `language` is in `written_in`."""
    return Fault("wrong_language", language=language, written_in=written_in, match=match)


def overlong(chars: int = 2000, match: str | None = None) -> Fault:
    """The normal answer with an English summary of about `chars` characters."""
    return Fault("overlong", chars=chars, match=match)


# --- the server -----------------------------------------------------------------------------


@dataclass
class RequestLog:
    """One request received by the server."""

    time: float
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the decoded JSON body, or None when it was not JSON
    status: int = 0
    fault: str | None = None
    response_content: str | None = field(default=None, repr=False)  # the message content
    answer: Any = field(default=None, repr=False)  # the content, decoded (None: not JSON)
    usage: dict[str, int] | None = None  # the usage billed (HTTP 200 with a readable body)

    @property
    def authorization(self) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == "authorization"), None)

    @property
    def prompt(self) -> str:
        """The user message(s)."""
        return user_prompt(self.body)


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()


def _error(code: int, message: str | None = None) -> _Response:
    default, kind = ERROR_MESSAGES.get(code, (f"HTTP {code}", "error"))
    payload = {
        "object": "error",
        "message": message or default,
        "type": kind,
        "param": None,
        "code": str(code),
    }
    return _Response(code, json.dumps(payload).encode())


class MistralServer(LocalServer):
    """A local Mistral-compatible chat-completion endpoint on 127.0.0.1.

    `api_key`: when set, any other bearer token gets 401 (like a revoked key); otherwise any
    non-empty ``Authorization: Bearer …`` is accepted.
    """

    name = "mistral-server"

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.requests: list[RequestLog] = []
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the `server_url` for the Mistral SDK."""
        return self.base_url

    @property
    def completions_url(self) -> str:
        return self.url + COMPLETIONS_PATH

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def count(self) -> int:
        """Requests received so far."""
        with self._lock:
            return len(self.requests)

    def completions(self) -> list[RequestLog]:
        with self._lock:
            return [r for r in self.requests if r.path == COMPLETIONS_PATH]

    # --- handling -----------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        received = time.time()
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        log = RequestLog(
            received, handler.command, handler.path.split("?", 1)[0], dict(handler.headers), body
        )
        with self._lock:
            fault = self._take_fault(user_prompt(body))
            self.requests.append(log)
        response = self._respond(handler, log, raw, fault)
        log.status, log.fault = response.status, fault.kind if fault else None
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        self._write(handler, response)

    def _take_fault(self, prompt: str) -> Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.match is None or fault.match in prompt:
                return self._faults.pop(index)
        return None

    def _respond(
        self, handler: BaseHTTPRequestHandler, log: RequestLog, raw: bytes, fault: Fault | None
    ) -> _Response:
        if log.path != COMPLETIONS_PATH:
            return _error(404, f"no route for {log.method} {log.path}")
        if log.method != "POST":
            return _error(405, "Method Not Allowed")
        authorization = log.authorization or ""
        token = authorization.removeprefix("Bearer ").strip()
        if not authorization.startswith("Bearer ") or not token:
            return _error(401, "No API key provided")
        if self.api_key is not None and token != self.api_key:
            return _error(401)
        if fault is not None and fault.kind == "status":
            default = _error(fault.code)
            body = fault.body.encode() if fault.body is not None else default.body
            return _Response(fault.code, body, JSON_CONTENT_TYPE, fault.headers)
        if not isinstance(log.body, dict) or not isinstance(log.body.get("messages"), list):
            return _error(422, f"invalid request body: {raw[:100]!r}")
        text = self._content(log.prompt, fault)
        log.response_content = text
        with contextlib.suppress(ValueError):
            log.answer = json.loads(text)
        envelope = self._envelope(log.body, text)
        encoded = json.dumps(envelope).encode()
        if fault is not None and fault.kind == "malformed":
            return _Response(200, encoded[: len(encoded) // 2])
        log.usage = envelope["usage"]
        return _Response(200, encoded)

    @staticmethod
    def _content(prompt: str, fault: Fault | None) -> str:
        if fault is not None and fault.kind == "content":
            return fault.content or ""
        answer = default_answer(prompt)
        if fault is not None and fault.kind == "wrong_language":
            title = prompt_title(prompt)
            wrong = (
                summary_text(title)
                if fault.written_in == "en"
                else translation_text(fault.written_in, title)
            )
            answer["translations"][fault.language] = wrong
        if fault is not None and fault.kind == "overlong" and "summary" in answer:
            sentence = answer["summary"] + " "
            long = (sentence * (fault.chars // len(sentence) + 1))[: fault.chars]
            answer["summary"] = long[:-1] + "." if long[-1].isspace() else long
        return json.dumps(answer, ensure_ascii=False)

    def _envelope(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        with self._lock:
            number = next(self._ids)
        completion = word_count(text)
        prompt = prompt_tokens(body)
        return {
            "id": f"cmpl-{number:08d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "mistral-small-latest",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": text,
                        "tool_calls": None,
                        "prefix": False,
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }


def main() -> None:
    """Serve deterministic answers until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free)")
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any)")
    args = parser.parse_args()
    server = MistralServer(api_key=args.api_key).start(args.port)
    print(f"Mistral-compatible API at {server.url}; Ctrl-C stops", flush=True)
    server.serve_until_interrupted()


if __name__ == "__main__":
    main()
