# Ways to hand one nft script to the kernel: libnftables in-process through
# ctypes, or the `nft` binary as a child process.
#
# Strategy: the backend builds plain nft scripts (text) and gives each one to
# a runner as a single unit. Both runners parse the whole text before
# sending it, so a script of several commands is one atomic netlink batch:
# either every command takes effect or none does.
# - LibNftablesRunner keeps one nft context (one netlink socket) for the life
#   of the daemon, so a grant costs about 0.1 ms and no fork. A context works
#   on the network namespace of the process that created it.
# - NftCommandRunner runs ["nft", "-f", "-"] with the script on stdin, never a
#   shell. JSON listings are passed as one argv word instead
#   (["nft", "-j", "--", script]): nft 1.0.6 with -j first tries to read the
#   -f input as JSON, which drains stdin, and then parses an empty script
#   without a word of complaint.
#
# Invariants:
# - Both runners return the same stdout for the same script and raise
#   FirewallError with the same one-line message for the same failure
#   (nft's "file:line:col: Error: reason" plus the offending command line).
# - Every child process has a timeout; nothing here waits forever.

from __future__ import annotations

import ctypes
import logging
from typing import Protocol

from fwknopd_uci.firewall.base import FirewallError

__all__ = [
    "LIBNFTABLES_SONAME",
    "NFT_COMMAND_TIMEOUT",
    "LibNftablesRunner",
    "NftCommandRunner",
    "NftRunner",
    "default_runner",
    "summarise_nft_error",
]

log = logging.getLogger(__name__)

LIBNFTABLES_SONAME = "libnftables.so.1"

# Output flag of libnftables (nftables/libnftables.h, NFT_CTX_OUTPUT_JSON).
_NFT_CTX_OUTPUT_JSON = 1 << 4
_NFT_CTX_DEFAULT = 0
# How nft words an error that came back from the kernel over netlink.
_KERNEL_ERROR = "Could not process rule:"

# A grant is a handful of netlink messages; even a listing of a large fw4
# ruleset takes well under a second. Ten seconds means nft is stuck (for
# example on a lock), and the daemon must not hang with it.
NFT_COMMAND_TIMEOUT = 10.0


class NftRunner(Protocol):
    """Runs one nft script and returns what nft printed."""

    def run(self, script: str, *, json_output: bool = False) -> str:
        """Run ``script`` (one or more nft commands) as a single transaction.

        Args:
            script: nft commands, one per line.
            json_output: print listings as JSON (``nft -j``).

        Returns:
            nft's standard output (empty for most changes).

        Raises:
            FirewallError: nft refused the script or could not be run.
        """
        ...


def summarise_nft_error(stderr: str) -> str:
    """Turn nft's multi-line error report into one log line.

    nft reports ``[location: ]Error: reason``, then the command it refused,
    then a caret line. The location differs between the binary
    ("/dev/stdin:1:22-27: ") and the library (none), so it is dropped, and
    the last error wins: that is the one about the command that failed.

    Errors the kernel returned ("Could not process rule: ...") are given
    without the command: for a script of several commands, libnftables 1.0.6
    names the wrong one (the binary reading -f gets it right), and a wrong
    hint is worse than none. The callers say what they were doing.
    """
    lines = stderr.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        _, marker, reason = lines[index].partition("Error: ")
        if not marker:
            continue
        reason = reason.strip()
        command = lines[index + 1].strip() if index + 1 < len(lines) else ""
        # A caret line or a second error is not the command.
        if (command and not reason.startswith(_KERNEL_ERROR)
                and not set(command) <= {"^", "~", " "} and "Error: " not in command):
            return f"nft: {reason}: {command}"
        return f"nft: {reason}"
    text = " ".join(line.strip() for line in lines if line.strip())
    return f"nft: {text}" if text else "nft failed without a message"


