"""What `POST /v1/chat/completions` takes, as typed models, and how the API refuses: every
refusal is an `ApiError`, sent as OpenAI's error body `{"error": {"message", "type", "param",
"code"}}`.

`parse(raw, limits)` reads a body into a `ChatRequest` or raises ApiError (400) naming the
first problem and where it is (`param`, e.g. "messages[2].content[0].image_url.url"); each
image and file part counts against api_max_images (a PDF's pages too, once it is read). Fields
OpenAI defines that this server cannot honour (n > 1, penalties, log probabilities, tools,
JSON output) are refused when they ask for something, accepted when they ask for nothing;
names OpenAI does not define are refused, so that a typo is not silently ignored. Not here:
decoding images and building the conversation (assistant/api.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from starlette.responses import Response

from assistant.config import ApiSettings, InputLimits
from assistant.errors import AssistantError


class ApiError(AssistantError):
    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error",
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = (
            status, message, param, code, kind)
        self.headers = headers

    def response(self) -> Response:
        return error_response(self.status, self.message, self.param, self.code, self.kind,
                              self.headers)


def error_response(status: int, message: str, param: str | None = None,
                   code: str | None = None, kind: str = "invalid_request_error",
                   headers: dict[str, str] | None = None) -> Response:
    """OpenAI's error body, as ASCII JSON: a lone surrogate echoed back is escaped, never
    the cause of a second error."""
    body = json.dumps({"error": {"message": message, "type": kind, "param": param,
                                 "code": code}})
    return Response(body, status, headers, media_type="application/json")


@dataclass(frozen=True)
class Limits:
    max_messages: int
    max_message_chars: int
    max_images: int
    max_request_chars: int

    @classmethod
    def of(cls, api: ApiSettings, limits: InputLimits) -> Limits:
        return cls(api.api_max_messages, limits.max_message_chars, api.api_max_images,
                   api.api_max_request_chars)


def _unicode(text: str) -> str:
    """Text a tokenizer can read: no lone surrogate (JSON's "\\ud800" escapes one)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise PydanticCustomError(
            "invalid_text", "the text holds a lone surrogate (\\u{code}) at character {at}, "
            "which is not Unicode text: send characters, or both halves of a pair",
            {"code": f"{ord(text[e.start]):04x}", "at": e.start + 1}) from None
    return text


Text = Annotated[str, Field(strict=True), AfterValidator(_unicode)]


def _given(url: str) -> str:
    if not url:
        raise PydanticCustomError("missing_field", "the image URL is empty")
    return url


def _one_or_list(value):
    return [value] if isinstance(value, str) else value


class ImageUrl(BaseModel):
    model_config = ConfigDict(extra="ignore")  # "detail": every picture is read one way
    url: Annotated[Text, AfterValidator(_given)]


class File(BaseModel):
    """A file sent inline (OpenAI's file part): a PDF, whose pages become pictures, or an
    image; `file_data` a data: URL or plain base64. Uploaded files (`file_id`) are not kept
    by this server."""

    model_config = ConfigDict(extra="ignore")
    file_data: Text | None = None
    filename: Text | None = None
    file_id: Text | None = None

    @model_validator(mode="after")
    def _inline(self) -> File:
        if self.file_data is None:
            if self.file_id is not None:
                raise PydanticCustomError(
                    "unsupported_content", "files by file_id are not kept by this server: send "
                    "the file inline as file_data (data:application/pdf;base64,...)")
            raise PydanticCustomError("missing_field", "a file part needs its file_data "
                                      "(data:application/pdf;base64,...)")
        if not self.file_data:
            raise PydanticCustomError("missing_field", "the file's file_data is empty")
        return self


