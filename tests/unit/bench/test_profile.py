"""The profile helpers the encryption benchmark reads py-spy's output with, and the runner's quick mode."""

from __future__ import annotations

from pathlib import Path

from bench.encryption import sealing_frame
from bench.profile import idle, share, stacks, top_functions
from bench.run import QUICK, arguments

COLLAPSED = """\
<module> (circles:6);run (asyncio/runners.py:190);EpollSelector.select (selectors.py:468) 50
<module> (circles:6);run (asyncio/runners.py:190);UnitOfWork.commit (services/runtime/worker.py:154);\
encode_record (services/protection/codec.py:35);Sealer.seal_json (services/protection/sealer.py:64);\
seal (services/protection/sealing.py:89) 20
<module> (circles:6);run (asyncio/runners.py:190);decode_record (services/protection/codec.py:43);\
decode (schemas/envelope.py:140);Sealer.open_json (services/protection/sealer.py:73) 10
<module> (circles:6);run (asyncio/runners.py:190);Sealer.parse (services/protection/sealer.py:78);\
BaseModel.model_validate (pydantic/main.py:792) 30
<module> (circles:6);run (asyncio/runners.py:190);encode (schemas/envelope.py:110) 40
"""


def collapsed(tmp_path: Path) -> Path:
    path = tmp_path / "worker.txt"
    path.write_text(COLLAPSED)
    return path


def test_stacks_are_read_root_first_with_their_samples(tmp_path: Path) -> None:
    read = list(stacks(collapsed(tmp_path)))
    assert [n for _, n in read] == [50, 20, 10, 30, 40]
    assert read[0][0][0] == "<module> (circles:6)"
    assert read[0][0][-1] == "EpollSelector.select (selectors.py:468)"


def test_idle_stacks_are_those_waiting_in_select() -> None:
    assert idle(["run (asyncio/runners.py:190)", "EpollSelector.select (selectors.py:468)"])
    assert not idle(["run (asyncio/runners.py:190)", "encode (schemas/envelope.py:110)"])


def test_sealing_share_counts_busy_samples_with_seal_or_open_work(tmp_path: Path) -> None:
    # seal (20) and open_json (10) count; parse's model validation (30) and plain encode (40) do not;
    # the 50 samples waiting in select are not busy
    assert share(collapsed(tmp_path), sealing_frame) == (30, 100)


def test_sealing_frames() -> None:
    assert sealing_frame("seal (services/protection/sealing.py:89)")
    assert sealing_frame("KeyStore.ensure (services/protection/keystore.py:120)")
    assert sealing_frame("LocalKeks.wrap (services/protection/keks.py:60)")
    assert sealing_frame("Sealer.seal_json (services/protection/sealer.py:64)")
    assert not sealing_frame("Sealer.parse (services/protection/sealer.py:78)")
    assert not sealing_frame("encode_record (services/protection/codec.py:35)")
    assert not sealing_frame("encode (schemas/envelope.py:110)")


def test_top_functions_leave_out_frames_on_nearly_every_stack(tmp_path: Path) -> None:
    own, inclusive, total = top_functions(collapsed(tmp_path))
    assert total == 150
    assert own[0] == ("EpollSelector.select (selectors.py:468)", 50)
    names = [frame for frame, _ in inclusive]
    assert "<module> (circles:6)" not in names and "run (asyncio/runners.py:190)" not in names
    assert ("encode (schemas/envelope.py:110)", 40) in inclusive


def test_quick_mode_shrinks_the_loads() -> None:
    args = arguments(["--quick"])
    assert args.quick and all(getattr(args, name) == value for name, value in QUICK.items())
    assert arguments([]).restart_referrals == "100000,1000000"
