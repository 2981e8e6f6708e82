"""The one way to save and load faceedit models (docs/architecture.md §5).

A checkpoint is one `.safetensors` file: every tensor under a `parser.`, `generator.` or
`discriminator.` prefix, plus a JSON header in the safetensors metadata (format version, model
config, vocabularies, a checksum of the tensors, training metadata). Loading rebuilds the
networks from that config alone and never unpickles anything, so an untrusted file cannot run
code. Training state (optimizers, RNG, EMA) lives elsewhere (trainer); inference never needs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from faceedit import __version__
from faceedit.errors import CheckpointError, ConfigError
from faceedit.fileio import atomic_write_bytes
from faceedit.model.config import ModelConfig
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.generator import HierarchicalGenerator
from faceedit.model.parsing import build_parser
from faceedit.model.unified import UnifiedModel
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.vocab.labels import CLASS_NAMES
from faceedit.weights.state_match import compare_state

FORMAT_NAME: Final[str] = "faceedit"
FORMAT_VERSION: Final[int] = 1
HEADER_KEY: Final[str] = "faceedit"
Part = Literal["parser", "generator", "discriminator"]
PARTS: Final[tuple[Part, ...]] = ("parser", "generator", "discriminator")
_MAX_HEADER_BYTES: Final[int] = 100 * 1024 * 1024
# The most memory the weights a checkpoint's config describes may take (docs/architecture.md §7).
MAX_MODEL_BYTES: Final[int] = 4 * 2**30
_PICKLE_PROTOCOL_BYTE: Final[int] = 0x80
_ZIP_MAGIC: Final[bytes] = b"PK\x03\x04"


@dataclass
class LoadedCheckpoint:
    """Networks rebuilt from a checkpoint; a part the file does not hold is None."""

    path: Path
    config: ModelConfig
    parser: nn.Module | None
    generator: HierarchicalGenerator | None
    discriminator: HierarchicalDiscriminator | None
    metadata: dict[str, Any] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def contents(self) -> tuple[Part, ...]:
        return tuple(p for p in PARTS if getattr(self, p) is not None)

    def unified(self) -> UnifiedModel:
        """Parser and generator as one UnifiedModel (both must be present, or boxes regions)."""
        if self.generator is None:
            raise CheckpointError(f"{self.path} holds no generator, so it cannot edit expressions")
        if self.parser is None and self.config.region_source == "masks":
            raise CheckpointError(
                f"{self.path} holds generators but no parser to find the regions; "
                "import one with 'faceedit import-parser' or train one with 'faceedit-train parser'"
            )
        return UnifiedModel(self.config, parser=self.parser, generator=self.generator)


def save(
    path: str | os.PathLike[str],
    config: ModelConfig,
    *,
    parser: nn.Module | None = None,
    generator: nn.Module | None = None,
    discriminator: nn.Module | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the given networks and their config to one `.safetensors` file, atomically."""
    data = encode(
        config,
        parser=parser,
        generator=generator,
        discriminator=discriminator,
        metadata=metadata,
        where=str(path),
    )
    return atomic_write_bytes(path, data)


def encode(
    config: ModelConfig,
    *,
    parser: nn.Module | None = None,
    generator: nn.Module | None = None,
    discriminator: nn.Module | None = None,
    metadata: Mapping[str, Any] | None = None,
    where: str = "a checkpoint",
) -> bytes:
    """The bytes `save` writes (for a caller that checks their size first); `where` names the
    destination in errors."""
    modules = {"parser": parser, "generator": generator, "discriminator": discriminator}
    tensors: dict[str, torch.Tensor] = {}
    for part, module in modules.items():
        if module is None:
            continue
        for key, value in _unwrap(module).state_dict().items():
            tensors[f"{part}.{key}"] = value.detach().to("cpu").contiguous().clone()
    if not tensors:
        raise CheckpointError(f"nothing to save to {where}: give a parser, a generator or both")
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "faceedit_version": __version__,
        "contents": [p for p, m in modules.items() if m is not None],
        "config": config.to_dict(),
        "vocabularies": {"classes": list(CLASS_NAMES), "expressions": list(EXPRESSIONS)},
        "tensor_sha256": tensor_digest(tensors),
        "metadata": dict(metadata or {}),
    }
    return encode_with_header(tensors, header, what="checkpoint", where=where)


