"""Background compilation in a child process, so the app's own process never runs the compiler.

torch.compile in a thread of the app held Python's global lock for up to 0.37 s at a time (1.1 s
with the cores busy): its cyclic garbage collections over the compiler's half a million objects
(six of the seven stalls over 100 ms on a quiet 2-core machine) and stretches of its Python
code generation (the rest).
The GUI thread waits for that lock, so the window froze (docs/architecture.md §3, No stalls).

Here a child interpreter (`python -m faceedit.inference.compile_process`) loads the same
checkpoint file the engine loaded (the safe loader: no code from the file runs), builds the same
fast networks, and compiles each one ahead of time with TorchInductor (torch.export, then
AOTInductor with freezing: the weights are folded into the compiled code, as with
`optimize.compile_frozen`). It writes one shared library per network into a private folder and
says so on stdout, one JSON line per network. The app's process loads each library with ctypes
and calls its C entry point: the call releases Python's lock while the network runs, so a
compiled network blocks the GUI no more than an eager one.

The child runs at a lower CPU priority. It exits, deleting its folder, when its stdin closes:
when the app has loaded the libraries or is gone. Cancelling kills its process group. Results are the eager networks' up to float32
rounding; each library is checked against its eager network on the example call before use.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import torch
from torch import Tensor, nn
from torch.utils import _pytree as pytree

logger = logging.getLogger(__name__)

# The child yields the CPU to the app (and to anything else the user runs) while it compiles.
CHILD_NICENESS: Final[int] = 10
_OK: Final[int] = 0  # AOTI_RUNTIME_SUCCESS


class CompileError(RuntimeError):
    """The child could not compile a network; the message says why, in one line."""


@dataclass(frozen=True)
class CompileJob:
    """What the child needs to build the engine's networks exactly as the app runs them."""

    checkpoint: str
    tensor_sha256: str | None  # the loaded file's checksum: a file changed since is refused
    device: str
    precision: str
    folder: str  # private (mkdtemp) folder the libraries are written to


# --- the app's side --------------------------------------------------------------------------


class ChildCompile:
    """Runs the compiling child and hands out each network's library as the child reports it."""

    def __init__(self, job: CompileJob, names: Sequence[str]) -> None:
        self.job = job
        self._libraries: dict[str, str] = {}
        self._error: str | None = None
        self._changed = threading.Condition()
        self._finished = False
        self._process: subprocess.Popen[str] | None = None
        self._cancelled = False
        self._names = tuple(names)
        threading.Thread(target=self._run, name="faceedit-compile-child", daemon=True).start()

    def _run(self) -> None:
        command = [sys.executable, "-m", "faceedit.inference.compile_process"]
        log = Path(self.job.folder) / "compile.log"
        try:
            with self._changed, log.open("w", encoding="utf-8") as log_file:
                if self._cancelled:
                    raise CompileError("cancelled")
                # stdin stays open: the child ends itself when it closes (the app is gone).
                # Its warnings and logs go to a file: a pipe nobody reads would fill and stall it.
                self._process = subprocess.Popen(  # our own interpreter and module
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log_file,
                    text=True,
                    # Its own process group, so cancel() ends the C++ compilers it runs too;
                    # the same session, so its lower priority counts against the app's threads
                    # (a new session is a new scheduling group under Linux's autogroup).
                    process_group=0,
                )
            process = self._process
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(json.dumps(asdict(self.job)) + "\n")
            process.stdin.flush()
            for line in process.stdout:
                self._report(line)
            code = process.wait()
            if self._error is None and (code != 0 or set(self._names) - set(self._libraries)):
                self._error = "cancelled" if self._cancelled else _child_failure(code, log)
        except (OSError, CompileError) as error:
            self._error = str(error)
        finally:
            with self._changed:
                self._finished = True
                self._changed.notify_all()

    def _report(self, line: str) -> None:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            logger.debug("compile child: %s", line.rstrip())
            return
        with self._changed:
            if "error" in message:
                self._error = str(message["error"])
            elif "network" in message:
                self._libraries[str(message["network"])] = str(message["library"])
            self._changed.notify_all()

    def library(self, name: str) -> str:
        """The path of `name`'s compiled library once the child wrote it; CompileError if not."""
        with self._changed:
            while name not in self._libraries and self._error is None and not self._finished:
                self._changed.wait()
            if name in self._libraries:
                return self._libraries[name]
            if self._cancelled:
                raise CancelledError("cancelled")
            raise CompileError(self._error or f"the compiler wrote no {name}")

    def cancel(self) -> None:
        """End the child and every compiler it started (nothing waits for them)."""
        with self._changed:
            self._cancelled = True
            process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)

    def finish(self) -> None:
        """Done with the child: delete the libraries' folder (loaded libraries stay mapped;
        Linux and macOS) and close its stdin, which lets it exit."""
        shutil.rmtree(self.job.folder, ignore_errors=True)
        with self._changed:
            process = self._process
        if process is not None and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()