class LibNftablesRunner:
    """Runs scripts through libnftables in this process (one nft context).

    Raises:
        FirewallError: at construction, if the library cannot be loaded or
            refuses to make a context.
    """

    def __init__(self, soname: str = LIBNFTABLES_SONAME) -> None:
        try:
            lib = ctypes.CDLL(soname)
        except OSError as exc:
            raise FirewallError(f"cannot load {soname}: {exc}") from exc
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_free.restype = None
        for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_int
        for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_char_p
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_output_set_flags.restype = None
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        ctx = lib.nft_ctx_new(_NFT_CTX_DEFAULT)
        if not ctx:
            raise FirewallError(f"{soname}: nft_ctx_new failed")
        # Without buffering, libnftables prints to our stdout/stderr; with it,
        # each get_*_buffer call returns (and resets) what the last run wrote.
        if lib.nft_ctx_buffer_output(ctx) != 0 or lib.nft_ctx_buffer_error(ctx) != 0:
            lib.nft_ctx_free(ctx)
            raise FirewallError(f"{soname}: cannot buffer nft output")
        self._lib = lib
        self._ctx: int | None = ctx

    def run(self, script: str, *, json_output: bool = False) -> str:
        """Run ``script`` in this process; see NftRunner.run."""
        if self._ctx is None:
            raise FirewallError("nft runner used after close()")
        self._lib.nft_ctx_output_set_flags(
            self._ctx, _NFT_CTX_OUTPUT_JSON if json_output else 0)
        rc = self._lib.nft_run_cmd_from_buffer(self._ctx, script.encode())
        # Read both buffers every time, so neither carries over to the next run.
        out = _decode(self._lib.nft_ctx_get_output_buffer(self._ctx))
        err = _decode(self._lib.nft_ctx_get_error_buffer(self._ctx))
        if rc != 0:
            log.debug("nft.failed runner=lib script=%r stderr=%r", script, err)
            raise FirewallError(summarise_nft_error(err))
        return out

    def close(self) -> None:
        """Free the nft context; the runner cannot be used afterwards."""
        if self._ctx is not None:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None


class NftCommandRunner:
    """Runs scripts with the nft binary, one child process per script."""

    def __init__(self, nft: str = "nft", *, timeout: float = NFT_COMMAND_TIMEOUT) -> None:
        self._nft = nft
        self._timeout = timeout

    def run(self, script: str, *, json_output: bool = False) -> str:
        """Run ``script`` with the nft binary; see NftRunner.run."""
        # Only this fallback runner forks; importing subprocess here keeps it
        # off the daemon's idle RSS (about 0.2 MB).
        import subprocess

        if json_output:
            argv, stdin = [self._nft, "-j", "--", script], None
        else:
            argv, stdin = [self._nft, "-f", "-"], script
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                  timeout=self._timeout, check=False)
        except FileNotFoundError as exc:
            raise FirewallError(f"{self._nft} not found: is nftables installed?") from exc
        except subprocess.TimeoutExpired as exc:
            raise FirewallError(f"{self._nft} did not finish in {self._timeout:g} s") from exc
        except OSError as exc:
            raise FirewallError(f"cannot run {self._nft}: {exc}") from exc
        if proc.returncode != 0:
            log.debug("nft.failed runner=cmd script=%r stderr=%r", script, proc.stderr)
            raise FirewallError(summarise_nft_error(proc.stderr))
        return proc.stdout

    def close(self) -> None:
        """Nothing to release; present so both runners close alike."""


def default_runner() -> LibNftablesRunner | NftCommandRunner:
    """The fastest runner this system offers (an NftRunner).

    libnftables when it loads (no process per grant), otherwise the nft
    binary. The caller owns the result and should ``close()`` it.
    """
    try:
        return LibNftablesRunner()
    except FirewallError as exc:
        log.info("firewall.runner using the nft binary (%s)", exc)
        return NftCommandRunner()


def _decode(raw: bytes | None) -> str:
    return raw.decode("utf-8", errors="replace") if raw else ""