def write_with_header(
    path: str | os.PathLike[str],
    tensors: Mapping[str, torch.Tensor],
    header: Mapping[str, Any],
    what: str,
    header_key: str = HEADER_KEY,
) -> Path:
    """Write tensors plus a JSON header as one safetensors file, atomically (shared by the classifier)."""
    return atomic_write_bytes(
        path, encode_with_header(tensors, header, what, str(path), header_key)
    )


def encode_with_header(
    tensors: Mapping[str, torch.Tensor],
    header: Mapping[str, Any],
    what: str,
    where: str,
    header_key: str = HEADER_KEY,
) -> bytes:
    """Tensors plus a JSON header as the bytes of one safetensors file."""
    try:
        text = json.dumps(header, sort_keys=True)
    except TypeError as error:
        raise CheckpointError(
            f"{what} metadata for {where} is not JSON-serialisable: {error}"
        ) from None
    return safetensors_bytes(dict(tensors), metadata={header_key: text})


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of a faceedit checkpoint, checked for format and version, without tensors."""
    file = existing_file(path)
    _refuse_foreign_formats(file)
    try:
        with safe_open(str(file), framework="pt") as handle:
            raw = (handle.metadata() or {}).get(HEADER_KEY)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{file} is not a readable safetensors file ({error}); it may be truncated or damaged"
        ) from None
    if raw is None:
        raise CheckpointError(
            f"{file} is a safetensors file but not a faceedit checkpoint (no '{HEADER_KEY}' metadata); "
            "to use a face-parsing.PyTorch parser, convert its .pth with 'faceedit import-parser'"
        )
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{file}: the faceedit header is not valid JSON ({error})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{file}: the header does not describe a faceedit checkpoint")
    version = header.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{file}: format version {version!r} is not valid")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{file} was written by a newer faceedit (checkpoint format {version}; this one reads up "
            f"to {FORMAT_VERSION}); upgrade faceedit to open it"
        )
    return header


def load(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild every network a checkpoint holds from its stored config; refuse anything odd."""
    file = Path(path)
    header = read_header(file)
    try:
        config = ModelConfig.from_dict(header["config"])
    except (ConfigError, KeyError, TypeError) as error:
        raise CheckpointError(f"{file}: the stored model config is invalid: {error}") from None
    contents = header.get("contents")
    if not isinstance(contents, list) or not contents or any(c not in PARTS for c in contents):
        raise CheckpointError(
            f"{file}: 'contents' must list some of {list(PARTS)}, got {contents!r}"
        )

    builders: dict[str, Callable[[], nn.Module]] = {
        "parser": lambda: build_parser(config.parser),
        "generator": lambda: HierarchicalGenerator(config),
        "discriminator": lambda: HierarchicalDiscriminator(config),
    }
    check_memory(file, config, {part: builders[part] for part in contents})
    tensors = read_tensors(file)
    expected_digest = header.get("tensor_sha256")
    if expected_digest != tensor_digest(tensors):
        raise CheckpointError(
            f"{file}: the tensors do not match the checksum stored when the file was saved; "
            "the file was modified or damaged after saving"
        )
    check_finite(file, tensors)
    modules: dict[str, nn.Module | None] = dict.fromkeys(PARTS)
    for part in contents:
        module = builders[part]()
        prefix = f"{part}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        check_state(file, part, module, state)
        module.load_state_dict(state, strict=True)
        modules[part] = module.to(device).eval()
    stray = sorted({k.split(".", 1)[0] for k in tensors} - set(contents))
    if stray:
        raise CheckpointError(
            f"{file}: tensors for {stray} are present but not listed in 'contents'"
        )
    generator, discriminator = modules["generator"], modules["discriminator"]
    assert generator is None or isinstance(generator, HierarchicalGenerator)
    assert discriminator is None or isinstance(discriminator, HierarchicalDiscriminator)
    return LoadedCheckpoint(
        path=file,
        config=config,
        parser=modules["parser"],
        generator=generator,
        discriminator=discriminator,
        metadata=dict(header.get("metadata") or {}),
        header=header,
    )