def new_job(checkpoint: Path, tensor_sha256: str | None, device: str, precision: str) -> CompileJob:
    """A job with a fresh private folder for its libraries."""
    folder = tempfile.mkdtemp(prefix="faceedit-compile-")
    return CompileJob(str(checkpoint), tensor_sha256, device, precision, folder)


def _child_failure(code: int, log: Path) -> str:
    """What a child that reported no error of its own died of: its exit status and last words."""
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    said = f": {lines[-1].strip()[:300]}" if lines else ""
    return f"the compiling process ended with exit status {code}{said}"


class CompiledNetwork:
    """A network compiled ahead of time, loaded from its shared library and called through ctypes.

    ctypes releases Python's lock for the whole call, so other threads (the GUI) run while the
    network computes. Calls take the tensors of the example call's arguments in the same
    order (None arguments are skipped, as export flattened them) and return what the eager
    network returned (`structure`: the eager output, whose tree of tensors is rebuilt).
    """

    def __init__(self, library: str, device: str, structure: Any) -> None:
        self._lib = ctypes.CDLL(library)
        self._spec = pytree.tree_flatten(structure)[1]
        handle_t = ctypes.c_void_p
        lib = self._lib
        lib.AOTInductorModelContainerCreateWithDevice.argtypes = [
            ctypes.POINTER(handle_t), ctypes.c_size_t, ctypes.c_char_p, ctypes.c_char_p,
        ]  # fmt: skip
        lib.AOTInductorModelContainerGetNumOutputs.argtypes = [
            handle_t, ctypes.POINTER(ctypes.c_size_t),
        ]  # fmt: skip
        lib.AOTInductorModelContainerRun.argtypes = [
            handle_t, ctypes.POINTER(handle_t), ctypes.c_size_t, ctypes.POINTER(handle_t),
            ctypes.c_size_t, handle_t, handle_t,
        ]  # fmt: skip
        lib.AOTInductorModelContainerDelete.argtypes = [handle_t]
        self._container = handle_t()
        folder = os.path.dirname(library).encode()  # where CUDA kernels would be looked up
        _check(
            lib.AOTInductorModelContainerCreateWithDevice(
                ctypes.byref(self._container), 1, device.encode(), folder
            ),
            "create the compiled network",
        )
        count = ctypes.c_size_t()
        _check(
            lib.AOTInductorModelContainerGetNumOutputs(self._container, ctypes.byref(count)),
            "read its outputs",
        )
        self._outputs = count.value
        if self._outputs != self._spec.num_leaves:
            raise CompileError(
                f"the compiled network returns {self._outputs} tensors, the network "
                f"{self._spec.num_leaves}"
            )

    def __call__(self, *args: Any) -> Any:
        tensors = [a for a in pytree.tree_flatten(args)[0] if isinstance(a, Tensor)]
        handle_t = ctypes.c_void_p
        # New handles to the same tensors, which the run takes over (frees).
        inputs = (handle_t * len(tensors))(
            *(
                _capsule_pointer(c)
                for c in torch._C._aoti.unsafe_alloc_void_ptrs_from_tensors(tensors)
            )
        )
        outputs = (handle_t * self._outputs)()
        _check(
            self._lib.AOTInductorModelContainerRun(
                self._container, inputs, len(tensors), outputs, self._outputs, None, None
            ),
            "run",
        )
        results = torch._C._aoti.alloc_tensors_by_stealing_from_void_ptrs(
            [_capsule(o) for o in outputs]
        )
        return pytree.tree_unflatten(results, self._spec)

    def __del__(self) -> None:
        container = getattr(self, "_container", None)
        if container:
            self._lib.AOTInductorModelContainerDelete(container)


def _check(code: int, what: str) -> None:
    if code != _OK:
        raise CompileError(f"the compiled network failed to {what} (AOTInductor error {code})")


_pythonapi = ctypes.pythonapi
_pythonapi.PyCapsule_GetPointer.restype = ctypes.c_void_p
_pythonapi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_pythonapi.PyCapsule_New.restype = ctypes.py_object
_pythonapi.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


def _capsule_pointer(capsule: object) -> int:
    return int(_pythonapi.PyCapsule_GetPointer(capsule, None))