class Part(BaseModel):
    """One part of a message's content: text, an image by URL (data: or http(s)), or a file
    (a PDF or an image, inline)."""

    model_config = ConfigDict(extra="ignore")
    type: Annotated[str, Field(strict=True)]
    text: Text | None = None
    image_url: Annotated[ImageUrl, BeforeValidator(lambda v: {"url": v} if isinstance(
        v, str) else v)] | None = None
    file: File | None = None

    @model_validator(mode="after")
    def _complete(self) -> Part:
        if self.type not in ("text", "image_url", "file"):
            raise PydanticCustomError("unsupported_content", "unsupported content part type "
                                      "'{kind}' (text, image_url, file)", {"kind": self.type})
        if getattr(self, self.type) is None:
            raise PydanticCustomError("missing_field", "a {kind} part needs its '{kind}' field",
                                      {"kind": self.type})
        return self


def _parts(value):
    """A string is one text part; null is no parts."""
    if isinstance(value, str):
        return [{"type": "text", "text": _unicode(value)}]
    if value is None:
        return []
    if not isinstance(value, list):
        raise PydanticCustomError("invalid_content", "content must be a string or a list "
                                  "of parts")
    return value


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")  # name, tool_steps of an answer sent back
    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[list[Part], BeforeValidator(_parts)] = []

    @property
    def text(self) -> str:
        return "\n".join(p.text for p in self.content if p.type == "text")

    @property
    def image_urls(self) -> list[str]:
        return [p.image_url.url for p in self.content if p.type == "image_url"]

    @property
    def attachments(self) -> int:
        """Its image and file parts (a PDF's pages are counted once it is read)."""
        return sum(p.type in ("image_url", "file") for p in self.content)

    @model_validator(mode="after")
    def _within_limits(self, info: ValidationInfo) -> Message:
        limit = info.context.max_message_chars
        if len(self.text) > limit:
            raise PydanticCustomError(
                "message_too_long", "{n} characters; the limit is {limit}",
                {"n": f"{len(self.text):,}", "limit": f"{limit:,}", "where": ("content",)})
        if self.role == "assistant" and self.attachments:
            raise PydanticCustomError("invalid_content", "assistant messages cannot carry "
                                      "images or files", {"where": ("content",)})
        return self


def _nothing(what: str):
    """A field OpenAI defines that this server cannot honour: `what` it accepts."""
    return Field(None, description=what, json_schema_extra={"unsupported": True})


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: Annotated[bool, Field(strict=True)] = False  # usage comes with the end


class ResponseFormat(BaseModel):
    type: Literal["text"]