def check_memory(
    file: Path, config: ModelConfig, builders: Mapping[str, Callable[[], nn.Module]]
) -> None:
    """Refuse a config whose networks would not fit in MAX_MODEL_BYTES, before allocating them.

    The networks are built on the meta device (shapes only: no memory, no initialisation),
    so the estimate is exact for the weights. Activations grow with the parser's resolution
    and the crop size, which ModelConfig bounds.
    """
    total = 0
    try:
        with torch.device("meta"):
            for build in builders.values():
                module = build()
                total += sum(t.numel() * t.element_size() for t in module.state_dict().values())
    except (RuntimeError, ValueError, TypeError) as error:
        raise CheckpointError(f"{file}: the stored model config cannot be built: {error}") from None
    if total > MAX_MODEL_BYTES:
        raise CheckpointError(
            f"{file}: the stored config asks for networks of {total / 2**30:.1f} GiB "
            f"(faceedit loads at most {MAX_MODEL_BYTES / 2**30:.0f} GiB); the file is not a "
            "model faceedit can use"
        )


def check_finite(file: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """Refuse weights holding NaN or infinity: they would turn every edited face black."""
    bad = [
        key
        for key, value in tensors.items()
        if value.is_floating_point()
        and value.numel()
        and not torch.isfinite(value.sum(dtype=torch.float64))
    ]
    if bad:
        shown = ", ".join(sorted(bad)[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CheckpointError(
            f"{file}: {len(bad)} tensor(s) hold NaN or infinite values ({shown}); the model "
            "diverged in training or the file is damaged. Use an earlier checkpoint"
        )


def _unwrap(module: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel or torch.compile wrappers, whose keys we store."""
    inner = getattr(module, "module", None)
    if isinstance(inner, nn.Module):
        return _unwrap(inner)
    original = getattr(module, "_orig_mod", None)
    return _unwrap(original) if isinstance(original, nn.Module) else module


def existing_file(path: str | os.PathLike[str]) -> Path:
    """The path as a Path if it is a non-empty file; CheckpointError saying what is wrong if not."""
    file = Path(path)
    if not file.exists():
        raise CheckpointError(f"checkpoint {file} does not exist; check the path")
    if not file.is_file():
        raise CheckpointError(f"checkpoint {file} is not a file")
    if file.stat().st_size < 8:
        raise CheckpointError(
            f"checkpoint {file} is empty or truncated ({file.stat().st_size} bytes)"
        )
    return file


def _refuse_foreign_formats(file: Path) -> None:
    """Name the common wrong files (PyTorch pickles and zips) before safetensors sees them."""
    try:
        with open(file, "rb") as handle:
            head = handle.read(9)
    except PermissionError:
        raise CheckpointError(
            f"checkpoint {file} cannot be read: permission denied; check that your user may "
            "read this file"
        ) from None
    except OSError as error:
        raise CheckpointError(
            f"checkpoint {file} cannot be read ({error.strerror or error})"
        ) from None
    (header_length,) = struct.unpack("<Q", head[:8])
    plausible = header_length <= min(_MAX_HEADER_BYTES, file.stat().st_size - 8)
    if plausible and head[8:9] == b"{":
        return
    if head.startswith(_ZIP_MAGIC) or head[0] == _PICKLE_PROTOCOL_BYTE:
        raise CheckpointError(
            f"{file} is a PyTorch pickle/.pth file, not a faceedit .safetensors checkpoint; faceedit never "
            "unpickles files. For a face-parsing.PyTorch parser run 'faceedit import-parser' on it"
        )
    raise CheckpointError(
        f"{file} is not a safetensors file (it does not start with a safetensors header)"
    )


def read_tensors(file: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file; a damaged file becomes a CheckpointError."""
    try:
        with safe_open(str(file), framework="pt") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (safe_open has no iteration)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"{file}: reading the tensors failed ({error}); the file may be truncated"
        ) from None


def tensor_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes, in key order: detects edits and bit rot."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        value = tensors[key].contiguous()
        digest.update(f"{key}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(
            value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b""
        )
    return digest.hexdigest()


def check_state(
    file: Path, part: str, module: nn.Module, state: Mapping[str, torch.Tensor]
) -> None:
    """Refuse a state dict whose keys or shapes differ from the module's, listing a few of each."""
    mismatch = compare_state(module.state_dict(), state)
    if mismatch:
        raise CheckpointError(
            f"{file}: the {part} tensors do not match the stored config ({mismatch.summary()}); "
            "the file was edited or written by incompatible code"
        )