def _capsule(pointer: int | None) -> Any:  # a PyCapsule (torch's stub calls it c_void_p)
    return _pythonapi.PyCapsule_New(pointer, None, None)


# --- the child's side ------------------------------------------------------------------------


class _Flat(nn.Module):
    """The network with its output flattened to a tuple of tensors (what export can package)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: Any) -> tuple[Tensor, ...]:
        return tuple(pytree.tree_flatten(self.module(*args))[0])


def compile_library(module: nn.Module, args: Sequence[Any], folder: Path, name: str) -> Path:
    """AOT-compile `module` for calls shaped like `args`; the path of its shared library."""
    import torch._inductor

    module.eval().requires_grad_(False)
    with torch.no_grad():
        program = torch.export.export(_Flat(module).eval(), tuple(args), strict=False)
        package = torch._inductor.aoti_compile_and_package(
            program,
            package_path=str(folder / f"{name}.pt2"),
            inductor_configs={"freezing": True},
        )
    target = folder / name
    with zipfile.ZipFile(package) as archive:
        members = [m for m in archive.namelist() if "/data/aotinductor/" in m]
        archive.extractall(target, members)
    libraries = sorted(target.rglob("*.so"))
    if len(libraries) != 1:
        raise CompileError(f"the compiler wrote {len(libraries)} libraries for the {name}")
    Path(package).unlink()
    return libraries[0]


def _end_with_parent(folder: str, reported: threading.Event) -> None:
    """Once stdin closes (the app is done with us, or gone), delete the job's folder and end:
    mid-compile the whole process group goes, the C++ compilers with it."""
    sys.stdin.read()
    shutil.rmtree(folder, ignore_errors=True)
    if reported.is_set():
        os._exit(0)
    os.killpg(0, signal.SIGKILL)


def child_main() -> int:
    """The child: read a CompileJob from stdin, compile each network, report on stdout."""
    with contextlib.suppress(OSError):
        os.nice(CHILD_NICENESS)
    job = CompileJob(**json.loads(sys.stdin.readline()))
    reported = threading.Event()
    watcher = threading.Thread(target=_end_with_parent, args=(job.folder, reported), daemon=True)
    watcher.start()
    # Only the reports go to the app's pipe; whatever a library prints goes to the log.
    reports = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def say(**message: Any) -> None:
        reports.write(json.dumps(message) + "\n")
        reports.flush()

    try:
        from faceedit.inference.engine import EditEngine
        from faceedit.weights import checkpoint as checkpoint_io

        loaded = checkpoint_io.load(job.checkpoint, device="cpu")
        if (
            job.tensor_sha256 is not None
            and loaded.header.get("tensor_sha256") != job.tensor_sha256
        ):
            raise CompileError(f"{job.checkpoint} changed since the app loaded it")
        engine = EditEngine(loaded, job.device, job.precision)  # type: ignore[arg-type]  # the app's resolved precision
        for name, module, args in engine.compile_examples():
            library = compile_library(module, args, Path(job.folder), name)
            say(network=name, library=str(library))
    except Exception as error:  # the app shows this line; the traceback goes to stderr
        import traceback

        traceback.print_exc()
        say(error=f"{type(error).__name__}: {_one_line(error)}")
    # Everything is said: the app reads to the end of the reports, loads the libraries, then
    # closes stdin (or goes), and the watcher removes the folder and ends this process.
    reports.close()
    reported.set()
    watcher.join()
    return 0


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300] + ("…" if len(text) > 300 else "")


def load_compiled(
    child: ChildCompile,
    name: str,
    device: str,
    eager: Callable[..., Any],
    args: Sequence[Any],
    tolerance: float,
) -> CompiledNetwork:
    """Wait for `name`'s library, load it and check it against the eager network on `args`:
    no output may differ by more than `tolerance` (float32 rounding, or reduced precision's)."""
    library = child.library(name)
    with torch.inference_mode():
        expected = eager(*args)
    network = CompiledNetwork(library, device, expected)
    with torch.inference_mode():
        got = network(*args)
    for want, have in zip(
        pytree.tree_flatten(expected)[0], pytree.tree_flatten(got)[0], strict=True
    ):
        if want.shape != have.shape:
            raise CompileError(
                f"the compiled {name} returns {tuple(have.shape)}, not {tuple(want.shape)}"
            )
        difference = float((want.float() - have.float()).abs().max()) if want.numel() else 0.0
        if not difference <= tolerance:
            raise CompileError(
                f"the compiled {name} differs from the network by {difference:.3g} "
                f"(more than {tolerance:g})"
            )
    return network


if __name__ == "__main__":
    sys.exit(child_main())