class ChatRequest(BaseModel):
    """A chat completion request. Each field's description says what it must be, in the
    words of the error that refuses it."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(strict=True, description="a model id (GET /v1/models lists them)")
    messages: list[Message] = Field(description="a non-empty list of messages")
    stream: bool = Field(False, strict=True, description="true or false")
    max_tokens: int | None = Field(None, ge=1, le=1_000_000, strict=True,
                                   description="an integer from 1 to 1000000")
    max_completion_tokens: int | None = Field(None, ge=1, le=1_000_000, strict=True,
                                              description="an integer from 1 to 1000000")
    temperature: float | None = Field(None, ge=0, le=2, strict=True,
                                      description="a number from 0 to 2")
    top_p: float | None = Field(None, gt=0, le=1, strict=True,
                                description="a number above 0 and at most 1")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, strict=True,
                             description="an integer from 0 to 2**63-1")
    stop: Annotated[list[Annotated[Text, Field(min_length=1)]], Field(max_length=4),
                    BeforeValidator(_one_or_list)] | None = Field(
        None, description="a string or a list of up to 4 non-empty strings")
    stream_options: StreamOptions | None = Field(None, description='{"include_usage": '
                                                 'true or false}')
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    parallel_tool_calls: bool | None = None
    # asked of OpenAI, not answered here: refused unless they ask for nothing
    n: Literal[1] | None = _nothing("1: one answer per request (n > 1 is not supported)")
    frequency_penalty: Literal[0] | None = _nothing("0 (penalties are not supported)")
    presence_penalty: Literal[0] | None = _nothing("0 (penalties are not supported)")
    logit_bias: Annotated[dict[str, Any], Field(max_length=0)] | None = _nothing(
        "empty (logit bias is not supported)")
    logprobs: Literal[False] | None = _nothing("false (log probabilities are not supported)")
    top_logprobs: Literal[0] | None = _nothing("0 (log probabilities are not supported)")
    tools: Annotated[list[Any], Field(max_length=0)] | None = _nothing(
        "empty: tools are not called through this API's function calling; the model "
        "assistant-agent calls its own and returns their steps in tool_steps")
    tool_choice: Literal["none", "auto"] | None = _nothing('"none" or "auto" (no tools)')
    functions: Annotated[list[Any], Field(max_length=0)] | None = _nothing(
        "empty (function calling is not supported)")
    function_call: Literal["none", "auto"] | None = _nothing('"none" or "auto" (no functions)')
    response_format: ResponseFormat | None = _nothing('{"type": "text"} (JSON output is not '
                                                      'supported)')

    @field_validator("messages", mode="before")
    @classmethod
    def _not_too_many(cls, value, info: ValidationInfo):
        if isinstance(value, list) and len(value) > info.context.max_messages:
            raise PydanticCustomError(
                "too_many_messages", "{n} messages; at most {limit} per request (the "
                "server's api_max_messages)", {"n": f"{len(value):,}",
                                               "limit": f"{info.context.max_messages:,}"})
        return value

    @field_validator("messages")
    @classmethod
    def _images_and_last(cls, messages: list[Message], info: ValidationInfo):
        if not messages:
            raise PydanticCustomError("invalid_messages", "must be a non-empty list")
        chars = sum(len(m.text) for m in messages)
        if chars > info.context.max_request_chars:
            raise PydanticCustomError(
                "request_too_long", "{n} characters in all; at most {limit} per request (the "
                "server's api_max_request_chars): send the latest messages only, the oldest "
                "are dropped to fit the model's context anyway",
                {"n": f"{chars:,}", "limit": f"{info.context.max_request_chars:,}"})
        count, limit = 0, info.context.max_images
        for i, message in enumerate(messages):
            count += message.attachments
            if count > limit:
                raise PydanticCustomError(
                    "too_many_images", "too many images: at most {limit} per request",
                    {"limit": limit, "where": (i, "content")})
        if messages[-1].role != "user":
            raise PydanticCustomError("invalid_messages", "the last message must be the user's")
        return messages

    @property
    def max_new_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


def parse(raw: bytes, limits: Limits) -> ChatRequest:
    """The request in `raw` (a JSON body), or ApiError (400) saying what is wrong where."""
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ApiError(400, "the request body nests too deeply to be read (JSON of some "
                       "1,000 levels)", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise ApiError(400, f"the request body is not JSON ({e})", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    try:
        return ChatRequest.model_validate(body, context=limits)
    except ValidationError as e:
        raise refusal(e.errors(include_url=False)[0]) from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def refusal(error: dict) -> ApiError:
    """The ApiError for one of pydantic's errors, said in the request's own terms: where
    (`param`), what is wrong, and for the errors of this module their type as `code`."""
    loc = [*error["loc"], *(error.get("ctx") or {}).get("where", ())]
    param, kind = _param(loc), error["type"]
    field = ChatRequest.model_fields.get(loc[0]) if loc else None
    if kind == "extra_forbidden" and len(loc) == 1:
        return ApiError(400, f"unrecognized request argument '{param}'", param,
                        "unrecognized_argument")
    if kind == "missing":
        return ApiError(400, f"'{param}' is missing", param)
    if kind in CODES:
        return ApiError(400, f"{param}: {error['msg']}", param, kind)
    if field is not None and field.description and (len(loc) == 1 or loc[0] != "messages"):
        unsupported = (field.json_schema_extra or {}).get("unsupported")
        return ApiError(400, f"'{loc[0]}' must be {field.description}", loc[0],
                        "unsupported_parameter" if unsupported else None)
    message = error["msg"]
    return ApiError(400, f"{param}: {message[:1].lower()}{message[1:]}", param)


# the errors raised here, sent with their type as the error's code
CODES = {"invalid_text", "unsupported_content", "missing_field", "invalid_content",
         "message_too_long", "too_many_messages", "request_too_long", "too_many_images",
         "invalid_messages"}


def _param(loc: list) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out
