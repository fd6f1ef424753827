"""`mentor train ... --nproc N`: start N training processes through `torch.distributed.run`
(the module behind `torchrun`), each running the same `mentor train` command."""

from __future__ import annotations

import sys


def without_nproc(argv: list[str]) -> list[str]:
    """The command line without its `--nproc N` (or `--nproc=N`)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def launch(argv: list[str], nproc: int) -> int:
    """Run `python -m mentor <argv without --nproc>` in `nproc` processes on this machine
    (a standalone c10d rendezvous on a free local port), as `torchrun --standalone
    --nproc_per_node N -m mentor ...` would; returns the exit status. A process that fails
    stops the others, and the message names its rank and how it ended."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    config = get_args_parser().parse_args(
        ["--standalone", "--nproc_per_node", str(nproc), "-m", "mentor", *without_nproc(argv)]
    )
    try:
        run(config)
    except ChildFailedError as err:
        for rank, failure in sorted(err.failures.items()):
            how = (
                f"was killed by {failure.signal_name()}"
                if failure.exitcode < 0
                else f"exited with status {failure.exitcode}"
            )
            print(
                f"mentor: error: rank {rank} (pid {failure.pid}) {how}; the other processes "
                "were stopped (see the output above for the first error)",
                file=sys.stderr,
            )
        return 1
    return 0
