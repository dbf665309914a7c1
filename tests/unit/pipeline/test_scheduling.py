"""Fair shares and processing windows (pure: no database)."""

from __future__ import annotations

from datetime import UTC, datetime, time

from pipeline.scheduling import Demand, in_window, share
from schemas.tenant import ProcessingWindow


def test_a_tenant_alone_gets_everything_up_to_its_cap() -> None:
    assert share([Demand("a", waiting=1000, in_flight=0, cap=16)], free=32) == {"a": 16}
    assert share([Demand("a", waiting=5, in_flight=0, cap=16)], free=32) == {"a": 5}


def test_a_small_tenant_gets_its_share_beside_a_flood() -> None:
    flood = Demand("a", waiting=20_000, in_flight=10, cap=16)
    small = Demand("b", waiting=20, in_flight=0, cap=16)
    granted = share([flood, small], free=12)
    # b catches up to a's in-flight count first, then both grow together.
    assert granted == {"b": 11, "a": 1}


def test_weights_divide_capacity() -> None:
    heavy = Demand("a", waiting=100, in_flight=0, cap=100, weight=3)
    light = Demand("b", waiting=100, in_flight=0, cap=100, weight=1)
    assert share([heavy, light], free=40) == {"a": 30, "b": 10}


def test_nothing_is_released_past_the_free_slots_or_caps() -> None:
    full = Demand("a", waiting=100, in_flight=16, cap=16)
    assert share([full], free=10) == {}
    assert share([Demand("b", waiting=100, in_flight=0, cap=16)], free=0) == {}
    assert share([Demand("c", waiting=100, in_flight=0, cap=16)], free=-3) == {}


def test_windows_spanning_midnight_in_the_tenants_zone() -> None:
    night = ProcessingWindow(start=time(20), end=time(6), timezone="America/New_York")
    # 02:00 UTC is 21:00 in New York (EST): inside; 15:00 UTC is 10:00: outside.
    assert in_window(night, datetime(2026, 12, 4, 2, 0, tzinfo=UTC))
    assert not in_window(night, datetime(2026, 12, 4, 15, 0, tzinfo=UTC))
    day = ProcessingWindow(start=time(9), end=time(17))
    assert in_window(day, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    assert not in_window(day, datetime(2026, 12, 4, 17, 0, tzinfo=UTC))
    assert in_window(None, datetime(2026, 12, 4, 17, 0, tzinfo=UTC))


def test_a_provider_cap_holds_across_tenants_and_frees_slots_for_others() -> None:
    cloud_a = Demand("a", waiting=100, in_flight=3, cap=50, lanes=("assemblyai", "gemini"))
    cloud_b = Demand("b", waiting=100, in_flight=1, cap=50, lanes=("assemblyai",))
    local = Demand("c", waiting=100, in_flight=0, cap=50)
    granted = share([cloud_a, cloud_b, local], free=30, lane_free={"assemblyai": 2, "gemini": 10})
    # AssemblyAI has 2 free slots: they go to b, the less loaded; the rest goes to c.
    assert granted == {"b": 2, "c": 28}


def test_provider_room_counts_items_in_flight_on_each_provider() -> None:
    from pipeline.db.backlog import lane_room
    from pipeline.settings import Settings

    settings = Settings(assemblyai_max_in_flight=10, gemini_max_in_flight=4)
    demands = [
        Demand("a", waiting=0, in_flight=3, cap=50, lanes=("assemblyai", "gemini")),
        Demand("b", waiting=0, in_flight=2, cap=50, lanes=("assemblyai",)),
        Demand("c", waiting=0, in_flight=7, cap=50),
    ]
    assert lane_room(demands, settings) == {"assemblyai": 5, "gemini": 1}


def test_items_on_gemini_batch_api_do_not_draw_on_geminis_pool() -> None:
    from pipeline.db.backlog import lanes_of
    from pipeline.settings import Settings
    from schemas.tenant import TenantConfig

    def config(**batches: bool) -> TenantConfig:
        providers = {"transcriber": "assemblyai", "analyzer": "gemini"}
        return TenantConfig.model_validate({"providers": providers, "batches": batches})

    assert lanes_of(config(), Settings()) == ("assemblyai", "gemini")
    assert lanes_of(config(gemini_batch=True), Settings()) == ("assemblyai",)
