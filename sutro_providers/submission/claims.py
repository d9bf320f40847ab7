"""Claims: which attempt of a run may create a shard's job right now.

Before the paid ``batch-inference`` call, the submitter records ``intent`` with
itself as ``holder`` and a lease (``claimed_until``), through a conditional ledger
write, so of two attempts that overlap exactly one holds the claim. The other
waits for the holder's job id and reattaches (``on_concurrent_attempt="wait"``),
or fails fast (``"fail"``). A claim lapses when its lease runs out, at once when
its holder ran on this host and its process is gone (a SIGKILLed worker), or when
the holder releases it after a failed call; the next attempt then reconciles by
the shard's job name before it creates anything.

The Opper run (:mod:`sutro_providers.opper_rows.run_record`) holds the same kind of
claim on its whole call phase (:func:`claim_in_force`): one attempt calls the rows
of a run at a time.
"""

from __future__ import annotations

import os
import secrets
import socket
import time

from sutro_providers.submission.ledger import ShardRecord

HOST = socket.gethostname()


def new_holder() -> str:
    """``host:pid:token``: one per pipeline object (an attempt)."""
    return f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def _process_gone(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != HOST or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claim_in_force(holder: str | None, claimed_until: float | None, me: str, now: float | None = None) -> bool:
    """True while the claim of ``holder`` (leased until ``claimed_until``, epoch
    seconds) keeps ``me`` out: it is another attempt's, its lease runs, and its
    holder's process is not known to be gone."""
    if not holder or holder == me:
        return False
    if claimed_until is not None and (now or time.time()) >= claimed_until:
        return False
    return not _process_gone(holder)


def held_by_other(shard: ShardRecord, me: str, now: float | None = None) -> bool:
    """True while another attempt's claim on ``shard`` is in force."""
    if shard.state != "intent" or shard.job_id:
        return False
    return claim_in_force(shard.holder, shard.claimed_until, me, now)
